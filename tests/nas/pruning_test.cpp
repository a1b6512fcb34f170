// Soft pruning: pruned ops/pairs are not computed and the network equals the
// one with those terms removed; meta-model pruning; sparse parameter counts.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/ops.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"
#include "tests/nas/forward_fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

namespace {

// Sets every architecture logit to N(0, 1) so that weights differ clearly.
void randomize_alphas(SearchNetwork& net, uint64_t seed) {
  Rng r(seed);
  ParamSet& a = *net.alphas();
  a.values().copy_(Tensor::randn(Shape{a.numel()}, r));
}

}  // namespace

TEST_CASE("meta-pruned ops are not computed and the network equals the one computing them with weight 0",
          "[nas][pruning]") {
  Rng rng(3);
  SearchNetwork net(tiny_search_config(), rng);
  randomize_alphas(net, 4);
  // Prune some ops of both cell types: logits of -1e9 give softmax weight 0.
  int pruned = 0;
  for (CellType t : {CellType::Normal, CellType::Reduce})
    for (int node = 0; node < 2; ++node)
      for (int64_t e = 0; e < (node + 2) * kNumPrimitives; e += 3) {
        set_logit(net, net.alpha_index(t, node), e, kPrunedLogit);
        ++pruned;
      }
  Tensor x = random_images(4, 1, 8, 5);
  ForwardContext skip;  // prune_threshold 0: zero weights are skipped
  ForwardContext all;
  all.prune_threshold = -1.f;  // compute everything
  ForwardOutputs a = forward_backward(net, x, skip), b = forward_backward(net, x, all);
  REQUIRE(b.stats.ops_computed == b.stats.ops_total);
  REQUIRE(a.stats.ops_total == b.stats.ops_total);
  // one cell of each type: each pruned logit removes exactly one op evaluation
  REQUIRE(a.stats.ops_computed == a.stats.ops_total - pruned);
  require_close(a.logits, b.logits, 1e-5);
  require_close(a.galpha, b.galpha, 1e-4);
  require_close(a.gweight, b.gweight, 1e-4);
}

TEST_CASE("threshold pruning of small ops and pairs equals the network with them removed",
          "[nas][pruning]") {
  Rng rng(6);
  SearchNetwork net(tiny_search_config(), rng);
  randomize_alphas(net, 7);
  // Node 1 of the normal cell: keep only the pair (0, 1) (pairs: (0,1), (0,2), (1,2)),
  // so its input 2 (node 0) feeds no surviving pair and none of its ops run.
  const int pn = net.pair_index(CellType::Normal, 1);
  set_logit(net, pn, 0, 3.f);
  set_logit(net, pn, 1, -25.f);
  set_logit(net, pn, 2, -25.f);
  // Make a few ops tiny (weight ~1e-11) in the reduce cell.
  const int ar = net.alpha_index(CellType::Reduce, 0);
  for (int64_t e : {0, 4, 9, 13}) set_logit(net, ar, e, -25.f);

  Tensor x = random_images(4, 1, 8, 8);
  ForwardContext ctx;
  ctx.prune_threshold = 1e-4f;
  ForwardOutputs pruned = forward_backward(net, x, ctx);
  const int expected_skipped = 7 + 4;  // all ops of input 2 + the four tiny ops
  REQUIRE(pruned.stats.ops_computed == pruned.stats.ops_total - expected_skipped);
  REQUIRE(pruned.stats.pairs_kept == pruned.stats.pairs_total - 2);

  // The removed network: the same terms with weight exactly 0, all computed.
  set_logit(net, pn, 1, kPrunedLogit);
  set_logit(net, pn, 2, kPrunedLogit);
  for (int64_t e : {0, 4, 9, 13}) set_logit(net, ar, e, kPrunedLogit);
  ForwardContext all;
  all.prune_threshold = -1.f;
  ForwardOutputs removed = forward_backward(net, x, all);
  REQUIRE(removed.stats.ops_computed == removed.stats.ops_total);
  require_close(pruned.logits, removed.logits, 1e-5);
  require_close(pruned.gweight, removed.gweight, 1e-4);
}

TEST_CASE("a node whose terms are all pruned outputs zeros", "[nas][pruning]") {
  Rng rng(1);
  SearchNetwork net(tiny_search_config(), rng);
  ForwardContext ctx;
  ctx.prune_threshold = 0.99f;  // prunes every op and pair
  Tensor logits = net.forward(random_images(4, 1, 8, 2), ctx);
  REQUIRE(net.last_forward_stats().ops_computed == 0);
  // zero features -> every row is the classifier bias
  std::vector<float> bias = net.weights().get("classifier.bias").to_vector();
  std::vector<float> y = logits.to_vector();
  for (size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(bias[i % 3]).margin(1e-6));
}

