// softmax with temperature, select_row, cross_entropy, argmax and accuracy:
// double references, finite-difference gradients, overflow safety, label
// validation and tie-breaking.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "support/expect_error.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::expect_error;
using metanas::testing::close_ratio;
using metanas::testing::grad_check;
using metanas::testing::GradCheckOptions;

namespace {

std::vector<double> softmax_ref(const std::vector<float>& x, int64_t cols, double T) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / cols; ++r) {
    double m = -1e300;
    for (int64_t c = 0; c < cols; ++c) m = std::max(m, x[r * cols + c] / T);
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += std::exp(x[r * cols + c] / T - m);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = std::exp(x[r * cols + c] / T - m) / s;
  }
  return y;
}

double cross_entropy_ref(const std::vector<float>& x, const std::vector<int32_t>& labels,
                         int64_t cols) {
  double total = 0;
  for (size_t r = 0; r < labels.size(); ++r) {
    double m = -1e300;
    for (int64_t c = 0; c < cols; ++c) m = std::max<double>(m, x[r * cols + c]);
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += std::exp(x[r * cols + c] - m);
    total += std::log(s) + (m - x[r * cols + labels[r]]);
  }
  return total / labels.size();
}

}  // namespace

TEST_CASE("softmax matches a double reference and finite differences at T = 0.1, 1, 10",
          "[softmax]") {
  Rng rng(20);
  for (float T : {0.1f, 1.f, 10.f}) {
    INFO("T = " << T);
    // Logits scaled with T so every temperature gives a non-trivial distribution.
    Tensor x = Tensor::randn({6, 7}, rng, T);
    Tensor y = softmax(x, T);
    REQUIRE(y.shape() == x.shape());
    REQUIRE(close_ratio(y.to_vector(), softmax_ref(x.to_vector(), 7, T), 1e-7, 1e-5) <= 1.0);
    GradCheckOptions opt;
    opt.eps = 1e-2 * T;  // the step must be small against the scale T
    auto r = grad_check([T](const std::vector<Tensor>& t) { return softmax(t[0], T); }, {x}, 0, opt);
    INFO(r.message);
    REQUIRE(r.ok);
  }
}

TEST_CASE("softmax works over the last dim of any rank", "[softmax]") {
  Rng rng(21);
  Tensor v = Tensor::randn({5}, rng);
  REQUIRE(close_ratio(softmax(v).to_vector(), softmax_ref(v.to_vector(), 5, 1.0), 1e-7, 1e-5) <= 1.0);
  Tensor x3 = Tensor::randn({2, 3, 4}, rng);
  REQUIRE(close_ratio(softmax(x3, 2.f).to_vector(), softmax_ref(x3.to_vector(), 4, 2.0), 1e-7, 1e-5) <=
          1.0);
  auto r = grad_check([](const std::vector<Tensor>& t) { return softmax(t[0], 2.f); }, {x3}, 0);
  INFO(r.message);
  REQUIRE(r.ok);
  // Many rows: the threaded path agrees with the reference too.
  Tensor big = Tensor::randn({4000, 9}, rng, 3.f);
  REQUIRE(close_ratio(softmax(big).to_vector(), softmax_ref(big.to_vector(), 9, 1.0), 1e-7, 1e-5) <=
          1.0);
}

TEST_CASE("planted huge logits neither overflow softmax nor cross_entropy", "[softmax]") {
  std::vector<float> x = {1e4f, 0.f, -1e4f, 3.f,   // a huge winner
                          -1e30f, -1e30f, -1e30f, -1e30f,  // all huge negative: uniform
                          80.f, 88.f, 89.f, 100.f};  // exp would overflow float unshifted
  Tensor t = Tensor::from_vector(x, {3, 4});
  for (float T : {0.1f, 1.f}) {
    std::vector<float> y = softmax(t, T).to_vector();
    for (float v : y) REQUIRE(std::isfinite(v));
    REQUIRE(close_ratio(y, softmax_ref(x, 4, T), 1e-7, 1e-5) <= 1.0);
  }
  Tensor labels = Tensor::from_ints({2, 0, 3}, {3});
  const float loss = cross_entropy(t, labels).item();
  REQUIRE(std::isfinite(loss));
  REQUIRE(loss == Approx(cross_entropy_ref(x, {2, 0, 3}, 4)).epsilon(1e-6));
  // The gradient is finite as well.
  Tensor lt = t.clone().set_requires_grad();
  cross_entropy(lt, labels).backward();
  for (float g : lt.grad().to_vector()) REQUIRE(std::isfinite(g));
}

TEST_CASE("cross_entropy matches a double reference and finite differences", "[softmax]") {
  Rng rng(22);
  const int64_t N = 6, C = 5;
  Tensor x = Tensor::randn({N, C}, rng, 1.5f);
  std::vector<int32_t> l(N);
  for (auto& v : l) v = static_cast<int32_t>(rng.below(C));
  Tensor labels = Tensor::from_ints(l, {N});
  Tensor loss = cross_entropy(x, labels);
  REQUIRE(loss.shape() == Shape{});
  REQUIRE(loss.item() == Approx(cross_entropy_ref(x.to_vector(), l, C)).epsilon(1e-6));
  auto f = [](const std::vector<Tensor>& t) { return cross_entropy(t[0], t[1]); };
  auto r = grad_check(f, {x, labels}, 0);
  INFO(r.message);
  REQUIRE(r.ok);
  // Analytic form: (softmax - onehot) / N, with an upstream factor.
  Tensor xl = x.clone().set_requires_grad();
  mul_scalar(cross_entropy(xl, labels), 3.f).backward();
  auto p = softmax_ref(x.to_vector(), C, 1.0);
  std::vector<double> ref(p.size());
  for (int64_t i = 0; i < N * C; ++i) ref[i] = 3.0 * (p[i] - (l[i / C] == i % C ? 1.0 : 0.0)) / N;
  REQUIRE(close_ratio(xl.grad().to_vector(), ref, 1e-7, 1e-5) <= 1.0);
}

