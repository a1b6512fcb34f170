// drop_path: identity at p = 0, exact scaling of kept samples, a plausible
// drop rate, reproducibility from the rng, gradients only through kept samples.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::grad_check;

TEST_CASE("drop_path with p = 0 returns its input and draws nothing", "[drop_path]") {
  Rng data(50);
  Tensor x = Tensor::randn({4, 3, 2, 2}, data);
  Rng rng(7), twin(7);
  Tensor y = drop_path(x, 0.f, rng);
  REQUIRE(y.same_as(x));
  REQUIRE(rng.next_u64() == twin.next_u64());
}

TEST_CASE("drop_path zeroes whole samples and scales the kept ones by exactly 1/(1-p)",
          "[drop_path]") {
  Rng data(51);
  const float p = 0.4f;
  Tensor x = Tensor::randn({32, 3, 4, 4}, data);
  Rng rng(52);
  Tensor y = drop_path(x, p, rng);
  REQUIRE(y.shape() == x.shape());
  auto xv = x.to_vector(), yv = y.to_vector();
  const float scale = 1.f / (1.f - p);
  const int64_t per = 3 * 4 * 4;
  int kept = 0;
  for (int64_t n = 0; n < 32; ++n) {
    const bool keep = yv[n * per] != 0.f;
    kept += keep;
    for (int64_t i = 0; i < per; ++i) REQUIRE(yv[n * per + i] == (keep ? xv[n * per + i] * scale : 0.f));
  }
  REQUIRE(kept > 0);
  REQUIRE(kept < 32);
  // The same rng state draws the same mask.
  Rng again(52);
  REQUIRE(drop_path(x, p, again).to_vector() == yv);
}

TEST_CASE("drop_path drops a plausible fraction of many samples", "[drop_path]") {
  Rng rng(53);
  const int64_t N = 20000;
  for (float p : {0.2f, 0.5f}) {
    Tensor y = drop_path(Tensor::ones({N, 2}), p, rng);
    auto v = y.to_vector();
    int64_t dropped = 0;
    for (int64_t n = 0; n < N; ++n) dropped += v[2 * n] == 0.f;
    const double frac = static_cast<double>(dropped) / N;
    const double sigma = std::sqrt(p * (1.0 - p) / N);
    INFO("p " << p << " dropped " << frac);
    REQUIRE(std::fabs(frac - p) < 5 * sigma);
  }
}

TEST_CASE("drop_path's gradient flows only through kept samples", "[drop_path]") {
  Rng data(54);
  const float p = 0.5f;
  Tensor x = Tensor::randn({10, 6}, data);
  // Every forward of the check must draw the same mask: a fresh rng each call.
  auto f = [p](const std::vector<Tensor>& t) {
    Rng rng(55);
    return drop_path(t[0], p, rng);
  };
  auto r = grad_check(f, {x}, 0);
  INFO(r.message);
  REQUIRE(r.ok);

  Tensor xl = x.clone().set_requires_grad();
  Rng rng(55);
  Tensor y = drop_path(xl, p, rng);
  Tensor g = Tensor::randn({10, 6}, data);
  y.backward(g);
  auto yv = y.to_vector(), gv = g.to_vector(), dx = xl.grad().to_vector();
  int kept = 0;
  for (int64_t n = 0; n < 10; ++n) {
    const bool keep = yv[n * 6] != 0.f;
    kept += keep;
    for (int64_t i = 0; i < 6; ++i) REQUIRE(dx[n * 6 + i] == (keep ? gv[n * 6 + i] * 2.f : 0.f));
  }
  REQUIRE(kept > 0);
  REQUIRE(kept < 10);
}

TEST_CASE("drop_path rejects probabilities outside 0 <= p < 1", "[drop_path]") {
  Rng rng(56);
  Tensor x = Tensor::zeros({2, 3});
  for (float p : {-0.1f, 1.f, 1.5f, std::nanf("")}) {
    try {
      drop_path(x, p, rng);
      FAIL("no throw for p " << p);
    } catch (const Error& e) {
      REQUIRE(std::string(e.what()).find("drop_path") != std::string::npos);
    }
  }
  REQUIRE_THROWS_AS(drop_path(Tensor::scalar(1.f), 0.5f, rng), Error);
}
