// The MetaNAS search network: construction, forward with soft pruning,
// genotype extraction, sparse parameter count and meta-model pruning.
#include "metanas/nas/search_network.h"

#include <algorithm>

#include "blocks.h"
#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/normalizer.h"

namespace metanas::nas {

namespace detail {

struct SearchCell {
  bool reduction = false;
  Preprocess pre0, pre1;
  // edges[i][j][k]: op k on input j of node i.
  std::vector<std::vector<std::vector<OpBlock>>> edges;
};

struct SearchNetworkImpl {
  SearchConfig cfg;
  std::vector<int> reductions;
  ParamSet weights, arch;
  Stem stem;
  std::vector<SearchCell> cells;
  Classifier classifier;
  std::vector<int> alpha_idx[2], pair_idx[2];  // [cell type][node]
  std::vector<std::vector<std::pair<int, int>>> pairs;  // [node]
  ForwardStats stats;
  // Device-side soft pruning (ForwardContext::plan_epoch): the candidate
  // terms (input j, op k) per [cell type][node], found from the logits once
  // per epoch, and their 0/1 gather matrices on the device.
  uint64_t cand_epoch = 0;
  std::vector<std::vector<std::pair<int, int>>> cand[2];
  std::vector<Tensor> cand_sel[2], cand_pairs[2];

