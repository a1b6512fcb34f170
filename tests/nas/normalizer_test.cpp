// Normalizers (softmax with temperature, relu-softmax, gumbel-softmax) and
// the temperature schedule.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/normalizer.h"
#include "support/gradcheck.h"

using namespace metanas;
using namespace metanas::nas;

TEST_CASE("temperature schedule: 5 steps from 1.0 to 0.05", "[nas][normalizer]") {
  TemperatureSchedule s{1.0, 0.05, 5};
  const double expect[] = {1.0, 0.7625, 0.525, 0.2875, 0.05};
  for (int i = 0; i < 5; ++i) REQUIRE(s.at(i) == Approx(expect[i]).epsilon(1e-12));
  // held at t_min afterwards, t_max throughout warm-up
  REQUIRE(s.at(5) == Approx(0.05));
  REQUIRE(s.at(50) == Approx(0.05));
  for (int i = 0; i < 8; ++i) REQUIRE(s.at(i, /*warmup=*/true) == 1.0);
  REQUIRE(s.progress(0) == 0.0);
  REQUIRE(s.progress(2) == Approx(0.5));
  REQUIRE(s.progress(4) == 1.0);
  REQUIRE(s.progress(3, true) == 0.0);
  ForwardContext ctx;
  s.apply(ctx, 1);
  REQUIRE(ctx.temperature == Approx(0.7625f));
  REQUIRE(ctx.anneal_progress == Approx(0.25f));
  // degenerate: one step
  TemperatureSchedule one{2.0, 0.5, 1};
  REQUIRE(one.at(0) == 2.0);
  REQUIRE(one.at(1) == 0.5);
  REQUIRE_THROWS_AS((TemperatureSchedule{0.1, 0.5, 5}.validate()), Error);
  REQUIRE_THROWS_AS((TemperatureSchedule{1.0, 0.0, 5}.validate()), Error);
}

TEST_CASE("softmax normalizer divides by the temperature per row", "[nas][normalizer]") {
  std::vector<float> a = {0.3f, -1.2f, 2.0f, 0.f, 0.5f, 0.5f, -0.1f, 1.f};
  Tensor t = Tensor::from_vector(a, Shape{2, 4});
  for (float T : {1.f, 0.25f, 3.f}) {
    ForwardContext ctx;
    ctx.temperature = T;
    std::vector<float> y = normalize(t, ctx).to_vector();
    std::vector<float> yh = normalize_host(a, 2, 4, ctx);
    for (int r = 0; r < 2; ++r) {
      double z = 0;
      for (int c = 0; c < 4; ++c) z += std::exp(a[static_cast<size_t>(r * 4 + c)] / static_cast<double>(T));
      for (int c = 0; c < 4; ++c) {
        const double ref = std::exp(a[static_cast<size_t>(r * 4 + c)] / static_cast<double>(T)) / z;
        REQUIRE(y[static_cast<size_t>(r * 4 + c)] == Approx(ref).margin(1e-6));
        REQUIRE(yh[static_cast<size_t>(r * 4 + c)] == Approx(ref).margin(1e-6));
      }
    }
  }
  // 1-D logits are one row
  ForwardContext ctx;
  std::vector<float> p = normalize(Tensor::from_vector({1.f, 1.f, 1.f}, Shape{3}), ctx).to_vector();
  for (float v : p) REQUIRE(v == Approx(1.0 / 3));
}

