// The device-side soft-pruning plan (ForwardContext::plan_epoch, issue 16):
// with threshold pruning and meta-pruned ops it gives the host plan's logits
// and gradients while reading the logits back once per epoch, not once per
// forward; and drop-path keyed by (seed, task, step, op) gives each op the
// same mask whichever other ops are computed, so both plans agree with
// drop-path on (the per-call seed draw of the old path would not).
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"
#include "tests/nas/forward_fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

namespace {

// A network with pruned pairs, tiny ops (below the threshold) and meta-pruned ops.
void prepare_net(SearchNetwork& net) {
  Rng r(7);
  ParamSet& a = *net.alphas();
  a.values().copy_(Tensor::randn(Shape{a.numel()}, r));
  const int pn = net.pair_index(CellType::Normal, 1);
  set_logit(net, pn, 1, -25.f);  // pairs (0,2), (1,2) of node 1 below the threshold
  set_logit(net, pn, 2, -25.f);
  const int ar = net.alpha_index(CellType::Reduce, 0);
  for (int64_t e : {0, 4, 9}) set_logit(net, ar, e, -25.f);        // tiny ops
  for (int64_t e : {2, 11}) set_logit(net, ar, e, kPrunedLogit);   // meta-pruned ops
}

}  // namespace

TEST_CASE("the device plan equals the host plan and reads the logits once per epoch", "[nas][pruning][sync]") {
  Rng rng(3);
  SearchNetwork net(tiny_search_config(), rng);
  prepare_net(net);
  Tensor x = random_images(4, 1, 8, 8);
  for (float drop : {0.f, 0.3f}) {
    INFO("drop-path " << drop);
    Rng g(11);
    ForwardContext host;
    host.prune_threshold = 1e-4f;
    host.drop_path_prob = drop;
    host.rng = &g;
    host.drop_key = PhiloxKey{99, 2, 1, 0};
    ForwardContext dev = host;
    dev.plan_epoch = next_plan_epoch();
    const ForwardOutputs h = forward_backward(net, x, host);
    const ForwardOutputs d1 = forward_backward(net, x, dev);
    const ForwardOutputs d2 = forward_backward(net, x, dev);
    REQUIRE(h.syncs >= 1);   // the host plan reads the weights back per forward (+ to_vector)
    REQUIRE(d1.syncs == 1);  // the epoch's one readback of the logits
    REQUIRE(d2.syncs == 0);  // later forwards of the epoch read nothing
    // More ops run (the tiny ones, with weight 0 from the device masks) ...
    REQUIRE(net.last_forward_stats().ops_computed > 0);
    // ... and the values and gradients are the host plan's.
    require_close(d1.logits, h.logits, 1e-6);
    require_close(d1.galpha, h.galpha, 1e-5);
    require_close(d1.gweight, h.gweight, 1e-5);
    require_close(d2.logits, d1.logits, 0);
  }
}

TEST_CASE("keyed drop-path masks depend on (seed, task, step, op), not on the generator", "[nas][drop_path][philox]") {
  Rng rng(5);
  SearchNetwork net(tiny_search_config(), rng);
  Tensor x = random_images(8, 1, 8, 4);
  auto logits = [&](PhiloxKey key, uint64_t rng_seed) {
    Rng g(rng_seed);
    ForwardContext c;
    c.drop_path_prob = 0.5f;
    c.rng = &g;
    c.drop_key = key;
    NoGradGuard ng;
    return net.forward(x, c).to_vector();
  };
  const PhiloxKey k{1234, 3, 2, 0};
  const auto base = logits(k, 1);
  REQUIRE(logits(k, 2) == base);  // the generator is not read
  for (int part = 0; part < 4; ++part) {
    PhiloxKey o = k;
    if (part == 0) o.seed += 1;
    if (part == 1) o.task += 1;
    if (part == 2) o.step += 1;
    if (part == 3) o.op += kDropPassStride;  // the next forward pass of the step
    INFO("key part " << part);
    REQUIRE(logits(o, 1) != base);
  }
}
