// DARTS's `none` terms left out of the mixed ops (skip_zero_ops): the same
// logits and gradients, bit for bit, as computing them, on the host-planned
// and the device-planned forward, and the terms are really left out.
#include <catch2/catch.hpp>

#include "metanas/engine/ops.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"
#include "tests/nas/forward_fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

namespace {

// Restores the process-wide setting when a case ends.
struct ZeroOpsGuard {
  bool was = skip_zero_ops();
  ~ZeroOpsGuard() { set_skip_zero_ops(was); }
};

ForwardOutputs run(SearchNetwork& net, const Tensor& x, const ForwardContext& ctx, bool skip) {
  set_skip_zero_ops(skip);
  return forward_backward(net, x, ctx);
}

}  // namespace

TEST_CASE("leaving out the none terms changes no logit or gradient", "[nas][zero_ops]") {
  ZeroOpsGuard guard;
  SearchConfig cfg = tiny_search_config();
  cfg.space = "darts";  // 8 ops per edge, `none` among them
  Rng rng(11);
  SearchNetwork net(cfg, rng);
  Rng ra(12);
  ParamSet& a = *net.alphas();
  a.values().copy_(Tensor::randn(Shape{a.numel()}, ra));
  Tensor x = random_images(4, 1, 8, 13);
  // One `none` term per input of every node, per cell: inputs 2 + 3, two cells.
  const int per_forward = 2 * (2 + 3);

  for (const bool device_plan : {false, true}) {
    for (const float threshold : {-1.f, 0.f}) {
      DYNAMIC_SECTION("device plan " << device_plan << ", threshold " << threshold) {
        ForwardContext ctx;
        ctx.prune_threshold = threshold;
        if (device_plan) ctx.plan_epoch = next_plan_epoch();
        const ForwardOutputs off = run(net, x, ctx, false);
        if (device_plan) ctx.plan_epoch = next_plan_epoch();  // new candidates for the new setting
        const ForwardOutputs on = run(net, x, ctx, true);
        REQUIRE(off.stats.zero_ops_skipped == 0);
        REQUIRE(on.stats.zero_ops_skipped == per_forward);
        REQUIRE(on.stats.ops_computed == off.stats.ops_computed);
        REQUIRE(on.logits == off.logits);
        REQUIRE(on.galpha == off.galpha);
        REQUIRE(on.gweight == off.gweight);
      }
    }
  }
}

TEST_CASE("a node whose only term is none keeps it", "[nas][zero_ops]") {
  ZeroOpsGuard guard;
  SearchConfig cfg = tiny_search_config();
  cfg.space = "darts";
  Rng rng(21);
  SearchNetwork net(cfg, rng);
  const std::vector<Primitive>& ops = space_primitives(SearchSpace::Darts);
  int none = -1;
  for (size_t k = 0; k < ops.size(); ++k)
    if (ops[k] == Primitive::None) none = static_cast<int>(k);
  REQUIRE(none >= 0);
  const int P = static_cast<int>(ops.size());
  // Node 0 of the normal cell: every op but `none` meta-pruned, on both inputs.
  const int an = net.alpha_index(CellType::Normal, 0);
  for (int j = 0; j < 2; ++j)
    for (int k = 0; k < P; ++k)
      if (k != none) set_logit(net, an, j * P + k, kPrunedLogit);
  Tensor x = random_images(4, 1, 8, 22);
  ForwardContext ctx;
  ctx.plan_epoch = next_plan_epoch();
  const ForwardOutputs off = run(net, x, ctx, false);
  ctx.plan_epoch = next_plan_epoch();
  const ForwardOutputs on = run(net, x, ctx, true);
  // The other node of the normal cell (3 inputs) and the reduce cell's two (2 + 3) skip theirs.
  REQUIRE(on.stats.zero_ops_skipped == 3 + 2 + 3);
  REQUIRE(on.logits == off.logits);
  REQUIRE(on.galpha == off.galpha);
  REQUIRE(on.gweight == off.gweight);
}