TEST_CASE("cross_entropy over many rows is accurate and repeatable", "[softmax]") {
  Rng rng(23);
  const int64_t N = 5000, C = 10;
  Tensor x = Tensor::randn({N, C}, rng, 2.f);
  std::vector<int32_t> l(N);
  for (auto& v : l) v = static_cast<int32_t>(rng.below(C));
  Tensor labels = Tensor::from_ints(l, {N});
  const float loss = cross_entropy(x, labels).item();
  REQUIRE(loss == Approx(cross_entropy_ref(x.to_vector(), l, C)).epsilon(1e-6));
  REQUIRE(cross_entropy(x, labels).item() == loss);
}

TEST_CASE("cross_entropy validates labels and shapes", "[softmax]") {
  Tensor x = Tensor::zeros({3, 4});
  expect_error([&] { cross_entropy(x, Tensor::from_ints({0, 4, 1}, {3})); },
               {"cross_entropy", "label 4", "row 1", "[3, 4]"});
  expect_error([&] { cross_entropy(x, Tensor::from_ints({0, -1, 1}, {3})); }, {"label -1"});
  expect_error([&] { cross_entropy(x, Tensor::from_vector({0.f, 1.f, 2.f}, {3})); },
               {"cross_entropy", "int32"});
  expect_error([&] { cross_entropy(x, Tensor::from_ints({0, 1}, {2})); }, {"[3]", "[2]"});
  expect_error([&] { cross_entropy(Tensor::zeros({12}), Tensor::from_ints({0}, {1})); },
               {"cross_entropy", "2-D"});
  expect_error([&] { cross_entropy(Tensor::zeros({0, 4}), Tensor::from_ints({}, {0})); },
               {"cross_entropy"});
  expect_error([&] { accuracy(x, Tensor::from_ints({0, 1}, {2})); }, {"accuracy", "[3]"});
}

TEST_CASE("softmax and select_row reject bad input", "[softmax]") {
  Tensor x = Tensor::zeros({3, 4});
  expect_error([&] { softmax(x, 0.f); }, {"softmax", "temperature"});
  expect_error([&] { softmax(x, -1.f); }, {"softmax", "temperature"});
  expect_error([&] { softmax(Tensor::scalar(1.f)); }, {"softmax"});
  expect_error([&] { select_row(x, 3); }, {"select_row", "row 3", "[3, 4]"});
  expect_error([&] { select_row(x, -1); }, {"select_row"});
  expect_error([&] { select_row(Tensor::zeros({12}), 0); }, {"select_row", "2-D"});
}

TEST_CASE("select_row copies one row and routes its gradient back", "[softmax]") {
  Rng rng(24);
  Tensor a = Tensor::randn({4, 3}, rng);
  auto av = a.to_vector();
  auto row = select_row(a, 2).to_vector();
  REQUIRE(row == std::vector<float>(av.begin() + 6, av.begin() + 9));
  auto r = grad_check([](const std::vector<Tensor>& t) { return select_row(t[0], 2); }, {a}, 0);
  INFO(r.message);
  REQUIRE(r.ok);
}

TEST_CASE("argmax takes the first maximum on ties and accuracy counts matching rows", "[softmax]") {
  Tensor x = Tensor::from_vector({1.f, 3.f, 3.f, 0.f,     // tie between 1 and 2 -> 1
                                  5.f, 5.f, 5.f, 5.f,     // all equal -> 0
                                  -2.f, -1.f, -7.f, -1.f,  // tie between 1 and 3 -> 1
                                  0.f, 0.f, 0.f, 9.f},
                                 {4, 4});
  Tensor idx = argmax(x);
  REQUIRE(idx.dtype() == DType::I32);
  REQUIRE(idx.to_int_vector() == std::vector<int32_t>({1, 0, 1, 3}));
  REQUIRE_FALSE(idx.requires_grad());

  Tensor acc = accuracy(x, Tensor::from_ints({1, 0, 3, 3}, {4}));
  REQUIRE(acc.shape() == Shape{});
  REQUIRE(acc.device() == x.device());
  REQUIRE(acc.item() == Approx(0.75f));
  REQUIRE(accuracy(x, Tensor::from_ints({2, 1, 3, 0}, {4})).item() == 0.f);
  // An out-of-range label is simply wrong, never read out of bounds.
  REQUIRE(accuracy(x, Tensor::from_ints({1, 0, 1, 99}, {4})).item() == Approx(0.75f));

  // Against a reference on random data (ties impossible in practice).
  Rng rng(25);
  Tensor r = Tensor::randn({300, 7}, rng);
  auto rv = r.to_vector();
  std::vector<int32_t> ref(300), labels(300);
  int correct = 0;
  for (int i = 0; i < 300; ++i) {
    ref[i] = static_cast<int32_t>(std::max_element(rv.begin() + i * 7, rv.begin() + i * 7 + 7) -
                                  (rv.begin() + i * 7));
    labels[i] = static_cast<int32_t>(rng.below(7));
    correct += labels[i] == ref[i];
  }
  REQUIRE(argmax(r).to_int_vector() == ref);
  REQUIRE(accuracy(r, Tensor::from_ints(labels, {300})).item() == Approx(correct / 300.0));
  // No gradient even from a parameter.
  Tensor p = r.clone().set_requires_grad();
  REQUIRE_FALSE(accuracy(p, Tensor::from_ints(labels, {300})).requires_grad());
}
