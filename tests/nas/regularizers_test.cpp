// Regularized MetaNAS in the search network and the task optimizer: the
// DARTS- auxiliary skip and SharpDARTS max-w mixed ops, PC-DARTS partial
// channels / shuffle / edge normalization, checked node by node against a
// direct double-precision computation on planted alphas (only parameter-free
// ops survive the planted pruning: the sharp pools and the identity); the
// P-DARTS drop and skip limit on planted alpha matrices; TSE's bitwise weight
// restore; finite-difference gradients through the new ops and mixings.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "metanas/engine/autograd.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/nas.h"
#include "metanas/nas/pdarts.h"
#include "metanas/nas/task_regularizers.h"
#include "metanas/nas/tse.h"
#include "tests/nas/fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

namespace {

using Img = std::vector<double>;  // [N, C, H, W] row-major

struct Dims {
  int64_t N, C, H, W;
};

Img to_img(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  return Img(v.begin(), v.end());
}

// 3x3 window pool, pad 1, stride s; avg counts the padding (sum / 9).
Img pool3(const Img& x, Dims d, int s, bool max) {
  const int64_t OH = (d.H + s - 1) / s, OW = (d.W + s - 1) / s;
  Img y(static_cast<size_t>(d.N * d.C * OH * OW));
  for (int64_t n = 0; n < d.N * d.C; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double acc = max ? -1e300 : 0.0;
        for (int dh = -1; dh <= 1; ++dh)
          for (int dw = -1; dw <= 1; ++dw) {
            const int64_t h = oh * s + dh, w = ow * s + dw;
            if (h < 0 || w < 0 || h >= d.H || w >= d.W) continue;
            const double v = x[static_cast<size_t>((n * d.H + h) * d.W + w)];
            acc = max ? std::max(acc, v) : acc + v;
          }
        y[static_cast<size_t>((n * OH + oh) * OW + ow)] = max ? acc : acc / 9.0;
      }
  return y;
}

// 2x2 max pool, stride 2.
Img pool2(const Img& x, Dims d) {
  const int64_t OH = d.H / 2, OW = d.W / 2;
  Img y(static_cast<size_t>(d.N * d.C * OH * OW));
  for (int64_t n = 0; n < d.N * d.C; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double m = -1e300;
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) m = std::max(m, x[static_cast<size_t>((n * d.H + 2 * oh + a) * d.W + 2 * ow + b)]);
        y[static_cast<size_t>((n * OH + oh) * OW + ow)] = m;
      }
  return y;
}

// Channels [c0, c0 + n) of x.
Img channels(const Img& x, Dims d, int64_t c0, int64_t n) {
  Img y;
  for (int64_t b = 0; b < d.N; ++b)
    for (int64_t c = c0; c < c0 + n; ++c)
      for (int64_t p = 0; p < d.H * d.W; ++p) y.push_back(x[static_cast<size_t>((b * d.C + c) * d.H * d.W + p)]);
  return y;
}

