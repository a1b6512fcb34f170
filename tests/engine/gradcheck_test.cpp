// Proves the finite-difference checker (tests/support/gradcheck.h) can fail:
// an op whose backward is deliberately corrupted by 1% on one element must be
// reported, while the same op with its true backward passes with margin.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::grad_check;
using metanas::testing::GradCheckOptions;

namespace {

enum class Corrupt { None, Largest, Mid, Zero, NaN };

// y = x * tanh(x) (smooth, non-trivial gradient) with a hand-written backward
// that can scale one gradient element by `factor`: the largest in magnitude,
// or the one closest to a quarter of the largest (Mid); or drop it all (Zero);
// or make one small element NaN.
Tensor faulty_op(const Tensor& x, Corrupt mode, float factor) {
  std::vector<float> xv = x.to_vector();
  std::vector<float> yv(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) yv[i] = xv[i] * std::tanh(xv[i]);
  Tensor y = Tensor::from_vector(yv, x.shape(), x.device());
  record(y, "faulty_op", {x}, [xv, mode, factor, shape = x.shape()](const Tensor& g) {
    std::vector<float> gv = g.to_vector();
    std::vector<float> d(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) {
      const float t = std::tanh(xv[i]);
      d[i] = gv[i] * (t + xv[i] * (1.f - t * t));
    }
    auto mag = [&](size_t i) { return std::fabs(d[i]); };
    size_t big = 0;
    for (size_t i = 1; i < d.size(); ++i)
      if (mag(i) > mag(big)) big = i;
    if (mode == Corrupt::Largest) {
      d[big] *= factor;
    } else if (mode == Corrupt::Mid) {
      size_t mid = 0;
      const float target = 0.25f * mag(big);
      for (size_t i = 1; i < d.size(); ++i)
        if (std::fabs(mag(i) - target) < std::fabs(mag(mid) - target)) mid = i;
      d[mid] *= factor;
    } else if (mode == Corrupt::Zero) {
      std::fill(d.begin(), d.end(), 0.f);
    } else if (mode == Corrupt::NaN) {
      d[(big + 1) % d.size()] = std::nanf("");
    }
    return std::vector<Tensor>{Tensor::from_vector(d, shape, g.device())};
  });
  return y;
}

testing::OpFn op_with(Corrupt mode, float factor) {
  return [mode, factor](const std::vector<Tensor>& t) { return faulty_op(t[0], mode, factor); };
}

}  // namespace

TEST_CASE("grad_check passes a correct backward with a wide margin", "[gradcheck]") {
  Rng rng(60);
  for (int64_t n : {int64_t{60}, int64_t{5000}}) {
    Tensor x = Tensor::randn({n}, rng);
    auto r = grad_check(op_with(Corrupt::None, 1.f), {x}, 0);
    INFO("n " << n << ": " << r.message);
    REQUIRE(r.ok);
    REQUIRE(r.worst < GradCheckOptions{}.tol / 5);
  }
}

TEST_CASE("grad_check fails a backward off by 1% on its largest gradient", "[gradcheck]") {
  Rng rng(61);
  // 5000 elements: more than max_elements, so the largest is found by the
  // checker's own search, not by the even sample.
  for (int64_t n : {int64_t{60}, int64_t{5000}}) {
    Tensor x = Tensor::randn({n}, rng);
    for (float factor : {1.01f, 0.99f}) {
      auto r = grad_check(op_with(Corrupt::Largest, factor), {x}, 0);
      INFO("n " << n << " factor " << factor << ": " << r.message);
      REQUIRE_FALSE(r.ok);
    }
  }
}

TEST_CASE("grad_check fails a 1% error on a mid-sized gradient, a missing backward and a NaN",
          "[gradcheck]") {
  Rng rng(62);
  Tensor x = Tensor::randn({120}, rng);  // below max_elements: every element is checked
  auto r = grad_check(op_with(Corrupt::Mid, 1.01f), {x}, 0);
  INFO(r.message);
  REQUIRE_FALSE(r.ok);
  auto z = grad_check(op_with(Corrupt::Zero, 1.f), {x}, 0);
  INFO(z.message);
  REQUIRE_FALSE(z.ok);
  auto q = grad_check(op_with(Corrupt::NaN, 1.f), {x}, 0);
  INFO(q.message);
  REQUIRE_FALSE(q.ok);
}

namespace {
// Wraps a real op so that its true backward (run on an inner graph) comes out
// with the largest entry of input `which`'s gradient scaled by `factor`.
testing::OpFn corrupt_largest(testing::OpFn f, int which, float factor) {
  return [f, which, factor](const std::vector<Tensor>& in) {
    if (!grad_enabled()) return f(in);  // the finite-difference probes
    std::vector<Tensor> leaves;
    for (const auto& t : in) leaves.push_back(t.clone().set_requires_grad());
    Tensor inner = f(leaves);
    Tensor y = inner.detach().clone();
    record(y, "corrupted", in, [inner, leaves, which, factor](const Tensor& g) {
      inner.backward(g);
      std::vector<Tensor> grads;
      for (size_t i = 0; i < leaves.size(); ++i) {
        std::vector<float> v = leaves[i].grad().to_vector();
        if (static_cast<int>(i) == which) {
          size_t big = 0;
          for (size_t k = 1; k < v.size(); ++k)
            if (std::fabs(v[k]) > std::fabs(v[big])) big = k;
          v[big] *= factor;
        }
        grads.push_back(Tensor::from_vector(v, leaves[i].shape()));
      }
      return grads;
    });
    return y;
  };
}
}  // namespace

TEST_CASE("grad_check forgives output rounding without hiding a 1% error", "[gradcheck]") {
  // A scalar of about 3000 whose gradients are a few units: float rounding of
  // the output alone moves the numeric gradient by ~0.3% of the largest.
  Rng rng(63);
  Tensor x = Tensor::randn({60, 50}, rng);
  testing::OpFn f = [](const std::vector<Tensor>& t) { return sum_squares(t[0]); };
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    GradCheckOptions opt;
    opt.seed = seed;
    auto good = grad_check(corrupt_largest(f, 0, 1.f), {x}, 0, opt);
    INFO("seed " << seed << " correct: " << good.message);
    REQUIRE(good.ok);
    for (float factor : {1.01f, 0.99f}) {
      auto bad = grad_check(corrupt_largest(f, 0, factor), {x}, 0, opt);
      INFO("seed " << seed << " factor " << factor << ": " << bad.message);
      REQUIRE_FALSE(bad.ok);
    }
  }
  // Same through a composite op with two inputs (linear), corrupting the weights.
  Tensor a = Tensor::randn({8, 12}, rng), w = Tensor::randn({5, 12}, rng), b = Tensor::randn({5}, rng);
  testing::OpFn lin = [](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); };
  REQUIRE(grad_check(corrupt_largest(lin, 1, 1.f), {a, w, b}, 1).ok);
  REQUIRE_FALSE(grad_check(corrupt_largest(lin, 1, 1.01f), {a, w, b}, 1).ok);
}
