// Autograd semantics: reuse, shared subgraphs, no_grad, zeroing, freed graphs.
#include <catch2/catch.hpp>

#include "metanas/engine/error.h"
#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/param_set.h"

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

// ---- shared gradient buffers (a pending gradient may be the very tensor that
// another pending slot, the caller or a saved tensor holds) ----

namespace {
// x as a one-element parameter of a ParamSet, so its gradient lands in the flat buffer.
struct OneParam {
  ParamSet ps{Device::CPU};
  explicit OneParam(float v) {
    ps.add("x", {1});
    ps.finalize();
    ps.get("x").copy_(Tensor::from_vector({v}, {1}));
  }
  Tensor x() { return ps.get("x"); }
  float grad() const { return ps.grads().to_vector()[0]; }
};
}  // namespace

TEST_CASE("add's shared upstream gradient is not corrupted by later accumulation", "[autograd][aliasing]") {
  OneParam p(1.f);
  Tensor x = p.x(), a = x * 2.0f, b = x * 3.0f;
  sum(a * b + (a + b)).backward();  // d/dx (6x^2 + 5x) = 12x + 5
  REQUIRE(p.grad() == Approx(17.f));
}

TEST_CASE("a sum feeding three consumers beside its own inputs", "[autograd][aliasing]") {
  OneParam p(1.f);
  Tensor x = p.x(), a = x * 2.0f, b = x * 3.0f, e = a + b;
  sum(e * a + e * b + (e + a)).backward();  // 25x^2 + 7x -> 50x + 7
  REQUIRE(p.grad() == Approx(57.f));
}

TEST_CASE("a + a: both inputs are one tensor", "[autograd][aliasing]") {
  Tensor x = Tensor::from_vector({1.f, -2.f}, {2});
  x.set_requires_grad();
  Tensor a = x * 3.0f;
  sum((a + a) * a).backward();  // 2a^2 = 18x^2 -> 36x
  const auto g = x.grad().to_vector();
  REQUIRE(g[0] == Approx(36.f));
  REQUIRE(g[1] == Approx(-72.f));
}

TEST_CASE("one tensor with three consumers", "[autograd][aliasing]") {
  Tensor x = Tensor::from_vector({0.5f, -1.5f, 2.f}, {3});
  x.set_requires_grad();
  Tensor t = x * 2.0f;
  sum(add(mul(t, x), add(t, mul_scalar(t, 3.f)))).backward();  // 2x^2 + 8x -> 4x + 8
  const auto g = x.grad().to_vector();
  REQUIRE(g[0] == Approx(10.f));
  REQUIRE(g[1] == Approx(2.f));
  REQUIRE(g[2] == Approx(16.f));
}

TEST_CASE("a reshape pass-through feeding two consumers", "[autograd][aliasing]") {
  Tensor x = Tensor::from_vector({1.f, -0.5f}, {2});
  x.set_requires_grad();
  Tensor t = x * 3.0f;
  Tensor r = t.reshape({2, 1});  // backward hands its upstream gradient on unchanged
  // sum(r*r) + sum(r + r) + sum(t*x) = 9x^2 + 6x + 3x^2 -> 24x + 6
  Tensor y = add(add(sum(mul(r, r)), sum(add(r, r))), sum(mul(t, x)));
  y.backward();
  const auto g = x.grad().to_vector();
  REQUIRE(g[0] == Approx(30.f));
  REQUIRE(g[1] == Approx(-6.f));
}

TEST_CASE("sub: the negated and the plain gradient of a shared difference", "[autograd][aliasing]") {
  OneParam p(2.f);
  Tensor x = p.x(), a = x * 2.0f, b = x * 3.0f, d = sub(a, b);  // d = -x
  sum(mul(d, d) + d + sub(b, a) + sub(a, a)).backward();         // x^2 - x + x + 0 -> 2x
  REQUIRE(p.grad() == Approx(4.f));
}

TEST_CASE("a gradient that reaches a leaf twice, and the caller's upstream gradient", "[autograd][aliasing]") {
  Tensor x = Tensor::from_vector({1.f, 2.f}, {2});
  x.set_requires_grad();
  const Tensor up = Tensor::from_vector({0.5f, -1.f}, {2});
  add(x, x).backward(up);  // the same upstream tensor reaches x through both inputs
  auto g = x.grad().to_vector();
  REQUIRE(g[0] == Approx(1.f));
  REQUIRE(g[1] == Approx(-2.f));
  REQUIRE(up.to_vector() == std::vector<float>{0.5f, -1.f});  // never written
  // A second graph accumulates into the existing gradient: d/dx sum(x*x + x) = 2x + 1.
  sum(mul(x, x) + x).backward();
  g = x.grad().to_vector();
  REQUIRE(g[0] == Approx(1.f + 3.f));
  REQUIRE(g[1] == Approx(-2.f + 5.f));
}

TEST_CASE("an accumulate-into backward (conv2d) never adds into a shared gradient", "[autograd][aliasing]") {
  // y = a + conv(a): add hands the caller's upstream tensor to a's slot (and
  // the conv's). The conv's backward, which runs before a's, may add only into
  // buffers the engine owns: never into that tensor.
  const Tensor w = Tensor::from_vector({0.5f}, {1, 1, 1, 1});
  Tensor x = Tensor::from_vector({1.f, -2.f}, {1, 1, 1, 2});
  x.set_requires_grad();
  Tensor a = x * 2.0f;
  const Tensor up = Tensor::from_vector({1.f, 3.f}, {1, 1, 1, 2});
  add(a, conv2d(a, w)).backward(up);  // y = 2x + x = 3x
  REQUIRE(up.to_vector() == std::vector<float>{1.f, 3.f});
  const auto g = x.grad().to_vector();
  REQUIRE(g[0] == Approx(3.f));
  REQUIRE(g[1] == Approx(9.f));
}

TEST_CASE("the legacy accumulation switch reproduces the reported wrong gradients", "[autograd][aliasing]") {
  // Shows what the regression tests above guard against (and that the
  // fuzzer's self-test switch really restores the old rule).
  set_legacy_accumulation_for_testing(true);
  float g17 = 0, g57 = 0;
  {
    OneParam p(1.f);
    Tensor x = p.x(), a = x * 2.0f, b = x * 3.0f;
    sum(a * b + (a + b)).backward();
    g17 = p.grad();
  }
  {
    OneParam p(1.f);
    Tensor x = p.x(), a = x * 2.0f, b = x * 3.0f, e = a + b;
    sum(e * a + e * b + (e + a)).backward();
    g57 = p.grad();
  }
  set_legacy_accumulation_for_testing(false);
  CHECK(g17 != Approx(17.f));
  CHECK(g57 != Approx(57.f));
}