// concat(a [N, Ca], b [N, Cb]) along channels, then channel shuffle with K
// groups written out directly: out channel i*K + g = in channel g*(C/K) + i.
Img concat_shuffle(const Img& a, int64_t Ca, const Img& b, int64_t Cb, int64_t N, int64_t HW, int K) {
  const int64_t C = Ca + Cb, per = C / K;
  Img y(static_cast<size_t>(N * C * HW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < per; ++i)
      for (int g = 0; g < K; ++g) {
        const int64_t src = g * per + i, dst = i * K + g;
        for (int64_t p = 0; p < HW; ++p)
          y[static_cast<size_t>((n * C + dst) * HW + p)] =
              src < Ca ? a[static_cast<size_t>((n * Ca + src) * HW + p)] : b[static_cast<size_t>((n * Cb + src - Ca) * HW + p)];
      }
  return y;
}

std::vector<double> softmax_d(const std::vector<double>& a) {
  double mx = -1e300, z = 0;
  for (double v : a) mx = std::max(mx, v);
  std::vector<double> r;
  for (double v : a) r.push_back(std::exp(v - mx)), z += r.back();
  for (double& v : r) v /= z;
  return r;
}

void axpy(Img& y, double a, const Img& x) {
  for (size_t i = 0; i < y.size(); ++i) y[i] += a * x[i];
}

double max_abs_diff(const Img& a, const Img& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// The sharp space's columns: 0 avg pool, 1 max pool, 2 skip, 3.. convs.
constexpr int kSharpOps = 7;

// A tiny sharp-space network (cell 0 normal, cell 1 reducing, 2 nodes) whose
// alphas keep only avg pool, max pool and skip (planted logits; the convs are
// pruned) and random pair (and edge) logits.
struct Planted {
  SearchConfig cfg;
  std::unique_ptr<SearchNetwork> net;
  std::vector<float> a;
  explicit Planted(SearchConfig c, bool prune_reduce_skip = false) : cfg(c) {
    cfg.space = "sharp";
    Rng rng(5);
    net = std::make_unique<SearchNetwork>(cfg, rng);
    ParamSet& A = *net->alphas();
    Rng r(6);
    a = A.values().to_vector();
    for (auto& v : a) v = r.uniform() * 2.f - 1.f;
    for (CellType t : {CellType::Normal, CellType::Reduce})
      for (int i = 0; i < cfg.nodes; ++i)
        for (int j = 0; j < i + 2; ++j)
          for (int k = 3; k < kSharpOps; ++k) a[A.offset(net->alpha_index(t, i)) + j * kSharpOps + k] = kPrunedLogit;
    if (prune_reduce_skip)  // the stride-2 skip is a factorized reduce (has weights)
      for (int i = 0; i < cfg.nodes; ++i)
        for (int j = 0; j < 2; ++j) a[A.offset(net->alpha_index(CellType::Reduce, i)) + j * kSharpOps + 2] = kPrunedLogit;
    A.values().copy_(Tensor::from_vector(a, A.values().shape()));
  }
  std::vector<double> row(CellType t, int i, int j) const {
    const ParamSet& A = *net->alphas();
    std::vector<double> r;
    for (int k = 0; k < kSharpOps; ++k) r.push_back(a[A.offset(net->alpha_index(t, i)) + j * kSharpOps + k]);
    return r;
  }
  std::vector<double> vec(int index) const {
    const ParamSet& A = *net->alphas();
    return std::vector<double>(a.begin() + A.offset(index), a.begin() + A.offset(index) + A.shape(index).numel());
  }
  // c_j = E_j sum_{pairs containing j} P[c].
  std::vector<double> input_coefs(CellType t, int i) const {
    std::vector<double> P = softmax_d(vec(net->pair_index(t, i)));
    const auto pairs = SearchNetwork::input_pairs(i + 2);
    std::vector<double> c(static_cast<size_t>(i + 2), 0.0);
    for (size_t p = 0; p < pairs.size(); ++p) c[pairs[p].first] += P[p], c[pairs[p].second] += P[p];
    if (cfg.edge_normalization) {
      std::vector<double> E = softmax_d(vec(net->edge_index(t, i)));
      for (size_t j = 0; j < c.size(); ++j) c[j] *= E[j];
    }
    return c;
  }
};

// The expected node i of cell `cell` from its input states (docs/nas.md).
Img expected_node(const Planted& p, CellType t, int i, const std::vector<Tensor>& st, double beta, int stride) {
  const int K = p.cfg.partial_channels;
  const int64_t C = p.cfg.C, Cp = C / K;
  std::vector<double> c = p.input_coefs(t, i);
  Img node;
  for (int j = 0; j < i + 2; ++j) {
    const int s = j < 2 ? stride : 1;
    const Tensor& h = st[static_cast<size_t>(j)];
    const Dims d{h.dim(0), h.dim(1), h.dim(2), h.dim(3)};
    const Img x = to_img(h);
    const Img xa = channels(x, d, 0, Cp);
    const Dims da{d.N, Cp, d.H, d.W};
    std::vector<double> w = softmax_d(p.row(t, i, j));
    if (p.cfg.mixed_op == "max_w") {
      double mx = 0;
      for (double v : w) mx = std::max(mx, v);
      for (double& v : w)
        if (v > 0) v = 1.0 - mx + v;
    }
    Img mixed = pool3(xa, da, s, false);
    for (double& v : mixed) v *= w[0];
    axpy(mixed, w[1], pool3(xa, da, s, true));
    if (w[2] > 0) {
      REQUIRE(s == 1);
      axpy(mixed, w[2], xa);
    }
    const int64_t OH = (d.H + s - 1) / s, OW = (d.W + s - 1) / s;
    Img u = mixed;
    if (K > 1) {
      Img rest = channels(x, d, Cp, C - Cp);
      if (s == 2) rest = pool2(rest, Dims{d.N, C - Cp, d.H, d.W});
      u = concat_shuffle(mixed, Cp, rest, C - Cp, d.N, OH * OW, K);
    }
    if (beta != 0) {
      REQUIRE(s == 1);  // identity auxiliary skip
      axpy(u, beta, x);
    }
    if (node.empty()) node.assign(u.size(), 0.0);
    axpy(node, c[static_cast<size_t>(j)], u);
  }
  return node;
}

void check_cells(Planted& p, double beta, bool check_reduce) {
  Tensor x = random_images(3, 1, 8, 41);
  ForwardContext ctx;
  ctx.temperature = 1.f;
  ctx.aux_skip_beta = static_cast<float>(beta);
  for (int cell : {0, 1}) {
    if (cell == 1 && !check_reduce) continue;
    std::vector<Tensor> st = p.net->cell_states(x, ctx, cell);
    REQUIRE(st.size() == 2 + static_cast<size_t>(p.cfg.nodes));
    // Each node only reads earlier states of the capture, so it can be
    // recomputed from them alone.
    for (int i = 0; i < p.cfg.nodes; ++i) {
      const Img want = expected_node(p, cell == 0 ? CellType::Normal : CellType::Reduce, i, st, beta, cell == 0 ? 1 : 2);
      INFO("cell " << cell << " node " << i << " beta " << beta << " " << p.cfg.mixed_op);
      REQUIRE(max_abs_diff(to_img(st[2 + static_cast<size_t>(i)]), want) < 1e-5);
    }
  }
}

}  // namespace

TEST_CASE("DARTS- aux skip and SharpDARTS max-w: node outputs match a direct computation",
          "[nas][regularizers]") {
  for (const char* mixed : {"scalar", "max_w"}) {
    SearchConfig c = tiny_search_config();
    c.mixed_op = mixed;
    c.aux_skip = true;
    Planted p(c);
    for (double beta : {0.0, 0.7}) check_cells(p, beta, false);
    // Without aux_skip a beta has no effect (the released default beta 0 is the same network).
    SearchConfig c2 = c;
    c2.aux_skip = false;
    Planted q(c2, /*prune_reduce_skip=*/true);
    check_cells(q, 0.0, true);
  }
  // max_w differs from scalar on the same planted alphas (the test can fail).
  SearchConfig a = tiny_search_config(), b = a;
  b.mixed_op = "max_w";
  Planted pa(a), pb(b);
  Tensor x = random_images(3, 1, 8, 41);
  ForwardContext ctx;
  REQUIRE(max_abs_diff(to_img(pa.net->cell_states(x, ctx, 0)[2]), to_img(pb.net->cell_states(x, ctx, 0)[2])) > 1e-3);
}

TEST_CASE("PC-DARTS: partial channels, channel shuffle and edge normalization match a direct computation",
          "[nas][regularizers]") {
  SearchConfig c = tiny_search_config();
  c.partial_channels = 2;
  c.edge_normalization = true;
  SECTION("normal and reducing cells") {
    Planted p(c, /*prune_reduce_skip=*/true);
    check_cells(p, 0.0, true);
  }
  SECTION("with max-w and the DARTS- skip (normal cell)") {
    c.mixed_op = "max_w";
    c.aux_skip = true;
    Planted p(c, true);
    check_cells(p, 0.5, false);
  }
  SECTION("partial_channels 1, no edge normalization: the released op's runnable reading differs") {
    // The released MixedOpAuxSkipPartial builds the ops for C/K channels but
    // feeds them the full input (a channel mismatch on the first conv or BN);
    // ops on the full input with no edge weights is K = 1, edge normalization off.
    SearchConfig full = c, part = c;
    full.partial_channels = 1;
    full.edge_normalization = part.edge_normalization = false;
    full.aux_skip = part.aux_skip = true;
    Planted pf(full), pp(part);
    check_cells(pf, 0.5, false);
    check_cells(pp, 0.5, false);
    REQUIRE(pf.a == pp.a);  // the same planted alphas
    Tensor x = random_images(3, 1, 8, 41);
    ForwardContext ctx;
    ctx.aux_skip_beta = 0.5f;
    REQUIRE(max_abs_diff(to_img(pf.net->cell_states(x, ctx, 0)[2]), to_img(pp.net->cell_states(x, ctx, 0)[2])) > 1e-3);
  }
  SECTION("the ops see C/K channels; edge logits are architecture parameters") {
    Rng rng(3);
    SearchNetwork net(c, rng);
    REQUIRE(net.weights().contains("cell0.node0.in0.sharp_sep_conv_3x3.dw1") == false);  // metanas space
    REQUIRE(net.weights().get("cell0.node0.in0.sep_conv_3x3.dw1").shape() == Shape{2, 1, 3, 3});
    REQUIRE(net.alphas()->shape(net.edge_index(CellType::Reduce, 1)) == Shape{3});
    SearchConfig bad = c;
    bad.partial_channels = 3;
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("partial_channels"));
  }
}