TEST_CASE("relu-softmax mixes softmax and relu normalisation by the annealing progress",
          "[nas][normalizer]") {
  std::vector<float> a = {0.8f, -0.4f, 0.2f, 1.5f, -2.f, -0.3f};
  Tensor t = Tensor::from_vector(a, Shape{2, 3});
  for (float lam : {0.f, 0.3f, 1.f}) {
    ForwardContext ctx;
    ctx.normalizer = Normalizer::ReluSoftmax;
    ctx.anneal_progress = lam;
    ctx.temperature = 0.1f;  // not used by relu-softmax (as MetaNAS)
    std::vector<float> y = normalize(t, ctx).to_vector();
    std::vector<float> yh = normalize_host(a, 2, 3, ctx);
    for (int r = 0; r < 2; ++r) {
      double z = 0, s = 0;
      for (int c = 0; c < 3; ++c) {
        z += std::exp(static_cast<double>(a[static_cast<size_t>(r * 3 + c)]));
        s += std::max(0.0, static_cast<double>(a[static_cast<size_t>(r * 3 + c)]));
      }
      for (int c = 0; c < 3; ++c) {
        const double v = a[static_cast<size_t>(r * 3 + c)];
        const double ref = (1 - lam) * std::exp(v) / z + lam * std::max(0.0, v) / s;
        REQUIRE(y[static_cast<size_t>(r * 3 + c)] == Approx(ref).margin(1e-6));
        REQUIRE(yh[static_cast<size_t>(r * 3 + c)] == Approx(ref).margin(1e-6));
      }
    }
    if (lam == 1.f) {
      REQUIRE(y[1] == 0.f);  // exact zeros: soft pruning skips them
      REQUIRE(y[4] == 0.f);
    }
  }
  // gradient by finite differences (lambda 0.6: both parts)
  ForwardContext ctx;
  ctx.normalizer = Normalizer::ReluSoftmax;
  ctx.anneal_progress = 0.6f;
  auto res = testing::grad_check([&](const std::vector<Tensor>& in) { return normalize(in[0], ctx); },
                                 {Tensor::from_vector({0.8f, -0.4f, 0.2f, 1.5f, -2.f, 0.3f}, Shape{2, 3})}, 0);
  INFO(res.message);
  REQUIRE(res.ok);
}

TEST_CASE("gumbel-softmax rows sum to 1 and the noise comes from the context rng", "[nas][normalizer]") {
  Tensor t = Tensor::from_vector({0.1f, 0.2f, 0.3f, 0.4f, 0.f, 0.f, 0.f, 0.f}, Shape{2, 4});
  ForwardContext ctx;
  ctx.normalizer = Normalizer::GumbelSoftmax;
  ctx.temperature = 0.5f;
  REQUIRE_THROWS_WITH(normalize(t, ctx), Catch::Contains("rng"));
  Rng r1(3), r2(3);
  ctx.rng = &r1;
  std::vector<float> a = normalize(t, ctx).to_vector();
  std::vector<float> b = normalize(t, ctx).to_vector();  // fresh noise
  ctx.rng = &r2;
  std::vector<float> c = normalize(t, ctx).to_vector();  // same seed as a
  REQUIRE(a == c);
  REQUIRE(a != b);
  for (int r = 0; r < 2; ++r) {
    double s = 0;
    for (int k = 0; k < 4; ++k) s += a[static_cast<size_t>(r * 4 + k)];
    REQUIRE(s == Approx(1.0).margin(1e-6));
  }
  // The noise is a constant: the gradient is that of softmax((a + g) / T).
  Rng r3(5);
  ctx.rng = &r3;
  Tensor x = t.clone().set_requires_grad();
  sum(mul(normalize(x, ctx), Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, Shape{2, 4}))).backward();
  std::vector<float> g = x.grad().to_vector();
  for (int r = 0; r < 2; ++r) {
    double s = 0;
    for (int k = 0; k < 4; ++k) s += g[static_cast<size_t>(r * 4 + k)];
    REQUIRE(s == Approx(0.0).margin(1e-5));  // softmax gradients sum to 0 per row
  }
}

TEST_CASE("normalizer names", "[nas][normalizer]") {
  for (Normalizer n : {Normalizer::Softmax, Normalizer::ReluSoftmax, Normalizer::GumbelSoftmax})
    REQUIRE(parse_normalizer(normalizer_name(n)) == n);
  REQUIRE(parse_normalizer("relusoftmax") == Normalizer::ReluSoftmax);
  REQUIRE_THROWS_WITH(parse_normalizer("sparsemax"), Catch::Contains("unknown normalizer"));
}
