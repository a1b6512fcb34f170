// Element-wise ops and full reductions: forward against double-precision
// references, central finite-difference gradients, and input errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::close_ratio;
using metanas::testing::grad_check;
using metanas::testing::OpFn;

namespace {

// Values in +-[lo, hi]: kept away from 0 so relu's kink is never straddled by an FD step.
Tensor away_from_zero(const Shape& s, Rng& rng, float lo = 0.1f, float hi = 1.5f) {
  std::vector<float> v(static_cast<size_t>(s.numel()));
  for (auto& x : v) x = (lo + (hi - lo) * rng.uniform()) * (rng.uniform() < 0.5f ? -1.f : 1.f);
  return Tensor::from_vector(v, s);
}

std::vector<double> as_double(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  return std::vector<double>(v.begin(), v.end());
}

void require_grads(const OpFn& f, const std::vector<Tensor>& in) {
  for (int i = 0; i < static_cast<int>(in.size()); ++i) {
    auto r = grad_check(f, in, i);
    INFO(r.message);
    REQUIRE(r.ok);
  }
}

}  // namespace

TEST_CASE("add, sub and mul match a double reference and finite differences", "[elementwise]") {
  Rng rng(1);
  const Shape s{3, 4, 5};
  Tensor a = away_from_zero(s, rng), b = away_from_zero(s, rng);
  auto da = as_double(a), db = as_double(b);
  std::vector<double> ra(da.size()), rs(da.size()), rm(da.size());
  for (size_t i = 0; i < da.size(); ++i) {
    ra[i] = da[i] + db[i];
    rs[i] = da[i] - db[i];
    rm[i] = da[i] * db[i];
  }
  REQUIRE(close_ratio(add(a, b).to_vector(), ra, 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio(sub(a, b).to_vector(), rs, 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio(mul(a, b).to_vector(), rm, 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio((a + b).to_vector(), ra, 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio((a - b).to_vector(), rs, 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio((a * b).to_vector(), rm, 1e-6, 1e-6) <= 1.0);

  require_grads([](const std::vector<Tensor>& t) { return add(t[0], t[1]); }, {a, b});
  require_grads([](const std::vector<Tensor>& t) { return sub(t[0], t[1]); }, {a, b});
  require_grads([](const std::vector<Tensor>& t) { return mul(t[0], t[1]); }, {a, b});
}

TEST_CASE("mul gives a gradient only to the inputs that need one", "[elementwise]") {
  Tensor a = Tensor::from_vector({1.f, 2.f, -3.f}, {3});
  Tensor b = Tensor::from_vector({4.f, -5.f, 6.f}, {3});
  a.set_requires_grad();  // b is a constant
  sum(mul(a, b)).backward();
  auto g = a.grad().to_vector();
  REQUIRE(g == std::vector<float>({4.f, -5.f, 6.f}));
  REQUIRE_FALSE(b.grad().defined());
}

TEST_CASE("add_scalar, mul_scalar and relu match references and finite differences", "[elementwise]") {
  Rng rng(2);
  Tensor x = away_from_zero({6, 7}, rng);
  auto dx = as_double(x);
  std::vector<double> r1(dx.size()), r2(dx.size()), r3(dx.size());
  for (size_t i = 0; i < dx.size(); ++i) {
    r1[i] = dx[i] + 0.75;
    r2[i] = dx[i] * -2.5;
    r3[i] = dx[i] > 0 ? dx[i] : 0.0;
  }
  REQUIRE(close_ratio(add_scalar(x, 0.75f).to_vector(), r1, 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio(mul_scalar(x, -2.5f).to_vector(), r2, 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio((x * -2.5f).to_vector(), r2, 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio((-2.5f * x).to_vector(), r2, 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio(relu(x).to_vector(), r3, 0, 0) <= 1.0);  // exact

  require_grads([](const std::vector<Tensor>& t) { return add_scalar(t[0], 0.75f); }, {x});
  require_grads([](const std::vector<Tensor>& t) { return mul_scalar(t[0], -2.5f); }, {x});
  require_grads([](const std::vector<Tensor>& t) { return relu(t[0]); }, {x});
  // Chained through a product so relu's gradient mask meets a non-constant upstream.
  Tensor y = away_from_zero({6, 7}, rng);
  require_grads([](const std::vector<Tensor>& t) { return mul(relu(t[0]), t[1]); }, {x, y});
}

TEST_CASE("sum, mean and sum_squares match double references and finite differences",
          "[elementwise]") {
  Rng rng(3);
  Tensor x = away_from_zero({4, 9, 3}, rng);
  auto dx = as_double(x);
  double s = 0, ss = 0;
  for (double v : dx) {
    s += v;
    ss += v * v;
  }
  REQUIRE(sum(x).shape() == Shape{});
  REQUIRE(sum(x).item() == Approx(s).epsilon(1e-6));
  REQUIRE(mean(x).item() == Approx(s / dx.size()).epsilon(1e-6));
  REQUIRE(sum_squares(x).item() == Approx(ss).epsilon(1e-6));

  require_grads([](const std::vector<Tensor>& t) { return sum(t[0]); }, {x});
  require_grads([](const std::vector<Tensor>& t) { return mean(t[0]); }, {x});
  require_grads([](const std::vector<Tensor>& t) { return sum_squares(t[0]); }, {x});
}

TEST_CASE("large reductions stay accurate and repeatable", "[elementwise]") {
  // Big enough for the blocked, threaded path; the offset makes naive float
  // accumulation drift visibly.
  Rng rng(4);
  const int64_t n = 300007;
  std::vector<float> v(static_cast<size_t>(n));
  double s = 0, ss = 0;
  for (auto& x : v) {
    x = 10.f + rng.normal();
    s += x;
    ss += static_cast<double>(x) * x;
  }
  Tensor x = Tensor::from_vector(v, {n});
  const float got = sum(x).item();
  REQUIRE(std::fabs(got - s) <= 1e-6 * std::fabs(s));
  REQUIRE(std::fabs(sum_squares(x).item() - ss) <= 1e-6 * ss);
  REQUIRE(sum(x).item() == got);  // bitwise repeatable
}

TEST_CASE("element-wise ops reject mismatched shapes and int tensors with clear errors",
          "[elementwise]") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 2});
  for (auto f : {&sub, &mul}) {
    try {
      f(a, b);
      FAIL("no throw");
    } catch (const Error& e) {
      const std::string m = e.what();
      REQUIRE(m.find("[2, 3]") != std::string::npos);
      REQUIRE(m.find("[3, 2]") != std::string::npos);
    }
  }
  Tensor i = Tensor::from_ints({1, 2}, {2});
  REQUIRE_THROWS_AS(sum(i), Error);
  REQUIRE_THROWS_AS(mul_scalar(i, 2.f), Error);
  REQUIRE_THROWS_AS(mean(Tensor::zeros({0})), Error);
  REQUIRE_THROWS_AS(add(Tensor(), a), Error);
}