TEST_CASE("P-DARTS skip dropout: identity outputs are 0 or scaled by 1/(1-p), training only", "[nas][regularizers]") {
  SearchConfig c = tiny_search_config();
  Planted p(c);
  // Keep only the skip in the normal cell.
  ParamSet& A = *p.net->alphas();
  for (int i = 0; i < c.nodes; ++i)
    for (int j = 0; j < i + 2; ++j)
      for (int k : {0, 1}) p.a[A.offset(p.net->alpha_index(CellType::Normal, i)) + j * kSharpOps + k] = kPrunedLogit;
  A.values().copy_(Tensor::from_vector(p.a, A.values().shape()));
  Tensor x = random_images(4, 1, 8, 43);
  ForwardContext ctx;
  ctx.skip_dropout = 0.4f;
  Rng r(9);
  ctx.rng = &r;
  std::vector<Tensor> st = p.net->cell_states(x, ctx, 0);
  // node 0 = sum_j c_j m_j h_j with m_j in {0, 1/0.6}.
  const Img h0 = to_img(st[0]), h1 = to_img(st[1]), n0 = to_img(st[2]);
  std::vector<double> cf = p.input_coefs(CellType::Normal, 0);
  int zeros = 0, total = 0;
  for (size_t e = 0; e < n0.size(); ++e) {
    bool ok = false;
    for (double m0 : {0.0, 1 / 0.6})
      for (double m1 : {0.0, 1 / 0.6}) ok = ok || std::fabs(n0[e] - (cf[0] * m0 * h0[e] + cf[1] * m1 * h1[e])) < 1e-5;
    REQUIRE(ok);
    zeros += std::fabs(n0[e]) < 1e-12;
    ++total;
  }
  REQUIRE(zeros > total / 20);  // both inputs dropped: about 0.16 of the elements
  ctx.training = false;
  st = p.net->cell_states(x, ctx, 0);
  std::vector<double> want(h0.size());
  for (size_t e = 0; e < want.size(); ++e) want[e] = cf[0] * h0[e] + cf[1] * h1[e];
  REQUIRE(max_abs_diff(to_img(st[2]), want) < 1e-5);
}

