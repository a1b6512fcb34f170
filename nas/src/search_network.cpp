// The MetaNAS search network: construction, forward with soft pruning,
// genotype extraction, sparse parameter count and meta-model pruning.
#include "metanas/nas/search_network.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>

#include "blocks.h"
#include "stem_cache.h"
#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/normalizer.h"

namespace metanas::nas {

namespace {
std::atomic<int> g_zero_ops{-1};  // -1: not read yet, 0: compute, 1: skip (as kernels/cpu/conv_library.cpp's switches)
}  // namespace

bool skip_zero_ops() {
  int v = g_zero_ops.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("METANAS_ZERO_OPS");
    const std::string s = e ? e : "";
    MN_CHECK(s.empty() || s == "skip" || s == "compute",
             "METANAS_ZERO_OPS must be skip (the default) or compute, got '", s, "'");
    v = s == "compute" ? 0 : 1;
    g_zero_ops.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

void set_skip_zero_ops(bool on) { g_zero_ops.store(on ? 1 : 0); }

namespace detail {

struct SearchCell {
  bool reduction = false;
  int64_t C = 0;  // channels of its ops (SearchConfig::C times channel_scale per reduction so far)
  Preprocess pre0, pre1;
  // edges[i][j][k]: op k on input j of node i.
  std::vector<std::vector<std::vector<OpBlock>>> edges;
  // DARTS-: aux[i][j] the auxiliary skip of that edge (a factorized reduce on
  // reducing edges; unused, conv_a = -1, on identity edges).
  std::vector<std::vector<FactorizedReduce>> aux;
};

struct SearchNetworkImpl {
  SearchConfig cfg;
  bool all_inputs = false;  // node_inputs "all": no pair weights, every input summed
  std::vector<int> reductions;
  ParamSet weights, arch;
  Stem stem;
  std::vector<SearchCell> cells;
  Classifier classifier;
  std::vector<int> alpha_idx[2], pair_idx[2];  // [cell type][node]
  std::vector<int> edge_idx[2];                 // PC-DARTS edge normalization (empty when off)
  std::vector<std::vector<std::pair<int, int>>> pairs;  // [node]
  ForwardStats stats;
  // Device-side soft pruning (ForwardContext::plan_epoch): the candidate
  // terms (input j, op k) per [cell type][node], found from the logits once
  // per epoch, and their 0/1 gather matrices on the device.
  uint64_t cand_epoch = 0;
  uint64_t cand_version = 0;  // bumped when the gather matrices are rebuilt
  std::vector<std::vector<std::pair<int, int>>> cand[2];
  std::vector<int> cand_zero[2];  // `none` candidates left out of cand (skip_zero_ops)
  std::vector<Tensor> cand_sel[2], cand_pairs[2];
  bool stem_cache_on = false;  // SearchNetwork::set_stem_cache
  StemCache stem_cache;

  SearchNetworkImpl(const SearchConfig& c, Device device) : cfg(c), weights(device), arch(device) {}
};

}  // namespace detail

namespace {

int type_index(CellType t) { return t == CellType::Normal ? 0 : 1; }

// The alpha columns: the configured space's ops, in its order.
const std::vector<Primitive>& ops_of(const SearchConfig& c) { return space_primitives(parse_search_space(c.space)); }
int num_ops(const SearchConfig& c) { return static_cast<int>(ops_of(c).size()); }
const char* type_name(int t) { return t == 0 ? "normal" : "reduce"; }

// Leaves the `none` terms out of a node's terms when another term remains
// (skip_zero_ops: a node of only `none` terms keeps them, so its weights keep
// their gradient path); returns how many it left out.
int drop_zero_terms(std::vector<std::pair<int, int>>& terms, const std::vector<Primitive>& ops) {
  if (!skip_zero_ops()) return 0;
  const auto zero = [&ops](const std::pair<int, int>& t) { return ops[static_cast<size_t>(t.second)] == Primitive::None; };
  const auto n = std::count_if(terms.begin(), terms.end(), zero);
  if (n == 0 || n == static_cast<std::ptrdiff_t>(terms.size())) return 0;
  terms.erase(std::remove_if(terms.begin(), terms.end(), zero), terms.end());
  return static_cast<int>(n);
}

// The surviving terms of one node under soft pruning.
struct NodePlan {
  std::vector<int> kept_pairs;             // indices into the node's pair list
  std::vector<std::pair<int, int>> terms;  // (input j, op k) to compute, in order
};

// keep_pairs: node_inputs "all" (its constant pair weights are never pruned).
NodePlan plan_node(const float* w, const float* p, const std::vector<std::pair<int, int>>& pairs,
                   int n_in, int n_ops, float threshold, bool keep_pairs) {
  NodePlan plan;
  std::vector<char> used(static_cast<size_t>(n_in), 0);
  for (size_t c = 0; c < pairs.size(); ++c) {
    if (keep_pairs || p[c] > threshold) {
      plan.kept_pairs.push_back(static_cast<int>(c));
      used[static_cast<size_t>(pairs[c].first)] = 1;
      used[static_cast<size_t>(pairs[c].second)] = 1;
    }
  }
  for (int j = 0; j < n_in; ++j) {
    if (!used[static_cast<size_t>(j)]) continue;
    for (int k = 0; k < n_ops; ++k)
      if (w[j * n_ops + k] > threshold) plan.terms.push_back({j, k});
  }
  return plan;
}

// node_inputs "all" as the pair form: every input is in n_in - 1 pairs, so
// constant pair weights 1 / (n_in - 1) give every input the coefficient 1.
float uniform_pair_weight(int n_in) { return n_in > 2 ? 1.f / static_cast<float>(n_in - 1) : 1.f; }

// 1 where x > t, else 0, as a constant tensor on x's device. Exact with
// gradual underflow: for floats x > t the difference x - t is a positive
// float (>= 1.4e-45), which two saturating multiplications by 3e38 turn into 1.
Tensor above(const Tensor& x, float t) {
  NoGradGuard ng;
  Tensor d = add_scalar(x.detach(), -t);
  Tensor m = clamp(mul_scalar(d, 3.0e38f), 0.f, 1.f);
  return clamp(mul_scalar(m, 3.0e38f), 0.f, 1.f);
}

// The candidate terms of one node: every (j, k) whose logit is not
// meta-pruned (a weight of exactly 0, never above a threshold >= 0).
std::vector<std::pair<int, int>> candidate_terms(const float* logits, int n_in, int n_ops) {
  std::vector<std::pair<int, int>> terms;
  for (int j = 0; j < n_in; ++j)
    for (int k = 0; k < n_ops; ++k)
      if (logits[j * n_ops + k] > 0.5f * kPrunedLogit) terms.push_back({j, k});
  return terms;
}

// The candidates to compute: without the `none` terms (drop_zero_terms),
// their number into *zero when given.
std::vector<std::pair<int, int>> live_candidates(const float* logits, int n_in, const std::vector<Primitive>& ops,
                                                 int* zero) {
  auto terms = candidate_terms(logits, n_in, static_cast<int>(ops.size()));
  const int z = drop_zero_terms(terms, ops);
  if (zero) *zero = z;
  return terms;
}


// gather(v, sel)[r] = sum_c sel[r, c] v[c] for a constant 0/1 matrix sel
// [rows, cols] (differentiable in v).
Tensor gather_rows(const Tensor& v, const std::vector<float>& sel, int64_t rows, int64_t cols, Device dev) {
  return linear(v.reshape(Shape{1, cols}), Tensor::from_vector(sel, Shape{rows, cols}, dev), Tensor()).reshape(Shape{rows});
}

// 1-D concatenation of vectors.
Tensor concat_vectors(const std::vector<Tensor>& vs) {
  std::vector<Tensor> r;
  int64_t n = 0;
  for (const Tensor& v : vs) {
    r.push_back(v.reshape(Shape{1, v.numel(), 1, 1}));
    n += v.numel();
  }
  return concat_channels(r).reshape(Shape{n});
}

// Elements [a, a + n) of a vector.
Tensor slice_vector(const Tensor& v, int64_t a, int64_t n) {
  return slice_channels(v.reshape(Shape{1, v.numel(), 1, 1}), a, n).reshape(Shape{n});
}

// P-DARTS skip dropout: elementwise dropout with rate p (kept values scaled
// by 1/(1-p)); the mask is drawn on the host from rng.
Tensor skip_dropout(const Tensor& y, float p, Rng& rng) {
  std::vector<float> mask(static_cast<size_t>(y.numel()));
  const float keep = 1.f / (1.f - p);
  for (float& v : mask) v = rng.uniform() < p ? 0.f : keep;
  return mul(y, Tensor::from_vector(mask, y.shape(), y.device()));
}

}  // namespace

namespace detail {

// PC-DARTS channel shuffle with `groups` groups: out[:, i * groups + g] =
// in[:, g * (C / groups) + i] (view [N, g, C/g, H, W], swap dims 1 and 2).
Tensor channel_shuffle(const Tensor& x, int groups) {
  const int64_t C = x.dim(1), per = C / groups;
  MN_CHECK(per * groups == C, "channel_shuffle: ", C, " channels do not split into ", groups, " groups");
  std::vector<Tensor> chans;
  for (int64_t i = 0; i < per; ++i)
    for (int64_t g = 0; g < groups; ++g) chans.push_back(slice_channels(x, g * per + i, 1));
  return concat_channels(chans);
}

// One node of a search cell (docs/nas.md "Regularized MetaNAS"):
//   node = sum_{j used} c_j (u_j + beta aux_j),   c_j = E_j sum_{kept pairs c ∋ j} P[c]
//   u_j  = sum_k f(W)[j, k] op_k(h_j)                            (K = 1)
//        = shuffle(concat(sum_k f(W)[j, k] op_k(h_j[:C/K]), pool(h_j[C/K:])))   (PC-DARTS)
//   f(W) = W (scalar) or W - max_k W[j, k] + 1 (max_w); E = 1 without edge normalization.
// Only the planned (surviving) terms are computed.
Tensor node_output(SearchNetworkImpl& m, const SearchCell& cell, int i, const NodePlan& plan, const float* hw,
                   const Tensor& Wi, const Tensor& Pi, const Tensor& Ei, CellStates& states, int64_t N, int64_t OH,
                   int64_t OW, int stride, bool drop, const ForwardContext& ctx, Device dev, PhiloxKey dkey,
                   uint32_t node_ops) {
  const SearchConfig& cfg = m.cfg;
  const int P_ops = num_ops(cfg);
  const int n_in = i + 2;
  const auto& pairs = m.pairs[static_cast<size_t>(i)];
  const int K = cfg.partial_channels;
  const int64_t C = cell.C, Cp = C / K;
  // Inputs in a kept pair, in order.
  std::vector<int> used;
  for (int j = 0; j < n_in; ++j) {
    bool u = false;
    for (int c : plan.kept_pairs) u = u || pairs[static_cast<size_t>(c)].first == j || pairs[static_cast<size_t>(c)].second == j;
    if (u) used.push_back(j);
  }
  const bool aux = cfg.aux_skip && ctx.aux_skip_beta != 0.f;
  if (used.empty() || (plan.terms.empty() && K == 1 && !aux)) return Tensor::zeros(Shape{N, C, OH, OW}, DType::F32, dev);
  const int64_t U = static_cast<int64_t>(used.size());
  const int64_t M = static_cast<int64_t>(plan.terms.size());
  const int64_t NW = static_cast<int64_t>(n_in) * P_ops;
  const int64_t NP = static_cast<int64_t>(pairs.size());

  // Input coefficients c [U].
  std::vector<float> mc(static_cast<size_t>(U * NP), 0.f);
  for (int64_t u = 0; u < U; ++u)
    for (int c : plan.kept_pairs)
      if (pairs[static_cast<size_t>(c)].first == used[u] || pairs[static_cast<size_t>(c)].second == used[u])
        mc[static_cast<size_t>(u * NP + c)] = 1.f;
  Tensor coef_in = gather_rows(Pi, mc, U, NP, dev);
  if (Ei.defined()) {
    std::vector<float> se(static_cast<size_t>(U * n_in), 0.f);
    for (int64_t u = 0; u < U; ++u) se[static_cast<size_t>(u * n_in + used[u])] = 1.f;
    coef_in = mul(coef_in, gather_rows(Ei, se, U, n_in, dev));
  }

  // Op weights f [M] of the terms.
  Tensor f;
  if (M > 0) {
    if (M == NW) {
      f = Wi.reshape(Shape{M});  // nothing pruned: terms are in row-major order
    } else {
      std::vector<float> sel(static_cast<size_t>(M * NW), 0.f);
      for (int64_t s = 0; s < M; ++s)
        sel[static_cast<size_t>(s * NW + plan.terms[s].first * P_ops + plan.terms[s].second)] = 1.f;
      f = gather_rows(Wi.reshape(Shape{NW}), sel, M, NW, dev);
    }
    if (cfg.mixed_op == "max_w") {
      // The row maximum, picked (as torch.max) from the host copy of W.
      std::vector<float> sel(static_cast<size_t>(M * NW), 0.f);
      for (int64_t s = 0; s < M; ++s) {
        const int j = plan.terms[s].first;
        int best = 0;
        for (int k = 1; k < P_ops; ++k)
          if (hw[j * P_ops + k] > hw[j * P_ops + best]) best = k;
        sel[static_cast<size_t>(s * NW + j * P_ops + best)] = 1.f;
      }
      f = add_scalar(sub(f, gather_rows(Wi.reshape(Shape{NW}), sel, M, NW, dev)), 1.f);
    }
  }

  // Op outputs of the surviving terms (on the first C/K channels under PC-DARTS).
  // Without channel sampling the drop-path masks become weighted_sum row scales.
  // So do the ops' last, affine-free batch norms (normalized_weighted_sum).
  const bool fold_drop = drop && K == 1;
  const bool fold_bn = K == 1 && fold_bn_enabled(dev);
  MixedOpSum folded;
  std::vector<Tensor> outs;
  for (const auto& [j, k] : plan.terms) {
    const OpBlock& op = cell.edges[static_cast<size_t>(i)][static_cast<size_t>(j)][static_cast<size_t>(k)];
    const Tensor& h = states.get(j);
    bool normalized = false;
    Tensor y = apply(op, m.weights, K == 1 ? h : slice_channels(h, 0, Cp), fold_bn, normalized);
    const bool dropped = drop && !op.identity();
    if (dropped && !fold_drop) y = keyed_drop_path(y, ctx, dkey, node_ops + static_cast<uint32_t>(j * P_ops + k));
    folded.add(dropped && fold_drop, static_cast<int64_t>(node_ops) + j * P_ops + k, normalized);
    if (op.identity() && ctx.training && ctx.skip_dropout > 0.f) y = skip_dropout(y, ctx.skip_dropout, *ctx.rng);
    outs.push_back(y);
  }

  std::vector<Tensor> parts;  // summed with weights `wts`
  std::vector<Tensor> wts;
  if (K == 1) {
    if (M > 0) {
      std::vector<float> st(static_cast<size_t>(M * U), 0.f);
      for (int64_t s = 0; s < M; ++s)
        for (int64_t u = 0; u < U; ++u)
          if (used[u] == plan.terms[s].first) st[static_cast<size_t>(s * U + u)] = 1.f;
      parts = outs;
      wts.push_back(mul(f, gather_rows(coef_in, st, M, U, dev)));
    }
  } else {
    for (int64_t u = 0; u < U; ++u) {
      const int j = used[u];
      int64_t s0 = 0, n = 0;
      for (int64_t s = 0; s < M; ++s)
        if (plan.terms[s].first == j) {
          if (n == 0) s0 = s;
          ++n;
        }
      Tensor mixed = n == 0 ? Tensor::zeros(Shape{N, Cp, OH, OW}, DType::F32, dev)
                            : weighted_sum(std::vector<Tensor>(outs.begin() + s0, outs.begin() + s0 + n),
                                           slice_vector(f, s0, n));
      const Tensor& h = states.get(j);
      Tensor rest = slice_channels(h, Cp, C - Cp);
      if (stride == 2 && j < 2) rest = h.dim(2) % 2 == 0 && h.dim(3) % 2 == 0 ? max_pool2d(rest, 2, 2, 0) : max_pool2d(rest, 3, 2, 1);
      parts.push_back(channel_shuffle(concat_channels({mixed, rest}), K));
    }
    wts.push_back(coef_in);
  }
  if (aux) {
    for (int64_t u = 0; u < U; ++u) {
      const FactorizedReduce& fr = cell.aux[static_cast<size_t>(i)][static_cast<size_t>(used[u])];
      parts.push_back(fr.conv_a >= 0 ? apply(fr, m.weights, states.get(used[u])) : states.get(used[u]));
    }
    wts.push_back(mul_scalar(coef_in, ctx.aux_skip_beta));
  }
  // The auxiliary skips (parts past the terms) are not dropped.
  return folded.sum(parts, wts.size() == 1 ? wts[0] : concat_vectors(wts), ctx, dkey, N, dev);
}

}  // namespace detail

namespace {
}  // namespace

std::vector<std::pair<int, int>> SearchNetwork::input_pairs(int num_inputs) {
  std::vector<std::pair<int, int>> r;
  for (int a = 0; a < num_inputs; ++a)
    for (int b = a + 1; b < num_inputs; ++b) r.push_back({a, b});
  return r;
}

SearchNetwork::SearchNetwork(const SearchConfig& cfg, Rng& rng, Device device)
    : impl_(std::make_unique<detail::SearchNetworkImpl>(cfg, device)) {
  cfg.validate();
  auto& m = *impl_;
  m.reductions = cfg.resolved_reductions();
  const int64_t c_stem = static_cast<int64_t>(cfg.stem_multiplier) * cfg.C;

  detail::ParamBuilder b(m.weights);
  m.all_inputs = cfg.node_inputs == "all";
  m.stem = detail::make_stem(b, cfg.in_channels, c_stem, cfg.stem);
  int64_t c_pp = c_stem, c_p = c_stem, c_cur = cfg.C;
  bool red_prev = false;
  for (int k = 0; k < cfg.layers; ++k) {
    detail::SearchCell cell;
    cell.reduction = std::find(m.reductions.begin(), m.reductions.end(), k) != m.reductions.end();
    if (cell.reduction) c_cur *= cfg.channel_scale;
    cell.C = c_cur;
    const int64_t C = c_cur;
    const std::string cn = "cell" + std::to_string(k);
    cell.pre0 = detail::make_preprocess(b, cn + ".pre0", c_pp, C, red_prev, false, cfg.reduce_pad_odd);
    cell.pre1 = detail::make_preprocess(b, cn + ".pre1", c_p, C, false, false);
    cell.edges.resize(static_cast<size_t>(cfg.nodes));
    for (int i = 0; i < cfg.nodes; ++i) {
      for (int j = 0; j < i + 2; ++j) {
        const int stride = cell.reduction && j < 2 ? 2 : 1;
        std::vector<detail::OpBlock> ops;
        const std::string en = cn + ".node" + std::to_string(i) + ".in" + std::to_string(j);
        const int64_t c_ops = C / cfg.partial_channels;  // PC-DARTS: the ops see C/K channels
        for (Primitive p : space_primitives(parse_search_space(cfg.space)))
          ops.push_back(detail::make_op(b, en, p, c_ops, stride, false, cfg.reduce_pad_odd));
        cell.edges[static_cast<size_t>(i)].push_back(std::move(ops));
      }
    }
    if (cfg.aux_skip) {
      cell.aux.resize(static_cast<size_t>(cfg.nodes));
      for (int i = 0; i < cfg.nodes; ++i)
        for (int j = 0; j < i + 2; ++j) {
          detail::FactorizedReduce fr;
          if (cell.reduction && j < 2)
            fr = detail::make_factorized_reduce(b, cn + ".node" + std::to_string(i) + ".in" + std::to_string(j) + ".aux",
                                                C, C, false, cfg.reduce_pad_odd);
          cell.aux[static_cast<size_t>(i)].push_back(fr);
        }
    }
    m.cells.push_back(std::move(cell));
    c_pp = c_p;
    c_p = static_cast<int64_t>(cfg.nodes) * C;
    red_prev = m.cells.back().reduction;
  }
  m.classifier = detail::make_classifier(b, cfg.num_classes, c_p);
  b.finish(rng);

  detail::ParamBuilder ab(m.arch);
  for (int t = 0; t < 2; ++t)
    for (int i = 0; i < cfg.nodes; ++i)
      m.alpha_idx[t].push_back(ab.normal(std::string("alpha_") + type_name(t) + "." + std::to_string(i),
                                         Shape{i + 2, num_ops(cfg)}, 1e-3f));
  for (int t = 0; t < 2 && !m.all_inputs; ++t)
    for (int i = 0; i < cfg.nodes; ++i) {
      const int64_t np = static_cast<int64_t>(input_pairs(i + 2).size());
      m.pair_idx[t].push_back(
          ab.normal(std::string("pair_") + type_name(t) + "." + std::to_string(i), Shape{np}, 1e-3f));
    }
  if (cfg.edge_normalization)
    for (int t = 0; t < 2; ++t)
      for (int i = 0; i < cfg.nodes; ++i)
        m.edge_idx[t].push_back(
            ab.normal(std::string("edge_") + type_name(t) + "." + std::to_string(i), Shape{i + 2}, 1e-3f));
  ab.finish(rng);
  for (int i = 0; i < cfg.nodes; ++i) m.pairs.push_back(input_pairs(i + 2));
}

SearchNetwork::~SearchNetwork() = default;

ParamSet& SearchNetwork::weights() { return impl_->weights; }
const ParamSet& SearchNetwork::weights() const { return impl_->weights; }
ParamSet* SearchNetwork::alphas() { return &impl_->arch; }
const ParamSet* SearchNetwork::alphas() const { return &impl_->arch; }
int SearchNetwork::num_classes() const { return impl_->cfg.num_classes; }
const SearchConfig& SearchNetwork::config() const { return impl_->cfg; }
const ForwardStats& SearchNetwork::last_forward_stats() const { return impl_->stats; }

int SearchNetwork::alpha_index(CellType type, int node) const {
  MN_CHECK(node >= 0 && node < impl_->cfg.nodes, "alpha_index: node ", node, " outside 0..",
           impl_->cfg.nodes - 1);
  return impl_->alpha_idx[type_index(type)][static_cast<size_t>(node)];
}

int SearchNetwork::edge_index(CellType type, int node) const {
  MN_CHECK(impl_->cfg.edge_normalization, "edge_index: the network has no edge normalization");
  MN_CHECK(node >= 0 && node < impl_->cfg.nodes, "edge_index: node ", node, " outside 0..", impl_->cfg.nodes - 1);
  return impl_->edge_idx[type_index(type)][static_cast<size_t>(node)];
}

int SearchNetwork::pair_index(CellType type, int node) const {
  MN_CHECK(!impl_->all_inputs, "pair_index: the network has no pair weights (node_inputs 'all')");
  MN_CHECK(node >= 0 && node < impl_->cfg.nodes, "pair_index: node ", node, " outside 0..",
           impl_->cfg.nodes - 1);
  return impl_->pair_idx[type_index(type)][static_cast<size_t>(node)];
}

void SearchNetwork::to(Device device) {
  impl_->weights.to(device);
  impl_->arch.to(device);
}

std::unique_ptr<Model> SearchNetwork::clone() const {
  Rng scratch(0);
  auto c = std::make_unique<SearchNetwork>(impl_->cfg, scratch, device());
  c->impl_->weights.copy_from(impl_->weights);
  c->impl_->arch.copy_from(impl_->arch);
  return c;
}

Tensor SearchNetwork::forward(const Tensor& x, const ForwardContext& ctx) { return run(x, ctx, -1, nullptr); }

void SearchNetwork::set_stem_cache(bool on) {
  impl_->stem_cache_on = on;
  impl_->stem_cache.clear();
}

bool SearchNetwork::stem_cache() const { return impl_->stem_cache_on; }

int64_t SearchNetwork::stem_cache_hits() const { return impl_->stem_cache.hits(); }

int64_t SearchNetwork::stem_cache_misses() const { return impl_->stem_cache.misses(); }

std::vector<int> SearchNetwork::stem_param_indices() const {
  const detail::Stem& s = impl_->stem;
  std::vector<int> r{s.conv};
  if (s.bn.gamma >= 0) r.push_back(s.bn.gamma);
  if (s.bn.beta >= 0) r.push_back(s.bn.beta);
  return r;
}

std::vector<Tensor> SearchNetwork::cell_states(const Tensor& x, const ForwardContext& ctx, int cell) {
  MN_CHECK(cell >= 0 && cell < impl_->cfg.layers, "cell_states: cell ", cell, " outside 0..", impl_->cfg.layers - 1);
  std::vector<Tensor> r;
  run(x, ctx, cell, &r);
  return r;
}

namespace {
Tensor cached_stem(detail::SearchNetworkImpl& m, const Tensor& x) {
  std::vector<Tensor> w{m.weights[m.stem.conv]};
  if (m.stem.bn.gamma >= 0) w.push_back(m.weights[m.stem.bn.gamma]);
  if (m.stem.bn.beta >= 0) w.push_back(m.weights[m.stem.bn.beta]);
  return m.stem_cache.get(x, w, [&](const Tensor& in) { return detail::apply(m.stem, m.weights, in); });
}
}  // namespace

Tensor SearchNetwork::run(const Tensor& x, const ForwardContext& ctx, int capture_cell, std::vector<Tensor>* captured) {
  const std::vector<Primitive>& ops = ops_of(impl_->cfg);
  const int P_ops = static_cast<int>(ops.size());
  auto& m = *impl_;
  const SearchConfig& cfg = m.cfg;
  const bool drop = detail::check_cell_forward("SearchNetwork::forward", x, cfg.in_channels, device(), ctx);
  MN_CHECK(ctx.skip_dropout >= 0.f && ctx.skip_dropout < 1.f, "SearchNetwork::forward: skip_dropout must be in [0, 1), got ",
           ctx.skip_dropout);
  MN_CHECK(!(ctx.training && ctx.skip_dropout > 0.f) || ctx.rng, "SearchNetwork::forward: skip dropout needs ForwardContext::rng");
  MN_CHECK(std::isfinite(ctx.aux_skip_beta), "SearchNetwork::forward: aux_skip_beta is not finite");

  // Normalized architecture weights, once per cell type (shared by its cells).
  bool has_type[2] = {false, false};
  for (const auto& c : m.cells) has_type[c.reduction ? 1 : 0] = true;
  std::vector<Tensor> W[2], P[2], E[2];
  for (int t = 0; t < 2; ++t) {
    if (!has_type[t]) continue;
    for (int i = 0; i < cfg.nodes; ++i) {
      W[t].push_back(normalize(m.arch[m.alpha_idx[t][static_cast<size_t>(i)]], ctx));
      const int64_t np = static_cast<int64_t>(m.pairs[static_cast<size_t>(i)].size());
      P[t].push_back(m.all_inputs ? Tensor::full(Shape{np}, uniform_pair_weight(i + 2), x.device())
                                  : normalize(m.arch[m.pair_idx[t][static_cast<size_t>(i)]], ctx));
      // PC-DARTS edge normalization: a plain softmax (no temperature).
      if (cfg.edge_normalization) E[t].push_back(softmax(m.arch[m.edge_idx[t][static_cast<size_t>(i)]]));
    }
  }
  // Device-side plan: candidates from the logits once per epoch, the
  // threshold applied as masks on the device (no readback per forward).
  // A negative threshold keeps everything: nothing to read at all.
  const bool keep_all = ctx.prune_threshold < 0.f;
  // The regularized-MetaNAS node forms (detail::node_output) plan on the host;
  // max-w also needs the host weights when nothing is pruned.
  const bool regularized = cfg.mixed_op == "max_w" || cfg.aux_skip || cfg.partial_channels > 1 ||
                           cfg.edge_normalization || ctx.skip_dropout > 0.f;
  const bool device_plan = ctx.plan_epoch != 0 && !keep_all && !regularized;
  if (device_plan && m.cand_epoch != ctx.plan_epoch) {
    const std::vector<float> logits = m.arch.values().to_vector();  // the one readback of the epoch
    // Same candidates as the last epoch: keep its device tensors (no upload;
    // CUDA graphs captured with them stay valid).
    bool same = m.cand_version != 0;
    for (int t = 0; t < 2 && same; ++t)
      for (int i = 0; i < cfg.nodes && same; ++i)
        same = static_cast<int>(m.cand[t].size()) == cfg.nodes &&
               live_candidates(logits.data() + m.arch.offset(m.alpha_idx[t][static_cast<size_t>(i)]), i + 2,
                               ops, nullptr) == m.cand[t][static_cast<size_t>(i)];
    if (!same) ++m.cand_version;
    for (int t = 0; t < 2 && !same; ++t) {
      m.cand[t].assign(static_cast<size_t>(cfg.nodes), {});
      m.cand_zero[t].assign(static_cast<size_t>(cfg.nodes), 0);
      m.cand_sel[t].assign(static_cast<size_t>(cfg.nodes), Tensor());
      m.cand_pairs[t].assign(static_cast<size_t>(cfg.nodes), Tensor());
      for (int i = 0; i < cfg.nodes; ++i) {
        const int n_in = i + 2;
        const auto& pairs = m.pairs[static_cast<size_t>(i)];
        auto terms = live_candidates(logits.data() + m.arch.offset(m.alpha_idx[t][static_cast<size_t>(i)]), n_in,
                                     ops, &m.cand_zero[t][static_cast<size_t>(i)]);
        const int64_t M = static_cast<int64_t>(terms.size()), NW = static_cast<int64_t>(n_in) * P_ops,
                      NP = static_cast<int64_t>(pairs.size());
        if (M > 0 && M < NW) {
          std::vector<float> sel(static_cast<size_t>(M * NW), 0.f);
          for (int64_t q = 0; q < M; ++q)
            sel[static_cast<size_t>(q * NW + terms[static_cast<size_t>(q)].first * P_ops +
                                    terms[static_cast<size_t>(q)].second)] = 1.f;
          m.cand_sel[t][static_cast<size_t>(i)] = Tensor::from_vector(sel, Shape{M, NW}, x.device());
        }
        if (M > 0) {
          std::vector<float> mc(static_cast<size_t>(M * NP), 0.f);
          for (int64_t q = 0; q < M; ++q)
            for (int64_t c = 0; c < NP; ++c) {
              const int j = terms[static_cast<size_t>(q)].first;
              if (pairs[static_cast<size_t>(c)].first == j || pairs[static_cast<size_t>(c)].second == j)
                mc[static_cast<size_t>(q * NP + c)] = 1.f;
            }
          m.cand_pairs[t][static_cast<size_t>(i)] = Tensor::from_vector(mc, Shape{M, NP}, x.device());
        }
        m.cand[t][static_cast<size_t>(i)] = std::move(terms);
      }
    }
    m.cand_epoch = ctx.plan_epoch;
  }
  // Host plan: the normalized values on the host, in one copy, for the
  // pruning decisions.
  std::vector<float> host;
  if (!device_plan && (!keep_all || cfg.mixed_op == "max_w")) {
    NoGradGuard ng;
    std::vector<Tensor> flat;
    for (int t = 0; t < 2; ++t)
      for (size_t i = 0; i < W[t].size(); ++i) {
        flat.push_back(W[t][i].detach().reshape(Shape{1, W[t][i].numel(), 1, 1}));
        flat.push_back(P[t][i].detach().reshape(Shape{1, P[t][i].numel(), 1, 1}));
      }
    host = concat_channels(flat).to_vector();
  }
  std::vector<const float*> hw[2], hp[2];
  if (!host.empty()) {
    size_t off = 0;
    for (int t = 0; t < 2; ++t)
      for (size_t i = 0; i < W[t].size(); ++i) {
        hw[t].push_back(host.data() + off);
        off += static_cast<size_t>(W[t][i].numel());
        hp[t].push_back(host.data() + off);
        off += static_cast<size_t>(P[t][i].numel());
      }
  }

  ForwardStats stats;
  const PhiloxKey dkey = drop ? detail::forward_drop_key(ctx) : PhiloxKey{};
  uint32_t op_base = 0;  // fixed index of a node's first candidate op in the network
  Tensor stem = m.stem_cache_on ? cached_stem(m, x) : detail::apply(m.stem, m.weights, x);
  Tensor s0 = stem, s1 = stem;
  for (const auto& cell : m.cells) {
    const int t = cell.reduction ? 1 : 0;
    const int stride = cell.reduction ? 2 : 1;
    const int64_t N = s1.dim(0);
    const int64_t OH = detail::strided_size(s1.dim(2), stride);
    const int64_t OW = detail::strided_size(s1.dim(3), stride);
    // Preprocessed inputs are computed on first use (an input no surviving
    // edge reads is never computed).
    detail::CellStates states(cell.pre0, cell.pre1, m.weights, s0, s1);
    for (int i = 0; i < cfg.nodes; ++i) {
      const int n_in = i + 2;
      const auto& pairs = m.pairs[static_cast<size_t>(i)];
      const uint32_t node_ops = op_base;
      op_base += static_cast<uint32_t>(n_in * P_ops);
      NodePlan plan;
      if (device_plan) {
        plan.terms = m.cand[t][static_cast<size_t>(i)];
        for (size_t c = 0; c < pairs.size(); ++c) plan.kept_pairs.push_back(static_cast<int>(c));
      } else if (keep_all) {
        for (size_t c = 0; c < pairs.size(); ++c) plan.kept_pairs.push_back(static_cast<int>(c));
        for (int j = 0; j < n_in; ++j)
          for (int k = 0; k < P_ops; ++k) plan.terms.push_back({j, k});
      } else {
        plan = plan_node(hw[t][static_cast<size_t>(i)], hp[t][static_cast<size_t>(i)], pairs, n_in, P_ops,
                         ctx.prune_threshold, m.all_inputs);
      }
      // `none` terms left out (skip_zero_ops), counted as computed; the device plan's at its epoch.
      const int zero_terms = device_plan ? m.cand_zero[t][static_cast<size_t>(i)] : drop_zero_terms(plan.terms, ops);
      stats.ops_total += n_in * P_ops;
      stats.ops_computed += static_cast<int>(plan.terms.size()) + zero_terms;
      stats.zero_ops_skipped += zero_terms;
      stats.pairs_total += static_cast<int>(pairs.size());
      stats.pairs_kept += static_cast<int>(plan.kept_pairs.size());
      if (device_plan) {
        if (plan.terms.empty()) {
          states.push(Tensor::zeros(Shape{N, cell.C, OH, OW}, DType::F32, x.device()));
          continue;
        }
        // Op outputs of the surviving terms.
        // Drop-path masks as weighted_sum row scales.
        // The ops' last, affine-free batch norms too, where folding is on.
        std::vector<Tensor> outs;
        detail::MixedOpSum folded;
        const bool fold_bn = detail::fold_bn_enabled(x.device());
        outs.reserve(plan.terms.size());
        for (const auto& [j, k] : plan.terms) {
          const detail::OpBlock& op = cell.edges[static_cast<size_t>(i)][static_cast<size_t>(j)][static_cast<size_t>(k)];
          bool normalized = false;
          outs.push_back(detail::apply(op, m.weights, states.get(j), fold_bn, normalized));
          folded.add(drop && !op.identity(), static_cast<int64_t>(node_ops) + j * P_ops + k, normalized);
        }
        // Term weights v[s] = W[j_s, k_s] * sum_{kept pairs c containing j_s} P[c],
        // gathered with constant 0/1 matrices so that they stay differentiable.
        const int64_t M = static_cast<int64_t>(plan.terms.size());
        const int64_t NW = static_cast<int64_t>(n_in) * P_ops;
        const int64_t NP = static_cast<int64_t>(pairs.size());
        const Tensor& Wi = W[t][static_cast<size_t>(i)];
        const Tensor& Pi = P[t][static_cast<size_t>(i)];
        Tensor wsel;
        // Candidates gathered with the epoch's matrices, then the threshold as
        // masks: pruned terms and pairs get weight 0 (and no gradient).
        wsel = M == NW ? Wi.reshape(Shape{M})
                       : linear(Wi.reshape(Shape{1, NW}), m.cand_sel[t][static_cast<size_t>(i)], Tensor())
                             .reshape(Shape{M});
        const Tensor Pm = m.all_inputs ? Pi : mul(Pi, above(Pi, ctx.prune_threshold));
        Tensor coef = linear(Pm.reshape(Shape{1, NP}), m.cand_pairs[t][static_cast<size_t>(i)], Tensor())
                          .reshape(Shape{M});
        const Tensor v = mul(mul(wsel, above(wsel, ctx.prune_threshold)), coef);
        states.push(folded.sum(outs, v, ctx, dkey, N, x.device()));
        continue;
      }
      states.push(detail::node_output(m, cell, i, plan, hw[t].empty() ? nullptr : hw[t][static_cast<size_t>(i)],
                                      W[t][static_cast<size_t>(i)], P[t][static_cast<size_t>(i)],
                                      E[t].empty() ? Tensor() : E[t][static_cast<size_t>(i)], states, N, OH, OW,
                                      stride, drop, ctx, x.device(), dkey, node_ops));
    }
    if (captured && &cell == &m.cells[static_cast<size_t>(capture_cell)]) {
      *captured = {states.get(0), states.get(1)};
      for (const Tensor& n : states.nodes()) captured->push_back(n);
      m.stats = stats;
      return Tensor();
    }
    s0 = s1;
    s1 = concat_channels(states.nodes());
  }
  m.stats = stats;
  return detail::apply(m.classifier, m.weights, s1);
}

namespace {

// The arg-max op of row j of a node's weights, never `none` (ties: the first).
int best_op(const float* w, int j, const std::vector<Primitive>& ops) {
  const int P_ops = static_cast<int>(ops.size());
  int bk = -1;
  for (int k = 0; k < P_ops; ++k)
    if (ops[static_cast<size_t>(k)] != Primitive::None && (bk < 0 || w[j * P_ops + k] > w[j * P_ops + bk])) bk = k;
  return bk;
}

// node_inputs "all" (DARTS/T-NAS genotype()._parse): the two inputs whose
// strongest non-`none` softmax weight is largest (strongest first, ties: the
// lower input), each with that op.
GenotypeNode darts_node(const float* alpha, int n_in, const std::vector<Primitive>& ops) {
  const int P_ops = static_cast<int>(ops.size());
  std::vector<float> w(alpha, alpha + n_in * P_ops);
  for (int j = 0; j < n_in; ++j) {  // plain softmax per row, as T-NAS's genotype()
    float* r = w.data() + j * P_ops;
    const float mx = *std::max_element(r, r + P_ops);
    float z = 0.f;
    for (int k = 0; k < P_ops; ++k) z += (r[k] = std::exp(r[k] - mx));
    for (int k = 0; k < P_ops; ++k) r[k] /= z;
  }
  std::vector<int> inputs(static_cast<size_t>(n_in));
  for (int j = 0; j < n_in; ++j) inputs[static_cast<size_t>(j)] = j;
  auto strength = [&](int j) { return w[static_cast<size_t>(j * P_ops + best_op(w.data(), j, ops))]; };
  std::stable_sort(inputs.begin(), inputs.end(), [&](int x, int y) { return strength(x) > strength(y); });
  GenotypeNode node;
  for (int r = 0; r < 2; ++r) {
    const int j = inputs[static_cast<size_t>(r)];
    node.push_back({ops[static_cast<size_t>(best_op(w.data(), j, ops))], j});
  }
  return node;
}

}  // namespace

Genotype SearchNetwork::genotype() const {
  const auto& ops = ops_of(impl_->cfg);
  const int P_ops = static_cast<int>(ops.size());
  const auto& m = *impl_;
  std::vector<float> a = m.arch.values().to_vector();
  Genotype g;
  for (int t = 0; t < 2; ++t) {
    std::vector<GenotypeNode>& cell = t == 0 ? g.normal : g.reduce;
    for (int i = 0; i < m.cfg.nodes; ++i) {
      const float* alpha = a.data() + m.arch.offset(m.alpha_idx[t][static_cast<size_t>(i)]);
      if (m.all_inputs) {
        cell.push_back(darts_node(alpha, i + 2, ops));
        continue;
      }
      const float* pw = a.data() + m.arch.offset(m.pair_idx[t][static_cast<size_t>(i)]);
      const auto& pairs = m.pairs[static_cast<size_t>(i)];
      // With edge normalization a pair scores P[c] E_a E_b (E = softmax of the edge logits).
      std::vector<float> score(pw, pw + pairs.size());
      if (m.cfg.edge_normalization) {
        const float* el = a.data() + m.arch.offset(m.edge_idx[t][static_cast<size_t>(i)]);
        std::vector<float> e(el, el + i + 2);
        const float mx = *std::max_element(e.begin(), e.end());
        float z = 0.f;
        for (float& v : e) z += (v = std::exp(v - mx));
        for (size_t c = 0; c < pairs.size(); ++c)
          score[c] *= e[static_cast<size_t>(pairs[c].first)] * e[static_cast<size_t>(pairs[c].second)] / (z * z);
      }
      size_t best = 0;
      for (size_t c = 1; c < pairs.size(); ++c)
        if (score[c] > score[best]) best = c;
      GenotypeNode node;
      // The arg-max op per input, never `none` (as DARTS's genotype()).
      for (int j : {pairs[best].first, pairs[best].second}) {
        int bk = -1;
        for (int k = 0; k < P_ops; ++k)
          if (ops[static_cast<size_t>(k)] != Primitive::None && (bk < 0 || alpha[j * P_ops + k] > alpha[j * P_ops + bk]))
            bk = k;
        node.push_back({ops[static_cast<size_t>(bk)], j});
      }
      cell.push_back(node);
    }
  }
  for (int i = 0; i < m.cfg.nodes; ++i) {
    g.normal_concat.push_back(2 + i);
    g.reduce_concat.push_back(2 + i);
  }
  return g;
}

uint64_t SearchNetwork::plan_version() const { return impl_->cand_version; }

int64_t SearchNetwork::sparse_param_count(const ForwardContext& ctx) const {
  const int P_ops = num_ops(impl_->cfg);
  const auto& m = *impl_;
  std::vector<float> a = m.arch.values().to_vector();
  int64_t inactive = 0;
  for (const auto& cell : m.cells) {
    const int t = cell.reduction ? 1 : 0;
    for (int i = 0; i < m.cfg.nodes; ++i) {
      const int n_in = i + 2;
      const auto& pairs = m.pairs[static_cast<size_t>(i)];
      const int ai = m.alpha_idx[t][static_cast<size_t>(i)];
      const int pi = m.all_inputs ? -1 : m.pair_idx[t][static_cast<size_t>(i)];
      std::vector<float> al(a.begin() + m.arch.offset(ai), a.begin() + m.arch.offset(ai) + n_in * P_ops);
      std::vector<float> w = normalize_host(al, n_in, P_ops, ctx);
      std::vector<float> p(pairs.size(), uniform_pair_weight(n_in));
      if (!m.all_inputs) {
        std::vector<float> pl(a.begin() + m.arch.offset(pi),
                              a.begin() + m.arch.offset(pi) + static_cast<int64_t>(pairs.size()));
        p = normalize_host(pl, 1, static_cast<int>(pairs.size()), ctx);
      }
      NodePlan plan = plan_node(w.data(), p.data(), pairs, n_in, P_ops, ctx.prune_threshold, m.all_inputs);
      std::vector<char> kept(static_cast<size_t>(n_in * P_ops), 0);
      for (const auto& [j, k] : plan.terms) kept[static_cast<size_t>(j * P_ops + k)] = 1;
      for (int j = 0; j < n_in; ++j)
        for (int k = 0; k < P_ops; ++k)
          if (!kept[static_cast<size_t>(j * P_ops + k)])
            inactive += detail::count_params(
                m.weights,
                cell.edges[static_cast<size_t>(i)][static_cast<size_t>(j)][static_cast<size_t>(k)].param_indices());
    }
    // DARTS-: the auxiliary skips are not used once beta is 0.
    if (m.cfg.aux_skip && ctx.aux_skip_beta == 0.f)
      for (const auto& node : cell.aux)
        for (const auto& fr : node)
          if (fr.conv_a >= 0) {
            std::vector<int> idx = {fr.conv_a, fr.conv_b};
            inactive += detail::count_params(m.weights, idx);
          }
  }
  return m.weights.numel() - inactive;
}

int SearchNetwork::prune_architecture(float threshold, float t_min, Normalizer normalizer) {
  return meta_prune(*this, threshold, t_min, normalizer);
}

int meta_prune(SearchNetwork& net, float threshold, float t_min, Normalizer normalizer) {
  MN_CHECK(t_min > 0.f, "meta_prune: t_min must be positive, got ", t_min);
  ForwardContext ctx;
  ctx.temperature = t_min;
  ctx.normalizer = normalizer;
  ctx.anneal_progress = 1.f;  // the end of the schedule
  ParamSet& arch = *net.alphas();
  const int nodes = net.config().nodes;
  const int P_ops = num_ops(net.config());
  int pruned = 0;
  for (CellType type : {CellType::Normal, CellType::Reduce}) {
    for (int i = 0; i < nodes; ++i) {
      Tensor& alpha = arch[net.alpha_index(type, i)];
      std::vector<float> a = alpha.to_vector();
      std::vector<float> w = normalize_host(a, i + 2, P_ops, ctx);
      bool changed = false;
      for (size_t e = 0; e < a.size(); ++e) {
        if (w[e] < threshold && a[e] > 0.5f * kPrunedLogit) {
          a[e] = kPrunedLogit;
          ++pruned;
          changed = true;
        }
      }
      if (changed) alpha.copy_(Tensor::from_vector(a, alpha.shape()));
    }
  }
  return pruned;
}

}  // namespace metanas::nas
