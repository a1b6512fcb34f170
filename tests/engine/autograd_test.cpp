// Autograd semantics: reuse, shared subgraphs, no_grad, zeroing, freed graphs.
#include <catch2/catch.hpp>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

using namespace metanas;

TEST_CASE("a tensor used twice accumulates both gradients", "[autograd]") {
  Tensor x = Tensor::from_vector({1.f, -2.f, 3.f}, {3});
  x.set_requires_grad();
  // y = sum(x * x + 3 x)  ->  dy/dx = 2x + 3
  Tensor y = sum(add(mul(x, x), mul_scalar(x, 3.f)));
  y.backward();
  auto g = x.grad().to_vector();
  REQUIRE(g[0] == Approx(5.f));
  REQUIRE(g[1] == Approx(-1.f));
  REQUIRE(g[2] == Approx(9.f));
}

TEST_CASE("a shared subgraph receives the sum of its consumers' gradients", "[autograd]") {
  Tensor x = Tensor::from_vector({0.5f, 2.f}, {2});
  x.set_requires_grad();
  Tensor h = mul(x, x);          // shared: h = x^2
  Tensor a = mul_scalar(h, 2.f);  // 2 x^2
  Tensor b = mul(h, x);           // x^3
  Tensor y = sum(add(a, b));      // d/dx = 4x + 3x^2
  y.backward();
  auto g = x.grad().to_vector();
  REQUIRE(g[0] == Approx(4 * 0.5 + 3 * 0.25));
  REQUIRE(g[1] == Approx(4 * 2.0 + 3 * 4.0));
}

TEST_CASE("no_grad records nothing", "[autograd]") {
  Tensor x = Tensor::from_vector({1.f, 2.f}, {2});
  x.set_requires_grad();
  Tensor y;
  {
    NoGradGuard ng;
    y = sum(mul(x, x));
  }
  REQUIRE_FALSE(y.requires_grad());
  REQUIRE_THROWS_AS(y.backward(), Error);
  REQUIRE(grad_enabled());
}

TEST_CASE("gradients accumulate across backward calls until zeroed", "[autograd]") {
  Tensor x = Tensor::from_vector({1.f, 2.f}, {2});
  x.set_requires_grad();
  sum(mul_scalar(x, 3.f)).backward();
  sum(mul_scalar(x, 3.f)).backward();  // a fresh graph each time
  REQUIRE(x.grad().to_vector()[0] == Approx(6.f));
  x.zero_grad();
  REQUIRE(x.grad().to_vector()[1] == Approx(0.f));
  sum(mul(x, x)).backward();
  REQUIRE(x.grad().to_vector()[1] == Approx(4.f));
}

TEST_CASE("backward through a consumed graph is an error naming the op", "[autograd]") {
  Tensor x = Tensor::from_vector({1.f, 2.f}, {2});
  x.set_requires_grad();
  Tensor y = sum(mul(x, x));
  y.backward();
  try {
    y.backward();
    FAIL("second backward did not throw");
  } catch (const Error& e) {
    REQUIRE(std::string(e.what()).find("freed") != std::string::npos);
  }
}

TEST_CASE("backward needs a scalar or an explicit gradient", "[autograd]") {
  Tensor x = Tensor::from_vector({1.f, 2.f}, {2});
  x.set_requires_grad();
  Tensor y = mul_scalar(x, 2.f);
  REQUIRE_THROWS_AS(y.backward(), Error);
  y.backward(Tensor::from_vector({1.f, 10.f}, {2}));
  REQUIRE(x.grad().to_vector()[1] == Approx(20.f));
}

TEST_CASE("reshape is differentiable and shares storage", "[autograd]") {
  Tensor x = Tensor::from_vector({1.f, 2.f, 3.f, 4.f}, {2, 2});
  x.set_requires_grad();
  Tensor r = x.reshape({4});
  REQUIRE(r.data() == x.data());
  sum(mul(r, r)).backward();
  REQUIRE(x.grad().shape() == Shape({2, 2}));
  REQUIRE(x.grad().to_vector()[3] == Approx(8.f));
  REQUIRE_THROWS_AS(x.reshape({3}), Error);
}

TEST_CASE("mixing an undefined or int tensor into float ops is a clear error", "[autograd]") {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({3, 2});
  try {
    add(a, b);
    FAIL("no throw");
  } catch (const Error& e) {
    std::string m = e.what();
    REQUIRE(m.find("add") != std::string::npos);
    REQUIRE(m.find("[2, 3]") != std::string::npos);
    REQUIRE(m.find("[3, 2]") != std::string::npos);
  }
  Tensor i = Tensor::from_ints({1, 2}, {2});
  REQUIRE_THROWS_AS(relu(i), Error);
}
