// The search network's stem cache (AT-NAS shared stem): a cached forward
// equals the uncached one bit for bit, hits only for the same input values and
// stem weights, and refuses a stem that still requires gradients.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/search_network.h"
#include "tests/nas/fixtures.h"

using namespace metanas;

namespace {
Tensor images(Rng& rng, int n) {
  std::vector<float> v(static_cast<size_t>(n) * 64);
  for (float& x : v) x = rng.uniform();
  return Tensor::from_vector(v, Shape{n, 1, 8, 8});
}
void freeze_stem(nas::SearchNetwork& net, bool frozen) {
  for (int i : net.stem_param_indices()) net.weights()[i].set_requires_grad(!frozen);
}
bool same_bits(const Tensor& a, const Tensor& b) { return a.to_vector() == b.to_vector(); }
}  // namespace

TEST_CASE("stem cache: same outputs as the uncached forward, hits only on equal inputs and stem", "[nas][stem_cache]") {
  Rng rng(11);
  nas::SearchNetwork net(testing::tiny_search_config(), rng);
  auto ref = net.clone();
  nas::ForwardContext ctx;
  ctx.prune_threshold = 0.f;
  const Tensor x1 = images(rng, 5), x2 = images(rng, 5);
  REQUIRE(net.stem_param_indices().size() == 3u);  // conv, BN gamma, BN beta

  freeze_stem(net, true);
  net.set_stem_cache(true);
  const Tensor a = net.forward(x1, ctx);
  REQUIRE(net.stem_cache_misses() == 1);
  const Tensor b = net.forward(x1, ctx);
  REQUIRE(net.stem_cache_hits() == 1);
  const Tensor c = net.forward(x2, ctx);  // other values: a miss
  REQUIRE(net.stem_cache_misses() == 2);
  REQUIRE(same_bits(a, ref->forward(x1, ctx)));
  REQUIRE(same_bits(b, a));
  REQUIRE(same_bits(c, ref->forward(x2, ctx)));
  REQUIRE_FALSE(same_bits(a, c));

  // A changed stem invalidates every entry: the output follows the new weights.
  const int conv = net.stem_param_indices()[0];
  Tensor w = net.weights()[conv];
  std::vector<float> wv = w.to_vector();
  for (float& v : wv) v *= 1.5f;
  w.copy_(Tensor::from_vector(wv, w.shape()));
  ref->weights()[conv].copy_(Tensor::from_vector(wv, w.shape()));
  const Tensor d = net.forward(x1, ctx);
  REQUIRE(net.stem_cache_misses() == 3);
  REQUIRE(same_bits(d, ref->forward(x1, ctx)));
  REQUIRE_FALSE(same_bits(d, a));

  // The cells still get gradients through a cached stem output.
  net.weights().zero_grad();
  sum(net.forward(x1, ctx)).backward();
  REQUIRE(net.stem_cache_hits() == 2);
  const std::vector<float> g = net.weights().grads().to_vector();
  float cells = 0.f, stem = 0.f;
  for (int i = 0; i < net.weights().size(); ++i) {
    const int64_t off = net.weights().offset(i), n = net.weights()[i].numel();
    float s = 0.f;
    for (int64_t k = 0; k < n; ++k) s += std::abs(g[static_cast<size_t>(off + k)]);
    (net.weights().name(i).rfind("stem.", 0) == 0 ? stem : cells) += s;
  }
  REQUIRE(cells > 0.f);
  REQUIRE(stem == 0.f);

  // A stem that requires gradients cannot use cached outputs.
  freeze_stem(net, false);
  REQUIRE_THROWS_AS(net.forward(x1, ctx), Error);
  net.set_stem_cache(false);
  REQUIRE(net.stem_cache_hits() == 0);
  REQUIRE(same_bits(net.forward(x1, ctx), ref->forward(x1, ctx)));
}