TEST_CASE("P-DARTS drop: each cell type keeps its own top ops per row; undo and redo", "[nas][regularizers]") {
  Rng rng(1);
  SearchNetwork net(tiny_search_config(), rng);
  ParamSet& A = *net.alphas();
  // Planted: row r of normal ranks the ops 0 < 1 < ... < 6 (op 6 best); reduce the opposite.
  std::vector<float> a = A.values().to_vector();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < i + 2; ++j)
      for (int k = 0; k < kNumPrimitives; ++k) {
        a[A.offset(net.alpha_index(CellType::Normal, i)) + j * 7 + k] = 0.1f * k + 0.01f * j;
        a[A.offset(net.alpha_index(CellType::Reduce, i)) + j * 7 + k] = -0.1f * k;
      }
  A.values().copy_(Tensor::from_vector(a, A.values().shape()));
  const std::vector<float> before = a;
  auto alive = [&](CellType t, int i, int j) {
    std::vector<float> v = A.values().to_vector();
    std::vector<int> r;
    for (int k = 0; k < 7; ++k)
      if (v[A.offset(net.alpha_index(t, i)) + j * 7 + k] > 0.5f * kPrunedLogit) r.push_back(k);
    return r;
  };
  DroppedOps d1 = pdarts_drop_ops(net, 5);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < i + 2; ++j) {
      REQUIRE(alive(CellType::Normal, i, j) == std::vector<int>{2, 3, 4, 5, 6});
      REQUIRE(alive(CellType::Reduce, i, j) == std::vector<int>{0, 1, 2, 3, 4});
    }
  REQUIRE(d1.entries.size() == 2u * 2 * (2 + 3));
  DroppedOps d2 = pdarts_drop_ops(net, 4);
  REQUIRE(alive(CellType::Normal, 1, 2) == std::vector<int>{3, 4, 5, 6});
  REQUIRE(alive(CellType::Reduce, 0, 0) == std::vector<int>{0, 1, 2, 3});
  REQUIRE(d2.entries.size() == 2u * 5);
  // Undo (d2 then d1) gives the planted logits back bit for bit; redo prunes again.
  restore_dropped(net, d2);
  restore_dropped(net, d1);
  std::vector<float> after = A.values().to_vector();
  REQUIRE(std::memcmp(after.data(), before.data(), sizeof(float) * after.size()) == 0);
  reapply_dropped(net, d1);
  REQUIRE(alive(CellType::Normal, 0, 1) == std::vector<int>{2, 3, 4, 5, 6});

  SECTION("released: both types ranked by the reduce cell, min - 1e-4, permanent") {
    restore_dropped(net, d1);
    DroppedOps r = pdarts_drop_ops(net, 5, /*released=*/true);
    REQUIRE(r.entries.empty());
    std::vector<float> v = A.values().to_vector();
    const int64_t o = A.offset(net.alpha_index(CellType::Normal, 0));
    // Normal row 0 kept ops 0..4 (the reduce choice); dropped 5, 6 set to min(masked) - 1e-4 = -1e-4.
    REQUIRE(v[o + 0] == before[o + 0]);
    REQUIRE(v[o + 5] == Approx(-1e-4f));
    REQUIRE(v[o + 6] == Approx(-1e-4f));
  }
}

