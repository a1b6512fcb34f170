// linear: forward against a double reference (with and without bias, small
// and BLAS-sized), finite-difference gradients for x, w and b, and errors.
#include <catch2/catch.hpp>

#include <string>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "support/expect_error.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::close_ratio;
using metanas::testing::grad_check;

namespace {

std::vector<double> linear_ref(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t N = x.dim(0), in = x.dim(1), out = w.dim(0);
  auto xv = x.to_vector(), wv = w.to_vector();
  std::vector<float> bv = b.defined() ? b.to_vector() : std::vector<float>(out, 0.f);
  std::vector<double> y(static_cast<size_t>(N * out));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < out; ++o) {
      double s = bv[o];
      for (int64_t i = 0; i < in; ++i) s += static_cast<double>(xv[n * in + i]) * wv[o * in + i];
      y[n * out + o] = s;
    }
  return y;
}

}  // namespace

TEST_CASE("linear matches a double reference with and without bias", "[linear]") {
  Rng rng(30);
  struct Dims {
    int64_t N, in, out;
  };
  for (Dims d : {Dims{1, 1, 1}, Dims{5, 7, 3}, Dims{64, 256, 40}}) {
    Tensor x = Tensor::randn({d.N, d.in}, rng);
    Tensor w = Tensor::randn({d.out, d.in}, rng, 0.1f);
    Tensor b = Tensor::randn({d.out}, rng);
    INFO("N " << d.N << " in " << d.in << " out " << d.out);
    Tensor y = linear(x, w, b);
    REQUIRE(y.shape() == Shape{d.N, d.out});
    REQUIRE(close_ratio(y.to_vector(), linear_ref(x, w, b), 1e-5, 1e-5) <= 1.0);
    REQUIRE(close_ratio(linear(x, w, Tensor()).to_vector(), linear_ref(x, w, Tensor()), 1e-5, 1e-5) <=
            1.0);
  }
}

TEST_CASE("linear gradients match finite differences for x, w and b", "[linear]") {
  Rng rng(31);
  Tensor x = Tensor::randn({6, 9}, rng);
  Tensor w = Tensor::randn({4, 9}, rng, 0.5f);
  Tensor b = Tensor::randn({4}, rng);
  auto with_b = [](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); };
  for (int i = 0; i < 3; ++i) {
    auto r = grad_check(with_b, {x, w, b}, i);
    INFO(r.message);
    REQUIRE(r.ok);
  }
  auto no_b = [](const std::vector<Tensor>& t) { return linear(t[0], t[1], Tensor()); };
  for (int i = 0; i < 2; ++i) {
    auto r = grad_check(no_b, {x, w}, i);
    INFO(r.message);
    REQUIRE(r.ok);
  }
}

TEST_CASE("linear computes only the gradients that are needed", "[linear]") {
  Rng rng(32);
  Tensor x = Tensor::randn({3, 4}, rng);
  Tensor w = Tensor::randn({2, 4}, rng).set_requires_grad();
  Tensor b = Tensor::zeros({2});
  sum(linear(x, w, b)).backward();
  REQUIRE_FALSE(x.grad().defined());
  REQUIRE_FALSE(b.grad().defined());
  // d sum(x w^T) / dw[o, i] = sum_n x[n, i]
  auto xv = x.to_vector();
  auto dw = w.grad().to_vector();
  for (int o = 0; o < 2; ++o)
    for (int i = 0; i < 4; ++i)
      REQUIRE(dw[o * 4 + i] == Approx(xv[i] + xv[4 + i] + xv[8 + i]).margin(1e-6));
}

TEST_CASE("linear rejects bad shapes with errors naming the op and shapes", "[linear]") {
  auto expect = [](auto&& fn, std::vector<std::string> parts) {
    parts.push_back("linear");
    metanas::testing::expect_error(fn, parts);
  };
  Tensor x = Tensor::zeros({3, 4});
  expect([&] { linear(x, Tensor::zeros({2, 5}), Tensor()); }, {"[3, 4]", "[2, 5]"});
  expect([&] { linear(x, Tensor::zeros({2, 4}), Tensor::zeros({3})); }, {"[2]", "[3]"});
  expect([&] { linear(Tensor::zeros({3, 4, 1}), Tensor::zeros({2, 4}), Tensor()); }, {"2-D"});
  expect([&] { linear(x, Tensor::zeros({8}), Tensor()); }, {"2-D"});
  expect([&] { linear(x, Tensor::zeros({0, 4}), Tensor()); }, {"empty"});
}
