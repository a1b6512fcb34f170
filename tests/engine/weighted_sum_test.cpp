// weighted_sum (the DARTS mixed op): forward against a double reference,
// finite-difference gradients for every input and the weights, skipped
// gradients, the softmax -> select_row -> weighted_sum chain, and errors.
#include <catch2/catch.hpp>

#include <string>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::close_ratio;
using metanas::testing::grad_check;

namespace {

std::vector<Tensor> random_inputs(int K, const Shape& s, Rng& rng) {
  std::vector<Tensor> xs;
  for (int k = 0; k < K; ++k) xs.push_back(Tensor::randn(s, rng));
  return xs;
}

std::vector<double> reference(const std::vector<Tensor>& xs, const Tensor& w) {
  std::vector<float> wv = w.to_vector();
  std::vector<double> y(static_cast<size_t>(xs[0].numel()), 0.0);
  for (size_t k = 0; k < xs.size(); ++k) {
    std::vector<float> x = xs[k].to_vector();
    for (size_t i = 0; i < y.size(); ++i) y[i] += static_cast<double>(wv[k]) * x[i];
  }
  return y;
}

// Splits inputs = {xs..., w} for grad_check.
Tensor ws_of(const std::vector<Tensor>& t) {
  return weighted_sum(std::vector<Tensor>(t.begin(), t.end() - 1), t.back());
}

}  // namespace

TEST_CASE("weighted_sum matches a double reference, small and large", "[weighted_sum]") {
  Rng rng(10);
  for (int64_t n : {int64_t{7}, int64_t{50001}}) {  // one partial block; many blocks, threaded
    for (int K : {1, 3, 8}) {
      auto xs = random_inputs(K, Shape{n}, rng);
      Tensor w = Tensor::randn({K}, rng);
      Tensor y = weighted_sum(xs, w);
      REQUIRE(y.shape() == Shape{n});
      INFO("n " << n << " K " << K);
      REQUIRE(close_ratio(y.to_vector(), reference(xs, w), 1e-5, 1e-5) <= 1.0);
    }
  }
}

TEST_CASE("weighted_sum gradients match finite differences for every input and w",
          "[weighted_sum]") {
  Rng rng(11);
  const int K = 4;
  auto in = random_inputs(K, Shape{2, 3, 4, 5}, rng);
  in.push_back(Tensor::randn({K}, rng));
  for (int i = 0; i <= K; ++i) {
    auto r = grad_check(ws_of, in, i);
    INFO("input " << i << ": " << r.message);
    REQUIRE(r.ok);
  }
}

TEST_CASE("weighted_sum's dw is exact in double over many blocks and repeatable", "[weighted_sum]") {
  Rng rng(12);
  const int K = 5;
  const int64_t n = 70000;
  auto xs = random_inputs(K, Shape{n}, rng);
  Tensor w = Tensor::randn({K}, rng).set_requires_grad();
  Tensor g = Tensor::randn({n}, rng);
  weighted_sum(xs, w).backward(g);
  std::vector<float> dw = w.grad().to_vector();
  std::vector<float> gv = g.to_vector();
  std::vector<double> ref(K, 0.0);
  for (int k = 0; k < K; ++k) {
    std::vector<float> x = xs[static_cast<size_t>(k)].to_vector();
    for (int64_t i = 0; i < n; ++i) ref[k] += static_cast<double>(gv[i]) * x[i];
  }
  // Summed in double: only the final rounding to float remains.
  REQUIRE(close_ratio(dw, ref, 1e-4, 1e-6) <= 1.0);
  w.zero_grad();
  weighted_sum(xs, w).backward(g);
  REQUIRE(w.grad().to_vector() == dw);  // bitwise repeatable
}

TEST_CASE("weighted_sum skips gradients nobody needs and handles a repeated input",
          "[weighted_sum]") {
  Rng rng(13);
  Tensor a = Tensor::randn({3, 4}, rng).set_requires_grad();
  Tensor b = Tensor::randn({3, 4}, rng);  // constant: no gradient
  Tensor w = Tensor::from_vector({0.5f, -2.f, 0.25f}, {3});
  // a appears twice: its gradient is the sum of both weights.
  weighted_sum({a, b, a}, w).backward(Tensor::ones({3, 4}));
  REQUIRE_FALSE(b.grad().defined());
  REQUIRE_FALSE(w.grad().defined());
  for (float v : a.grad().to_vector()) REQUIRE(v == Approx(0.75f));

  // Only w wants a gradient: dw[k] = sum(xs[k]) for an all-ones upstream.
  w.set_requires_grad();
  Tensor c = Tensor::randn({3, 4}, rng);
  weighted_sum({c, b, c}, w).backward(Tensor::ones({3, 4}));
  auto dw = w.grad().to_vector();
  REQUIRE(dw[0] == Approx(sum(c).item()).margin(1e-5));
  REQUIRE(dw[1] == Approx(sum(b).item()).margin(1e-5));
  REQUIRE(dw[2] == Approx(dw[0]));
}

TEST_CASE("softmax -> select_row -> weighted_sum carries the gradient to alpha", "[weighted_sum]") {
  // The DARTS mixed op as the search cell uses it: w_e = softmax(alpha / T)[e].
  Rng rng(14);
  const int K = 5;
  const float T = 0.7f;
  Tensor alpha = Tensor::randn({3, K}, rng, 0.5f);
  std::vector<Tensor> in = random_inputs(K, Shape{2, 3, 3}, rng);
  in.push_back(alpha);
  auto f = [T](const std::vector<Tensor>& t) {
    Tensor w = select_row(softmax(t.back(), T), 1);
    return weighted_sum(std::vector<Tensor>(t.begin(), t.end() - 1), w);
  };
  auto r = grad_check(f, in, K);
  INFO(r.message);
  REQUIRE(r.ok);
  // Rows other than 1 get exactly zero gradient.
  Tensor a = alpha.clone().set_requires_grad();
  std::vector<Tensor> xs(in.begin(), in.end() - 1);
  sum(weighted_sum(xs, select_row(softmax(a, T), 1))).backward();
  auto g = a.grad().to_vector();
  for (int c = 0; c < K; ++c) {
    REQUIRE(g[c] == 0.f);
    REQUIRE(g[2 * K + c] == 0.f);
  }
}

TEST_CASE("weighted_sum rejects bad inputs with errors naming the op and shapes", "[weighted_sum]") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({2, 3}), c = Tensor::zeros({3, 2});
  auto expect = [](auto&& fn, const std::vector<std::string>& parts) {
    try {
      fn();
      FAIL("no throw");
    } catch (const Error& e) {
      const std::string m = e.what();
      INFO(m);
      REQUIRE(m.find("weighted_sum") != std::string::npos);
      for (const auto& p : parts) REQUIRE(m.find(p) != std::string::npos);
    }
  };
  expect([&] { weighted_sum({a, c}, Tensor::zeros({2})); }, {"[2, 3]", "[3, 2]"});
  expect([&] { weighted_sum({a, b}, Tensor::zeros({3})); }, {"[2]", "[3]"});      // K mismatch
  expect([&] { weighted_sum({a, b}, Tensor::zeros({1, 2})); }, {"[1, 2]"});        // w not 1-D
  expect([&] { weighted_sum({}, Tensor::zeros({0})); }, {});                       // no inputs
  expect([&] { weighted_sum({a, Tensor()}, Tensor::zeros({2})); }, {"xs[1]"});     // undefined
  expect([&] { weighted_sum({a, b}, Tensor::from_ints({1, 1}, {2})); }, {"int32"});  // int w
}