TEST_CASE("P-DARTS drop, released keep list [3, 2, 0] of 7 (keep_ops [4, 5]): stage 2 re-admits an op",
          "[nas][regularizers]") {
  // Planted as above: normal ranks 0 < ... < 6 per row, reduce the opposite;
  // the released drop ranks both types by reduce, so ops 0.. are kept.
  auto above_min = [](std::vector<int> keeps) {
    Rng rng(1);
    SearchNetwork net(tiny_search_config(), rng);
    ParamSet& A = *net.alphas();
    std::vector<float> a = A.values().to_vector();
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < i + 2; ++j)
        for (int k = 0; k < kNumPrimitives; ++k) {
          a[A.offset(net.alpha_index(CellType::Normal, i)) + j * 7 + k] = 0.1f * k + 0.01f * j;
          a[A.offset(net.alpha_index(CellType::Reduce, i)) + j * 7 + k] = -0.1f * k;
        }
    A.values().copy_(Tensor::from_vector(a, A.values().shape()));
    for (int keep : keeps) pdarts_drop_ops(net, keep, /*released=*/true);
    // Per normal row: the ops above the row's minimum, and the row.
    std::vector<float> v = A.values().to_vector();
    const int64_t o = A.offset(net.alpha_index(CellType::Normal, 0));
    std::vector<float> row(v.begin() + o, v.begin() + o + 7);
    const float mn = *std::min_element(row.begin(), row.end());
    std::vector<int> up;
    for (int k = 0; k < 7; ++k)
      if (row[static_cast<size_t>(k)] > mn) up.push_back(k);
    return std::make_pair(up, row);
  };
  // [4, 5]: stage 1 keeps 0..3 (4..6 at -1e-4); stage 2 keeps the 5 largest by
  // reduce, which ties 4..6 at min - 1e-4: op 4 (the lower column) comes back
  // at -1e-4, 5 and 6 go to min(masked) - 1e-4 = -2e-4.
  const auto [grow, grow_row] = above_min({4, 5});
  REQUIRE(grow == std::vector<int>{0, 1, 2, 3, 4});
  REQUIRE(grow_row[4] == Approx(-1e-4f));
  REQUIRE(grow_row[5] == Approx(-2e-4f));
  // The paper's shrinking [5, 4]: only ops 0..3 stay above the minimum.
  const auto [shrink, shrink_row] = above_min({5, 4});
  REQUIRE(shrink == std::vector<int>{0, 1, 2, 3});
  REQUIRE(shrink_row[4] == Approx(-1e-4f));
  // Validation: growing lists only with the released drop (pruned ops cannot return).
  REQUIRE_THROWS_WITH(TaskRegularizers::from_json("{\"stages\": 3, \"keep_ops\": [4, 5]}"),
                      Catch::Contains("keep_ops must not grow") && Catch::Contains("drop_released"));
  REQUIRE_NOTHROW(TaskRegularizers::from_json("{\"stages\": 3, \"keep_ops\": [4, 5], \"drop_released\": true}"));
}