TEST_CASE("meta_prune sets logits with probability below the threshold at t_min to -1e9",
          "[nas][pruning]") {
  Rng rng(2);
  SearchNetwork net(tiny_search_config(), rng);
  randomize_alphas(net, 9);
  std::vector<float> before = net.alphas()->values().to_vector();
  const float thr = 0.01f, t_min = 0.5f;
  int expected = 0;
  ForwardContext c;
  c.temperature = t_min;
  for (CellType t : {CellType::Normal, CellType::Reduce})
    for (int node = 0; node < 2; ++node) {
      std::vector<float> a = (*net.alphas())[net.alpha_index(t, node)].to_vector();
      for (float w : normalize_host(a, node + 2, kNumPrimitives, c)) expected += w < thr;
    }
  REQUIRE(expected > 0);
  const int n = meta_prune(net, thr, t_min);
  REQUIRE(n == expected);
  REQUIRE(meta_prune(net, thr, t_min) == 0);  // already pruned
  std::vector<float> after = net.alphas()->values().to_vector();
  int changed = 0;
  for (size_t i = 0; i < after.size(); ++i)
    if (after[i] != before[i]) {
      REQUIRE(after[i] == kPrunedLogit);
      ++changed;
    }
  REQUIRE(changed == expected);
  // pair weights are untouched
  for (CellType t : {CellType::Normal, CellType::Reduce})
    for (int node = 0; node < 2; ++node) {
      const ParamSet& a = *net.alphas();
      const int pi = net.pair_index(t, node);
      for (int64_t k = 0; k < a.shape(pi).numel(); ++k)
        REQUIRE(after[static_cast<size_t>(a.offset(pi) + k)] == before[static_cast<size_t>(a.offset(pi) + k)]);
    }
  // and the pruned ops are skipped by the next forward
  net.forward(random_images(4, 1, 8, 1), ForwardContext{});
  REQUIRE(net.last_forward_stats().ops_computed == net.last_forward_stats().ops_total - expected);
}

TEST_CASE("sparse parameter count subtracts exactly the unreachable ops", "[nas][pruning]") {
  Rng rng(4);
  SearchNetwork net(tiny_search_config(), rng);
  ForwardContext ctx;
  REQUIRE(net.sparse_param_count(ctx) == net.weights().numel());
  const int64_t C = 4;
  const int64_t conv15 = 2 * 5 * C * C, dwpw = 9 * C + C * C, fr = 2 * C * (C / 2);
  // Normal cell, node 0: prune conv_1x5_5x1 and max_pool on input 1.
  const int an = net.alpha_index(CellType::Normal, 0);
  set_logit(net, an, 1 * kNumPrimitives + 3, kPrunedLogit);
  set_logit(net, an, 1 * kNumPrimitives + 0, kPrunedLogit);
  int64_t expect = net.weights().numel() - conv15;
  REQUIRE(net.sparse_param_count(ctx) == expect);
  // Reduce cell, node 1: keep only pair (1, 2): input 0 (stride 2) is unreachable.
  const int pr = net.pair_index(CellType::Reduce, 1);
  set_logit(net, pr, 0, kPrunedLogit);
  set_logit(net, pr, 1, kPrunedLogit);
  const int64_t stride2_edge = conv15 + dwpw + 2 * dwpw + dwpw + fr;  // all 7 ops at stride 2
  expect -= stride2_edge;
  REQUIRE(net.sparse_param_count(ctx) == expect);
  // With no pruning at all (negative threshold) everything counts.
  ctx.prune_threshold = -1.f;
  REQUIRE(net.sparse_param_count(ctx) == net.weights().numel());
}

TEST_CASE("drop-path in the search network acts only in training and is reproducible from the rng",
          "[nas][pruning]") {
  Rng rng(8);
  SearchNetwork net(tiny_search_config(), rng);
  Tensor x = random_images(8, 1, 8, 3);
  std::vector<float> plain = net.forward(x, ForwardContext{}).to_vector();
  ForwardContext ctx;
  ctx.drop_path_prob = 0.5f;
  Rng r1(10), r2(10);
  ctx.rng = &r1;
  std::vector<float> d1 = net.forward(x, ctx).to_vector();
  ctx.rng = &r2;
  std::vector<float> d2 = net.forward(x, ctx).to_vector();
  REQUIRE(d1 == d2);
  REQUIRE(d1 != plain);
  ctx.training = false;
  REQUIRE(net.forward(x, ctx).to_vector() == plain);
}