  SearchNetworkImpl(const SearchConfig& c, Device device) : cfg(c), weights(device), arch(device) {}
};

}  // namespace detail

namespace {

int type_index(CellType t) { return t == CellType::Normal ? 0 : 1; }

// The alpha columns: the configured space's ops, in its order.
const std::vector<Primitive>& ops_of(const SearchConfig& c) { return space_primitives(parse_search_space(c.space)); }
int num_ops(const SearchConfig& c) { return static_cast<int>(ops_of(c).size()); }
const char* type_name(int t) { return t == 0 ? "normal" : "reduce"; }

// The surviving terms of one node under soft pruning.
struct NodePlan {
  std::vector<int> kept_pairs;             // indices into the node's pair list
  std::vector<std::pair<int, int>> terms;  // (input j, op k) to compute, in order
};

NodePlan plan_node(const float* w, const float* p, const std::vector<std::pair<int, int>>& pairs,
                   int n_in, int n_ops, float threshold) {
  NodePlan plan;
  std::vector<char> used(static_cast<size_t>(n_in), 0);
  for (size_t c = 0; c < pairs.size(); ++c) {
    if (p[c] > threshold) {
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
  const int64_t C = cfg.C;
  const int64_t c_stem = static_cast<int64_t>(cfg.stem_multiplier) * C;

  detail::ParamBuilder b(m.weights);
  m.stem = detail::make_stem(b, cfg.in_channels, c_stem);
  int64_t c_pp = c_stem, c_p = c_stem;
  bool red_prev = false;
  for (int k = 0; k < cfg.layers; ++k) {
    detail::SearchCell cell;
    cell.reduction = std::find(m.reductions.begin(), m.reductions.end(), k) != m.reductions.end();
    const std::string cn = "cell" + std::to_string(k);
    cell.pre0 = detail::make_preprocess(b, cn + ".pre0", c_pp, C, red_prev, false);
    cell.pre1 = detail::make_preprocess(b, cn + ".pre1", c_p, C, false, false);
    cell.edges.resize(static_cast<size_t>(cfg.nodes));
    for (int i = 0; i < cfg.nodes; ++i) {
      for (int j = 0; j < i + 2; ++j) {
        const int stride = cell.reduction && j < 2 ? 2 : 1;
        std::vector<detail::OpBlock> ops;
        const std::string en = cn + ".node" + std::to_string(i) + ".in" + std::to_string(j);
        for (Primitive p : space_primitives(parse_search_space(cfg.space))) ops.push_back(detail::make_op(b, en, p, C, stride, false));
        cell.edges[static_cast<size_t>(i)].push_back(std::move(ops));
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
  for (int t = 0; t < 2; ++t)
    for (int i = 0; i < cfg.nodes; ++i) {
      const int64_t np = static_cast<int64_t>(input_pairs(i + 2).size());
      m.pair_idx[t].push_back(
          ab.normal(std::string("pair_") + type_name(t) + "." + std::to_string(i), Shape{np}, 1e-3f));
    }
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

int SearchNetwork::pair_index(CellType type, int node) const {
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

Tensor SearchNetwork::forward(const Tensor& x, const ForwardContext& ctx) {
  const int P_ops = num_ops(impl_->cfg);
  auto& m = *impl_;
  const SearchConfig& cfg = m.cfg;
  const bool drop = detail::check_cell_forward("SearchNetwork::forward", x, cfg.in_channels, device(), ctx);

  // Normalized architecture weights, once per cell type (shared by its cells).
  bool has_type[2] = {false, false};
  for (const auto& c : m.cells) has_type[c.reduction ? 1 : 0] = true;
  std::vector<Tensor> W[2], P[2];
  for (int t = 0; t < 2; ++t) {
    if (!has_type[t]) continue;
    for (int i = 0; i < cfg.nodes; ++i) {
      W[t].push_back(normalize(m.arch[m.alpha_idx[t][static_cast<size_t>(i)]], ctx));
      P[t].push_back(normalize(m.arch[m.pair_idx[t][static_cast<size_t>(i)]], ctx));
    }
  }
  // Device-side plan: candidates from the logits once per epoch, the
  // threshold applied as masks on the device (no readback per forward).
  // A negative threshold keeps everything: nothing to read at all.
  const bool keep_all = ctx.prune_threshold < 0.f;
  const bool device_plan = ctx.plan_epoch != 0 && !keep_all;
  if (device_plan && m.cand_epoch != ctx.plan_epoch) {
    const std::vector<float> logits = m.arch.values().to_vector();  // the one readback of the epoch
    for (int t = 0; t < 2; ++t) {
      m.cand[t].assign(static_cast<size_t>(cfg.nodes), {});
      m.cand_sel[t].assign(static_cast<size_t>(cfg.nodes), Tensor());
      m.cand_pairs[t].assign(static_cast<size_t>(cfg.nodes), Tensor());
      for (int i = 0; i < cfg.nodes; ++i) {
        const int n_in = i + 2;
        const auto& pairs = m.pairs[static_cast<size_t>(i)];
        auto terms = candidate_terms(logits.data() + m.arch.offset(m.alpha_idx[t][static_cast<size_t>(i)]), n_in,
                                     P_ops);
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
  if (!device_plan && !keep_all) {
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
  Tensor stem = detail::apply(m.stem, m.weights, x);
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
                         ctx.prune_threshold);
      }
      stats.ops_total += n_in * P_ops;
      stats.ops_computed += static_cast<int>(plan.terms.size());
      stats.pairs_total += static_cast<int>(pairs.size());
      stats.pairs_kept += static_cast<int>(plan.kept_pairs.size());
      if (plan.terms.empty()) {
        states.push(Tensor::zeros(Shape{N, cfg.C, OH, OW}, DType::F32, x.device()));
        continue;
      }
      // Op outputs of the surviving terms.
      std::vector<Tensor> outs;
      outs.reserve(plan.terms.size());
      for (const auto& [j, k] : plan.terms) {
        const detail::OpBlock& op = cell.edges[static_cast<size_t>(i)][static_cast<size_t>(j)][static_cast<size_t>(k)];
        Tensor y = detail::apply(op, m.weights, states.get(j));
        if (drop && !op.identity())
          y = detail::keyed_drop_path(y, ctx, dkey, node_ops + static_cast<uint32_t>(j * P_ops + k));
        outs.push_back(y);
      }
      // Term weights v[s] = W[j_s, k_s] * sum_{kept pairs c containing j_s} P[c],
      // gathered with constant 0/1 matrices so that they stay differentiable.
      const int64_t M = static_cast<int64_t>(plan.terms.size());
      const int64_t NW = static_cast<int64_t>(n_in) * P_ops;
      const int64_t NP = static_cast<int64_t>(pairs.size());
      const Tensor& Wi = W[t][static_cast<size_t>(i)];
      const Tensor& Pi = P[t][static_cast<size_t>(i)];
      Tensor wsel;
      if (device_plan) {
        // Candidates gathered with the epoch's matrices, then the threshold as
        // masks: pruned terms and pairs get weight 0 (and no gradient).
        wsel = M == NW ? Wi.reshape(Shape{M})
                       : linear(Wi.reshape(Shape{1, NW}), m.cand_sel[t][static_cast<size_t>(i)], Tensor())
                             .reshape(Shape{M});
        const Tensor Pm = mul(Pi, above(Pi, ctx.prune_threshold));
        Tensor coef = linear(Pm.reshape(Shape{1, NP}), m.cand_pairs[t][static_cast<size_t>(i)], Tensor())
                          .reshape(Shape{M});
        states.push(weighted_sum(outs, mul(mul(wsel, above(wsel, ctx.prune_threshold)), coef)));
        continue;
      }
      if (M == NW) {
        wsel = Wi.reshape(Shape{M});  // nothing pruned: terms are in row-major order
      } else {
        std::vector<float> sel(static_cast<size_t>(M * NW), 0.f);
        for (int64_t s = 0; s < M; ++s)
          sel[static_cast<size_t>(s * NW + plan.terms[static_cast<size_t>(s)].first * P_ops +
                                  plan.terms[static_cast<size_t>(s)].second)] = 1.f;
        wsel = linear(Wi.reshape(Shape{1, NW}), Tensor::from_vector(sel, Shape{M, NW}, x.device()),
                      Tensor())
                   .reshape(Shape{M});
      }
      std::vector<float> mc(static_cast<size_t>(M * NP), 0.f);
      for (int64_t s = 0; s < M; ++s) {
        const int j = plan.terms[static_cast<size_t>(s)].first;
        for (int c : plan.kept_pairs)
          if (pairs[static_cast<size_t>(c)].first == j || pairs[static_cast<size_t>(c)].second == j)
            mc[static_cast<size_t>(s * NP + c)] = 1.f;
      }
      Tensor coef = linear(Pi.reshape(Shape{1, NP}), Tensor::from_vector(mc, Shape{M, NP}, x.device()),
                           Tensor())
                        .reshape(Shape{M});
      states.push(weighted_sum(outs, mul(wsel, coef)));
    }
    s0 = s1;
    s1 = concat_channels(states.nodes());
  }
  m.stats = stats;
  return detail::apply(m.classifier, m.weights, s1);
}

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
      const float* pw = a.data() + m.arch.offset(m.pair_idx[t][static_cast<size_t>(i)]);
      const auto& pairs = m.pairs[static_cast<size_t>(i)];
      size_t best = 0;
      for (size_t c = 1; c < pairs.size(); ++c)
        if (pw[c] > pw[best]) best = c;
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
      const int ai = m.alpha_idx[t][static_cast<size_t>(i)], pi = m.pair_idx[t][static_cast<size_t>(i)];
      std::vector<float> al(a.begin() + m.arch.offset(ai), a.begin() + m.arch.offset(ai) + n_in * P_ops);
      std::vector<float> pl(a.begin() + m.arch.offset(pi),
                            a.begin() + m.arch.offset(pi) + static_cast<int64_t>(pairs.size()));
      std::vector<float> w = normalize_host(al, n_in, P_ops, ctx);
      std::vector<float> p = normalize_host(pl, 1, static_cast<int>(pairs.size()), ctx);
      NodePlan plan = plan_node(w.data(), p.data(), pairs, n_in, P_ops, ctx.prune_threshold);
      std::vector<char> kept(static_cast<size_t>(n_in * P_ops), 0);
      for (const auto& [j, k] : plan.terms) kept[static_cast<size_t>(j * P_ops + k)] = 1;
      for (int j = 0; j < n_in; ++j)
        for (int k = 0; k < P_ops; ++k)
          if (!kept[static_cast<size_t>(j * P_ops + k)])
            inactive += detail::count_params(
                m.weights,
                cell.edges[static_cast<size_t>(i)][static_cast<size_t>(j)][static_cast<size_t>(k)].param_indices());
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