TEST_CASE("P-DARTS skip limit, released rule: ranked by the column left of skip, fewer than M remain",
          "[nas][regularizers]") {
  Rng rng(2);
  SearchConfig c = tiny_search_config();
  c.nodes = 3;
  SearchNetwork net(c, rng);
  ParamSet& A = *net.alphas();
  std::vector<float> a = A.values().to_vector();
  // Normal rows r = 0..8 (node 0: 0-1, node 1: 2-4, node 2: 5-8) all prefer skip
  // (column 2, logit 1 + 0.1 r) over sep_conv_3x3 (0.5); column 1 (avg pool,
  // the released ranking key) is -0.01 r, so the released order is r = 8, 7, ..
  std::vector<int64_t> rows;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < i + 2; ++j) rows.push_back(A.offset(net.alpha_index(CellType::Normal, i)) + j * 7);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int k = 0; k < 7; ++k) a[rows[r] + k] = 0.f;
    a[rows[r] + 2] = 1.f + 0.1f * static_cast<float>(r);
    a[rows[r] + 5] = 0.5f;
    a[rows[r] + 1] = -0.01f * static_cast<float>(r);
  }
  // Planted input pairs: node 0 (0,1), node 1 (1,2), node 2 (0,3): rows 0, 1, 3, 4, 5, 8.
  const std::pair<int, int> want[3] = {{0, 1}, {1, 2}, {0, 3}};
  for (int i = 0; i < 3; ++i) {
    const auto pairs = SearchNetwork::input_pairs(i + 2);
    const int64_t po = A.offset(net.pair_index(CellType::Normal, i));
    for (size_t q = 0; q < pairs.size(); ++q) a[po + static_cast<int64_t>(q)] = pairs[q] == want[i] ? 5.f : 0.f;
  }
  A.values().copy_(Tensor::from_vector(a, A.values().shape()));
  const std::vector<float> planted = a;
  auto skip_rows = [&] {  // the rows whose derived op is skip_connect
    std::vector<int> r;
    const Genotype g = net.genotype();
    const int first[3] = {0, 2, 5};
    for (int i = 0; i < 3; ++i)
      for (const auto& e : g.normal[static_cast<size_t>(i)])
        if (e.op == Primitive::SkipConnect) r.push_back(first[i] + e.input);
    std::sort(r.begin(), r.end());
    return r;
  };
  REQUIRE(skip_rows() == std::vector<int>{0, 1, 3, 4, 5, 8});
  SECTION("the paper's rule keeps the M = 2 strongest skips") {
    REQUIRE(limit_skip_connections(net, 2) == 4);
    REQUIRE(skip_rows() == std::vector<int>{5, 8});
  }
  SECTION("released: visits r = 8, 7, .., lowers row r - 1 each time, stops below M") {
    // r = 8..1 lower rows 7..0; the derived count drops at rows 5, 4, 3, 1, 0 and is 1 after row 0.
    REQUIRE(limit_skip_connections_released(net, 2) == 8);
    REQUIRE(skip_rows() == std::vector<int>{8});
    std::vector<float> v = A.values().to_vector();
    for (size_t r = 0; r < rows.size(); ++r) {
      INFO("row " << r);
      if (r == 8)
        REQUIRE(v[rows[r] + 2] == planted[rows[r] + 2]);
      else
        REQUIRE(v[rows[r] + 2] == Approx(-0.01f * static_cast<float>(r) - 1e-4f).margin(1e-6));
    }
    REQUIRE(limit_skip_connections_released(net, 2) == 0);  // 1 < M: nothing to do
  }
  SECTION("released with M = 1 never stops early: every row visited") {
    REQUIRE(limit_skip_connections_released(net, 1) == 9);
    REQUIRE(skip_rows() == std::vector<int>{8});  // row 8 is never the lowered row
  }
}

TEST_CASE("P-DARTS skip limit: at most M skips in the derived normal cell, lowest skip logits first",
          "[nas][regularizers]") {
  Rng rng(2);
  SearchConfig c = tiny_search_config();
  c.nodes = 3;
  SearchNetwork net(c, rng);
  ParamSet& A = *net.alphas();
  std::vector<float> a = A.values().to_vector();
  // Every row prefers skip (column 2) with a distinct margin; the second best is sep_conv_3x3 (5).
  for (CellType t : {CellType::Normal, CellType::Reduce})
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < i + 2; ++j) {
        const int64_t o = A.offset(net.alpha_index(t, i)) + j * 7;
        for (int k = 0; k < 7; ++k) a[o + k] = 0.f;
        a[o + 2] = 1.f + 0.1f * (i * 4 + j);
        a[o + 5] = 0.5f;
      }
  A.values().copy_(Tensor::from_vector(a, A.values().shape()));
  auto skips = [](const std::vector<GenotypeNode>& cell) {
    int n = 0;
    for (const auto& node : cell)
      for (const auto& e : node) n += e.op == Primitive::SkipConnect;
    return n;
  };
  const Genotype g0 = net.genotype();
  REQUIRE(skips(g0.normal) == 6);
  const int lowered = limit_skip_connections(net, 2);
  const Genotype g = net.genotype();
  REQUIRE(lowered == 4);
  REQUIRE(skips(g.normal) == 2);
  REQUIRE(skips(g.reduce) == 6);  // per cell type: the reduce cell is not limited
  // The two kept skips are the derived edges with the largest skip logits.
  std::vector<std::pair<float, int>> sel;  // (skip logit, node*10+input) of g0's edges
  for (size_t i = 0; i < g0.normal.size(); ++i)
    for (const auto& e : g0.normal[i]) sel.push_back({1.f + 0.1f * (static_cast<int>(i) * 4 + e.input), static_cast<int>(i) * 10 + e.input});
  std::sort(sel.rbegin(), sel.rend());
  for (size_t i = 0; i < g.normal.size(); ++i)
    for (const auto& e : g.normal[i]) {
      const int id = static_cast<int>(i) * 10 + e.input;
      const bool top2 = id == sel[0].second || id == sel[1].second;
      REQUIRE((e.op == Primitive::SkipConnect) == top2);
      if (!top2) REQUIRE(e.op == Primitive::SepConv3x3);
    }
  REQUIRE(limit_skip_connections(net, 2) == 0);
  SearchConfig nos = c;
  nos.space = "darts";
  Rng r2(3);
  SearchNetwork dn(nos, r2);
  REQUIRE_NOTHROW(limit_skip_connections(dn, 8));
}

