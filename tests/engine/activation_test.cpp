// sigmoid, tanh, exp, masked log_softmax, gather_cols, clamp, minimum: forward
// against double references, finite-difference gradients, PyTorch's
// conventions at clamp bounds and minimum ties, masking, and bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::close_ratio;
using metanas::testing::grad_check;

namespace {

std::vector<double> map_ref(const std::vector<float>& x, const std::function<double(double)>& f) {
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = f(x[i]);
  return y;
}

void require_grad_ok(const metanas::testing::OpFn& f, const std::vector<Tensor>& in, int which) {
  const auto r = grad_check(f, in, which);
  INFO(r.message);
  REQUIRE(r.ok);
}

}  // namespace

TEST_CASE("sigmoid, tanh and exp match double references, also far out", "[activation]") {
  Rng rng(1);
  std::vector<float> v = Tensor::randn({5, 7}, rng, 3.f).to_vector();
  v[0] = 90.f;  // exp(-x) underflows, exp(x) would overflow a naive sigmoid
  v[1] = -90.f;
  const Tensor x = Tensor::from_vector(v, {5, 7});
  CHECK(close_ratio(sigmoid(x).to_vector(), map_ref(v, [](double t) { return 1 / (1 + std::exp(-t)); }), 1e-7,
                    1e-6) <= 1);
  CHECK(close_ratio(tanh(x).to_vector(), map_ref(v, [](double t) { return std::tanh(t); }), 1e-7, 1e-6) <= 1);
  const Tensor small = mul_scalar(x, 0.1f);
  const std::vector<float> sv = small.to_vector();
  CHECK(close_ratio(exp(small).to_vector(), map_ref(sv, [](double t) { return std::exp(t); }), 1e-7, 1e-6) <= 1);
  const auto s = sigmoid(x).to_vector();
  CHECK(s[0] == 1.f);
  CHECK(s[1] >= 0.f);
  CHECK(std::isfinite(s[1]));
}

TEST_CASE("sigmoid, tanh and exp gradients match finite differences", "[activation]") {
  Rng rng(2);
  const Tensor x = Tensor::randn({4, 6}, rng, 1.5f);
  require_grad_ok([](const std::vector<Tensor>& t) { return sigmoid(t[0]); }, {x}, 0);
  require_grad_ok([](const std::vector<Tensor>& t) { return tanh(t[0]); }, {x}, 0);
  require_grad_ok([](const std::vector<Tensor>& t) { return exp(t[0]); }, {x}, 0);
}

TEST_CASE("log_softmax without and with a mask", "[activation]") {
  Rng rng(3);
  const int64_t R = 4, C = 6;
  const Tensor x = Tensor::randn({R, C}, rng, 2.f);
  const std::vector<float> xv = x.to_vector();
  std::vector<int32_t> mv(static_cast<size_t>(R * C));
  for (size_t i = 0; i < mv.size(); ++i) mv[i] = (i * 7 + 3) % 3 != 0;
  const Tensor mask = Tensor::from_ints(mv, {R, C});
  for (int masked = 0; masked < 2; ++masked) {
    INFO("masked " << masked);
    std::vector<double> ref(xv.size());
    for (int64_t r = 0; r < R; ++r) {
      double m = -1e300, s = 0;
      for (int64_t c = 0; c < C; ++c)
        if (!masked || mv[r * C + c]) m = std::max<double>(m, xv[r * C + c]);
      for (int64_t c = 0; c < C; ++c)
        if (!masked || mv[r * C + c]) s += std::exp(xv[r * C + c] - m);
      for (int64_t c = 0; c < C; ++c)
        ref[r * C + c] = (!masked || mv[r * C + c]) ? xv[r * C + c] - m - std::log(s) : -1e30;
    }
    const Tensor y = log_softmax(x, masked ? mask : Tensor());
    CHECK(close_ratio(y.to_vector(), ref, 1e-6, 1e-6) <= 1);
    // Probabilities of the allowed entries sum to one; masked ones are exactly zero.
    const auto p = exp(y).to_vector();
    for (int64_t r = 0; r < R; ++r) {
      double s = 0;
      for (int64_t c = 0; c < C; ++c) {
        s += p[r * C + c];
        if (masked && !mv[r * C + c]) CHECK(p[r * C + c] == 0.f);
      }
      CHECK(s == Approx(1.0).epsilon(1e-6));
    }
    // Entropy-like use (sum p log p) stays finite with masked entries.
    CHECK(std::isfinite(sum(mul(exp(y), y)).item()));
    const Tensor m = masked ? mask : Tensor();
    require_grad_ok([m](const std::vector<Tensor>& t) { return exp(log_softmax(t[0], m)); }, {x}, 0);
    if (!masked) require_grad_ok([](const std::vector<Tensor>& t) { return log_softmax(t[0]); }, {x}, 0);
  }
}