TEST_CASE("TSE-DARTS: the unroll restores the weights bit for bit and changes only the alphas",
          "[nas][regularizers]") {
  Rng rng(7);
  SearchNetwork net(tiny_search_config(), rng);
  DartsOptions o;
  o.w_lr = 0.05f;
  o.a_lr = 0.05f;
  DartsTaskOptimizer opt(net, o);
  Rng xr(8);
  Batch b1{Tensor::randn(Shape{6, 1, 8, 8}, xr), Tensor::from_ints({0, 1, 2, 0, 1, 2}, Shape{6})};
  Batch b2{Tensor::randn(Shape{6, 1, 8, 8}, xr), Tensor::from_ints({2, 1, 0, 2, 1, 0}, Shape{6})};
  ForwardContext ctx;
  // Reference: a first-order alpha step at the same weights on a clone.
  std::unique_ptr<Model> ref = net.clone();
  DartsTaskOptimizer ropt(*ref, o);
  ropt.compute_arch_gradient(b1, b1, ctx);
  ropt.a_optimizer()->step();

  const std::vector<float> w0 = net.weights().values().to_vector();
  const std::vector<float> a0 = net.alphas()->values().to_vector();
  ParamSet snap = net.weights().clone();
  tse_unroll(opt, net, b1, ctx, snap);
  const std::vector<float> w1 = net.weights().values().to_vector();
  const std::vector<float> a1 = net.alphas()->values().to_vector();
  REQUIRE(std::memcmp(w0.data(), w1.data(), sizeof(float) * w0.size()) == 0);
  int changed = 0;
  for (size_t i = 0; i < a0.size(); ++i) changed += a0[i] != a1[i];
  REQUIRE(changed > static_cast<int>(a0.size()) / 2);
  const std::vector<float> ar = ref->alphas()->values().to_vector();
  for (size_t i = 0; i < a1.size(); ++i) REQUIRE(a1[i] == Approx(ar[i]).margin(1e-6));
  // The Adam moments of the unrolled weight step are kept (step count 1).
  REQUIRE(opt.w_optimizer().steps() == 1);

  // A full round then retrains the weights with the new alphas.
  DartsStepResult r = tse_step(opt, net, b1, b2, ctx, 2, snap);
  REQUIRE(r.alpha_updated);
  REQUIRE(std::isfinite(r.w_loss.item()));
  const std::vector<float> w2 = net.weights().values().to_vector();
  REQUIRE(std::memcmp(w0.data(), w2.data(), sizeof(float) * w0.size()) != 0);
}

namespace {
// d/dp sum(R * f) vs central differences (closer of eps, eps/4), relative to
// the largest numeric gradient.
double fd_error(const std::function<Tensor()>& f, ParamSet& ps, int stride) {
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = f();
  }
  Rng rr(77);
  std::vector<float> R(static_cast<size_t>(y0.numel()));
  for (auto& r : R) r = 2.f * rr.uniform() - 1.f;
  auto probe = [&]() {
    NoGradGuard ng;
    std::vector<float> y = f().to_vector();
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(R[i]) * y[i];
    return s;
  };
  ps.zero_grad();
  f().backward(Tensor::from_vector(R, y0.shape()));
  const std::vector<float> ana = ps.grads().to_vector();
  const std::vector<float> base = ps.values().to_vector();
  auto q = [&](int64_t i, double e) {
    std::vector<float> v = base;
    v[static_cast<size_t>(i)] = static_cast<float>(base[static_cast<size_t>(i)] + e);
    const double hp = v[static_cast<size_t>(i)];
    ps.values().copy_(Tensor::from_vector(v, Shape{ps.numel()}));
    const double lp = probe();
    v[static_cast<size_t>(i)] = static_cast<float>(base[static_cast<size_t>(i)] - e);
    ps.values().copy_(Tensor::from_vector(v, Shape{ps.numel()}));
    const double lm = probe();
    return (lp - lm) / (hp - v[static_cast<size_t>(i)]);
  };
  std::vector<std::pair<double, double>> pairs;
  double maxabs = 0;
  for (int64_t i = 0; i < ps.numel(); i += stride) {
    const double a = ana[static_cast<size_t>(i)], q1 = q(i, 1e-3), q2 = q(i, 2.5e-4);
    const double n = std::fabs(q1 - a) <= std::fabs(q2 - a) ? q1 : q2;
    pairs.push_back({a, n});
    maxabs = std::max(maxabs, std::fabs(n));
  }
  ps.values().copy_(Tensor::from_vector(base, Shape{ps.numel()}));
  double worst = 0;
  for (auto [a, n] : pairs) worst = std::max(worst, std::fabs(a - n) / std::max(maxabs, 1e-6));
  return worst;
}
}  // namespace