TEST_CASE("log_softmax's masked entries receive no gradient", "[activation]") {
  Tensor x = Tensor::from_vector({0.5f, -1.f, 2.f, 0.f}, {1, 4});
  x.set_requires_grad();
  const Tensor mask = Tensor::from_ints({1, 0, 1, 1}, {1, 4});
  sum(log_softmax(x, mask)).backward();  // a plain sum also touches the masked -1e30 entry
  const auto g = x.grad().to_vector();
  CHECK(g[1] == 0.f);
  // d/dx_j sum_i (x_i - lse) over the 3 allowed = 1 - 3 softmax_j
  const double e0 = std::exp(0.5), e2 = std::exp(2.0), e3 = 1.0, z = e0 + e2 + e3;
  CHECK(g[0] == Approx(1 - 3 * e0 / z));
  CHECK(g[2] == Approx(1 - 3 * e2 / z));
  CHECK(g[3] == Approx(1 - 3 * e3 / z));
}

TEST_CASE("gather_cols picks one entry per row and routes its gradient back", "[activation]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  x.set_requires_grad();
  const Tensor idx = Tensor::from_ints({2, 0}, {2});
  const Tensor y = gather_cols(x, idx);
  REQUIRE(y.to_vector() == std::vector<float>{3.f, 4.f});
  y.backward(Tensor::from_vector({0.5f, -2.f}, {2}));
  REQUIRE(x.grad().to_vector() == std::vector<float>{0, 0, 0.5f, -2.f, 0, 0});
  Rng rng(4);
  require_grad_ok([idx](const std::vector<Tensor>& t) { return gather_cols(t[0], idx); },
                  {Tensor::randn({2, 3}, rng)}, 0);
}

TEST_CASE("clamp and minimum follow PyTorch at the bounds and on ties", "[activation]") {
  Tensor x = Tensor::from_vector({-2.f, -1.f, 0.f, 1.f, 2.f}, {5});
  x.set_requires_grad();
  const Tensor y = clamp(x, -1.f, 1.f);
  REQUIRE(y.to_vector() == std::vector<float>{-1, -1, 0, 1, 1});
  sum(y).backward();
  REQUIRE(x.grad().to_vector() == std::vector<float>{0, 1, 1, 1, 0});  // bounds inclusive

  Tensor a = Tensor::from_vector({1.f, 2.f, 3.f}, {3}), b = Tensor::from_vector({2.f, 2.f, 1.f}, {3});
  a.set_requires_grad();
  b.set_requires_grad();
  const Tensor m = minimum(a, b);
  REQUIRE(m.to_vector() == std::vector<float>{1, 2, 1});
  sum(m).backward();
  REQUIRE(a.grad().to_vector() == std::vector<float>{1, 0.5f, 0});
  REQUIRE(b.grad().to_vector() == std::vector<float>{0, 0.5f, 1});

  // The PPO clipped objective min(r A, clip(r, 1 - e, 1 + e) A) on a hand-computed case:
  // r = 1.5, A = 2, e = 0.2 -> clipped 1.2 * 2 = 2.4 wins, gradient 0 in r.
  Tensor r = Tensor::from_vector({1.5f, 0.9f}, {2});
  r.set_requires_grad();
  const Tensor A = Tensor::from_vector({2.f, -1.f}, {2});
  const Tensor obj = minimum(mul(r, A), mul(clamp(r, 0.8f, 1.2f), A));
  REQUIRE(obj.to_vector()[0] == Approx(2.4f));
  REQUIRE(obj.to_vector()[1] == Approx(-0.9f));  // inside the clip range: both terms equal -> ties
  sum(obj).backward();
  REQUIRE(r.grad().to_vector()[0] == Approx(0.f));
  REQUIRE(r.grad().to_vector()[1] == Approx(-1.f));  // half from each tied term, -1 in total
}

TEST_CASE("bad input to the activation ops is a clear error", "[activation]") {
  const Tensor x = Tensor::zeros({2, 3});
  REQUIRE_THROWS_WITH(log_softmax(x, Tensor::from_ints({1, 1, 1, 0, 0, 0}, {2, 3})),
                      Catch::Contains("row 1 of the mask allows no entry"));
  REQUIRE_THROWS_WITH(log_softmax(x, Tensor::zeros({2, 3})), Catch::Contains("mask must be int32"));
  REQUIRE_THROWS_WITH(gather_cols(x, Tensor::from_ints({0, 3}, {2})), Catch::Contains("index 3 at row 1"));
  REQUIRE_THROWS_WITH(gather_cols(x, Tensor::from_ints({0}, {1})), Catch::Contains("indices must be int32 [2]"));
  REQUIRE_THROWS_WITH(clamp(x, 1.f, -1.f), Catch::Contains("exceeds upper bound"));
  REQUIRE_THROWS_WITH(minimum(x, Tensor::zeros({3, 2})), Catch::Contains("shapes differ"));
}