TEST_CASE("gradients through the sharp ops and the regularized mixings match finite differences",
          "[nas][regularizers][gradient]") {
  SECTION("each sharp primitive: input and weights") {
    for (Primitive p : {Primitive::SharpAvgPool3x3, Primitive::SharpMaxPool3x3, Primitive::SharpSepConv3x3,
                        Primitive::FloodConv3x3, Primitive::SharpDilConv3x3, Primitive::DilFloodConv3x3}) {
      for (int stride : {1, 2}) {
        Rng rng(4);
        PrimitiveOp op(p, 2, stride, true, rng);
        Rng xr(5);
        ParamSet xin;
        xin.add("x", Shape{3, 2, 6, 6});
        xin.finalize();
        xin.values().copy_(Tensor::randn(Shape{xin.numel()}, xr));
        INFO(primitive_name(p) << " stride " << stride);
        REQUIRE(op.forward(xin[0]).shape() == Shape{3, 2, 6 / stride, 6 / stride});
        REQUIRE(fd_error([&] { return op.forward(xin[0]); }, xin, 3) < 2e-2);
        if (op.weights().numel() > 0) REQUIRE(fd_error([&] { return op.forward(xin[0]); }, op.weights(), 7) < 2e-2);
      }
    }
  }
  SECTION("alphas, pairs and edge weights through max-w, aux skip and partial channels") {
    SearchConfig c = tiny_search_config();
    c.mixed_op = "max_w";
    c.aux_skip = true;
    c.partial_channels = 2;
    c.edge_normalization = true;
    Rng rng(11);
    SearchNetwork net(c, rng);
    Rng ar(12);
    net.alphas()->values().copy_(Tensor::randn(Shape{net.alphas()->numel()}, ar, 0.7f));
    Rng xr(13);
    Tensor x = Tensor::randn(Shape{4, 1, 8, 8}, xr);
    ForwardContext ctx;
    ctx.temperature = 0.6f;
    ctx.prune_threshold = -1.f;
    ctx.aux_skip_beta = 0.6f;
    REQUIRE(fd_error([&] { return net.forward(x, ctx); }, *net.alphas(), 1) < 2e-2);
    REQUIRE(fd_error([&] { return net.forward(x, ctx); }, net.weights(), 37) < 5e-2);
  }
}

TEST_CASE("task regularizer options: schedules, JSON and validation", "[nas][regularizers]") {
  TaskRegularizers r;
  REQUIRE(r.aux_beta_at(0, 5) == 1.f);
  REQUIRE(r.aux_beta_at(2, 5) == Approx(0.6f));
  REQUIRE(r.aux_beta_at(4, 5) == Approx(0.2f));
  REQUIRE(r.aux_beta_at(5, 5) == 0.f);
  r.aux_beta_schedule = "fixed";
  r.aux_beta = 0.7f;
  REQUIRE(r.aux_beta_at(0, 5) == 0.7f);
  REQUIRE(r.aux_beta_at(9, 5) == 0.7f);
  r.stages = 3;
  r.skip_dropout = {0.f, 0.f, 0.3f};
  REQUIRE(r.skip_dropout_at(2, 0) == Approx(0.3f));
  REQUIRE(r.skip_dropout_at(2, 3) == Approx(0.3f * std::exp(-0.6f)));
  REQUIRE(r.skip_dropout_at(1, 0) == 0.f);
  const TaskRegularizers back = TaskRegularizers::from_json(r.to_json());
  REQUIRE(back == r);
  REQUIRE_THROWS_WITH(TaskRegularizers::from_json("{\"tse_step\": 1}"), Catch::Contains("unknown key 'tse_step'"));
  REQUIRE_THROWS_WITH(TaskRegularizers::from_json("{\"tse_steps\": 3}"), Catch::Contains("tse_steps"));
  REQUIRE_THROWS_WITH(TaskRegularizers::from_json("{\"stages\": 3, \"keep_ops\": [5]}"), Catch::Contains("keep_ops"));
  REQUIRE_THROWS_WITH(TaskRegularizers::from_json("{\"aux_beta_schedule\": \"cosine\"}"),
                      Catch::Contains("aux_beta_schedule"));
  REQUIRE_THROWS_WITH(TaskRegularizers::from_json("{\"skip_dropout\": [0.5, 0.1]}"), Catch::Contains("skip_dropout"));
  REQUIRE(TaskRegularizers::from_json("{\"skip_limit\": 2, \"skip_limit_released\": true}").skip_limit_released);
  REQUIRE_THROWS_WITH(TaskRegularizers::from_json("{\"skip_limit_released\": true}"),
                      Catch::Contains("skip_limit_released needs skip_limit"));
}
