// normalized_weighted_sum (the mixed op with each search op's last, affine-free
// batch norm folded in): forward, every input gradient and dw against a double
// reference (batch norm in double, then the weighted sum) at MetaNAS-like
// sizes (threaded paths) with row scales and a large common offset; the same
// values and gradients as the unfused batch_norm -> weighted_sum chain; finite
// differences; bits independent of the thread count; batch_norm_statistics'
// bits equal to the training forward's; and errors.
#include <catch2/catch.hpp>
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/expect_error.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::close_ratio;
using metanas::testing::expect_error;
using metanas::testing::grad_check;

namespace {

struct Case {
  int64_t N, C, H, W;  // W == 0: a 2-D [N, C] input
  std::vector<bool> norm;
  bool scaled;
  float offset;  // added to every input: batch norm must cancel it
};

Shape shape_of(const Case& c) { return c.W ? Shape{c.N, c.C, c.H, c.W} : Shape{c.N, c.C}; }

struct Ref {
  std::vector<double> y, dw;
  std::vector<std::vector<double>> dx;
};

// Batch norm (biased variance, eps) in double, then the weighted sum; the
// backward of both for upstream gradient g.
Ref reference(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& rs, const std::vector<bool>& norm,
              const std::vector<float>& g, float eps) {
  const int K = static_cast<int>(xs.size());
  const int64_t N = xs[0].dim(0), C = xs[0].dim(1), HW = xs[0].numel() / (N * C), n = xs[0].numel();
  const std::vector<float> wv = w.to_vector();
  const std::vector<float> sv = rs.defined() ? rs.to_vector() : std::vector<float>(static_cast<size_t>(K * N), 1.f);
  Ref r;
  r.y.assign(static_cast<size_t>(n), 0.0);
  r.dw.assign(static_cast<size_t>(K), 0.0);
  r.dx.assign(static_cast<size_t>(K), std::vector<double>(static_cast<size_t>(n), 0.0));
  auto at = [&](int64_t b, int64_t c, int64_t i) { return static_cast<size_t>((b * C + c) * HW + i); };
  for (int k = 0; k < K; ++k) {
    const std::vector<float> x = xs[static_cast<size_t>(k)].to_vector();
    for (int64_t c = 0; c < C; ++c) {
      double mu = 0, var = 0;
      if (norm[static_cast<size_t>(k)]) {
        for (int64_t b = 0; b < N; ++b)
          for (int64_t i = 0; i < HW; ++i) mu += x[at(b, c, i)];
        mu /= static_cast<double>(N * HW);
        for (int64_t b = 0; b < N; ++b)
          for (int64_t i = 0; i < HW; ++i) var += (x[at(b, c, i)] - mu) * (x[at(b, c, i)] - mu);
        var /= static_cast<double>(N * HW);
      }
      const double is = norm[static_cast<size_t>(k)] ? 1.0 / std::sqrt(var + eps) : 1.0;
      double sg = 0, sgx = 0;  // sums of g_k and g_k * xhat over the channel
      for (int64_t b = 0; b < N; ++b) {
        const double a = static_cast<double>(wv[static_cast<size_t>(k)]) * sv[static_cast<size_t>(k * N + b)];
        for (int64_t i = 0; i < HW; ++i) {
          const size_t j = at(b, c, i);
          const double xh = norm[static_cast<size_t>(k)] ? (x[j] - mu) * is : x[j];
          r.y[j] += a * xh;
          r.dw[static_cast<size_t>(k)] += g[j] * sv[static_cast<size_t>(k * N + b)] * xh;
          sg += a * g[j];
          sgx += a * g[j] * xh;
        }
      }
      const double M = static_cast<double>(N * HW);
      for (int64_t b = 0; b < N; ++b) {
        const double a = static_cast<double>(wv[static_cast<size_t>(k)]) * sv[static_cast<size_t>(k * N + b)];
        for (int64_t i = 0; i < HW; ++i) {
          const size_t j = at(b, c, i);
          const double gk = a * g[j];
          if (!norm[static_cast<size_t>(k)]) {
            r.dx[static_cast<size_t>(k)][j] = gk;
            continue;
          }
          const double xh = (x[j] - mu) * is;
          r.dx[static_cast<size_t>(k)][j] = is * (gk - sg / M - xh * sgx / M);
        }
      }
    }
  }
  return r;
}

struct Run {
  std::vector<float> y, dw;
  std::vector<std::vector<float>> dx;
};

Run run(const std::vector<Tensor>& in, const Tensor& w0, const Tensor& rs, const std::vector<bool>& norm,
        const std::vector<float>& g, bool fused) {
  std::vector<Tensor> xs;
  for (const Tensor& x : in) xs.push_back(x.clone().set_requires_grad());
  Tensor w = w0.clone().set_requires_grad();
  Tensor y;
  if (fused) {
    y = normalized_weighted_sum(xs, w, rs, norm);
  } else {
    std::vector<Tensor> bn;
    for (size_t k = 0; k < xs.size(); ++k)
      bn.push_back(norm[k] ? batch_norm(xs[k], Tensor(), Tensor(), Tensor(), Tensor()) : xs[k]);
    y = rs.defined() ? weighted_sum(bn, w, rs) : weighted_sum(bn, w);
  }
  y.backward(Tensor::from_vector(g, y.shape()));
  Run r{y.to_vector(), w.grad().to_vector(), {}};
  for (const Tensor& x : xs) r.dx.push_back(x.grad().to_vector());
  return r;
}

std::vector<Tensor> inputs(const Case& c, int K, Rng& rng) {
  std::vector<Tensor> xs;
  for (int k = 0; k < K; ++k) xs.push_back(add_scalar(Tensor::randn(shape_of(c), rng, 1.f + 0.5f * k), c.offset));
  return xs;
}

Tensor scales(const Case& c, int K, Rng& rng) {
  if (!c.scaled) return Tensor();
  const float pick[3] = {0.f, 1.25f, 0.7f};
  std::vector<float> v(static_cast<size_t>(K * c.N));
  for (auto& s : v) s = pick[rng.next_u64() % 3];
  return Tensor::from_vector(v, Shape{K, c.N});
}

std::vector<float> random_vec(int64_t n, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {20, 28, 14, 14, {true, true, false, true, true, true, false}, true, 0.f},  // W1's mixed op at 14x14
      {20, 28, 7, 7, {true, false, true, true, true, true, true}, false, 0.f},
      {3, 5, 4, 6, {false, true}, true, 0.f},
      {6, 4, 0, 0, {true, true, false}, true, 0.f},          // [N, C]
      {4, 3, 5, 5, {true, true, true}, true, 100.f},         // a large common offset
      {2, 3, 3, 3, {false, false}, true, 0.f},               // nothing normalised: weighted_sum
  };
  return c;
}

// One case's random inputs, weights, row scales and upstream gradient.
struct Setup {
  int K;
  std::vector<Tensor> xs;
  Tensor w, rs;
  std::vector<float> g;
  Setup(const Case& c, Rng& rng) : K(static_cast<int>(c.norm.size())), xs(inputs(c, K, rng)) {
    w = Tensor::randn({K}, rng);
    rs = scales(c, K, rng);
    g = random_vec(xs[0].numel(), rng);
  }
};

}  // namespace

TEST_CASE("normalized_weighted_sum matches batch norm then the weighted sum in double", "[normalized_sum]") {
  Rng rng(21);
  for (size_t ci = 0; ci < cases().size(); ++ci) {
    const Case& c = cases()[ci];
    INFO("case " << ci);
    const Setup su(c, rng);
    const int K = su.K;
    const auto& xs = su.xs;
    const Tensor &w = su.w, &rs = su.rs;
    const std::vector<float>& g = su.g;
    const Ref ref = reference(xs, w, rs, c.norm, g, 1e-5f);
    const Run got = run(xs, w, rs, c.norm, g, true);
    CHECK(close_ratio(got.y, ref.y, 1e-5, 1e-4) <= 1.0);
    CHECK(close_ratio(got.dw, ref.dw, 1e-4, 1e-4) <= 1.0);
    for (int k = 0; k < K; ++k) {
      INFO("dx of input " << k);
      // A normalised input's gradient is a difference of O(1) terms scaled by invstd.
      CHECK(close_ratio(got.dx[static_cast<size_t>(k)], ref.dx[static_cast<size_t>(k)], 1e-4, 1e-3) <= 1.0);
    }
  }
}

TEST_CASE("normalized_weighted_sum equals the unfused batch_norm -> weighted_sum chain", "[normalized_sum]") {
  Rng rng(22);
  for (size_t ci = 0; ci < cases().size(); ++ci) {
    const Case& c = cases()[ci];
    INFO("case " << ci);
    const Setup su(c, rng);
    const int K = su.K;
    const Run a = run(su.xs, su.w, su.rs, c.norm, su.g, true), b = run(su.xs, su.w, su.rs, c.norm, su.g, false);
    std::vector<double> by(b.y.begin(), b.y.end()), bw(b.dw.begin(), b.dw.end());
    CHECK(close_ratio(a.y, by, 1e-5, 1e-4) <= 1.0);
    CHECK(close_ratio(a.dw, bw, 1e-4, 1e-4) <= 1.0);
    for (int k = 0; k < K; ++k) {
      std::vector<double> bx(b.dx[static_cast<size_t>(k)].begin(), b.dx[static_cast<size_t>(k)].end());
      CHECK(close_ratio(a.dx[static_cast<size_t>(k)], bx, 1e-4, 1e-3) <= 1.0);
    }
  }
}

TEST_CASE("normalized_weighted_sum's finite-difference gradients", "[normalized_sum][gradcheck]") {
  Rng rng(23);
  const std::vector<bool> norm = {true, false, true};
  const int K = 3;
  std::vector<Tensor> in;
  for (int k = 0; k < K; ++k) in.push_back(Tensor::randn({3, 2, 3, 3}, rng));
  in.push_back(Tensor::randn({K}, rng));
  for (const bool scaled : {false, true}) {
    const Tensor rs = scaled ? Tensor::from_vector({1.f, 0.f, 1.25f, 1.f, 1.f, 0.f, 0.5f, 1.f, 1.f}, {K, 3}) : Tensor();
    auto f = [&](const std::vector<Tensor>& t) {
      return normalized_weighted_sum(std::vector<Tensor>(t.begin(), t.end() - 1), t.back(), rs, norm);
    };
    for (int i = 0; i <= K; ++i) {
      auto r = grad_check(f, in, i);
      INFO("scaled " << scaled << ", input " << i << ": " << r.message);
      REQUIRE(r.ok);
    }
  }
}

TEST_CASE("normalized_weighted_sum's bits do not depend on the thread count", "[normalized_sum]") {
  Rng rng(24);
  const Case& c = cases()[0];
  const Setup su(c, rng);
  const auto& xs = su.xs;
  const Tensor &w = su.w, &rs = su.rs;
  const std::vector<float>& g = su.g;
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const Run one = run(xs, w, rs, c.norm, g, true);
  for (int t : {2, 3}) {
    omp_set_num_threads(t);
    const Run r = run(xs, w, rs, c.norm, g, true);
    CHECK(r.y == one.y);
    CHECK(r.dw == one.dw);
    CHECK(r.dx == one.dx);
  }
  omp_set_num_threads(before);
}

TEST_CASE("normalized_weighted_sum adds into pending gradient sums", "[normalized_sum][autograd]") {
  // x is a plain input (a skip connection's state) and z a normalised one, and
  // both are read by a conv created later, whose backward runs first and
  // leaves an owned sum: the mixed op adds its dx and dz into those sums, and
  // its dw into the weights' leaf gradient, with the result of adding the
  // gradients taken one graph at a time.
  Rng rng(31);
  const Shape s{3, 4, 5, 5};
  Tensor x = Tensor::randn(s, rng).set_requires_grad();
  Tensor z = Tensor::randn(s, rng, 2.f, 0.5f).set_requires_grad();
  Tensor w = Tensor::from_vector({0.7f, -0.4f}, Shape{2}).set_requires_grad();
  Tensor k = Tensor::randn({4, 4, 3, 3}, rng).set_requires_grad();
  Tensor a = Tensor::randn(s, rng), b = Tensor::randn(s, rng);
  auto mixed = [&](const Tensor& xi, const Tensor& zi, const Tensor& wi) {
    return sum(mul(normalized_weighted_sum({xi, zi}, wi, Tensor(), {false, true}), a));
  };
  auto convs = [&](const Tensor& xi, const Tensor& zi) {
    const Conv2dOptions o = Conv2dOptions::same(1, 1);
    return sum(mul(add(conv2d(xi, k, o), conv2d(zi, k, o)), b));
  };
  w.set_grad(Tensor::from_vector({0.25f, -0.5f}, Shape{2}));
  const uint64_t before = into_accumulations_for_testing();
  {
    Tensor m = mixed(x, z, w);  // created first: its backward runs after the convs'
    add(m, convs(x, z)).backward();
  }
  // The mixed op's dx, dz and dw, and the second conv's weight gradient into k's.
  CHECK(into_accumulations_for_testing() - before == 4);
  Tensor x1 = x.detach().set_requires_grad(), z1 = z.detach().set_requires_grad(), w1 = w.detach().set_requires_grad();
  mixed(x1, z1, w1).backward();
  Tensor x2 = x.detach().set_requires_grad(), z2 = z.detach().set_requires_grad();
  convs(x2, z2).backward();
  auto summed = [](const Tensor& p, const Tensor& q) {
    std::vector<double> r;
    const std::vector<float> pv = p.to_vector(), qv = q.to_vector();
    for (size_t i = 0; i < pv.size(); ++i) r.push_back(static_cast<double>(pv[i]) + qv[i]);
    return r;
  };
  CHECK(close_ratio(x.grad().to_vector(), summed(x1.grad(), x2.grad()), 1e-6, 1e-6) <= 1.0);
  CHECK(close_ratio(z.grad().to_vector(), summed(z1.grad(), z2.grad()), 1e-6, 1e-6) <= 1.0);
  CHECK(close_ratio(w.grad().to_vector(), summed(w1.grad(), Tensor::from_vector({0.25f, -0.5f}, Shape{2})), 1e-6,
                    1e-6) <= 1.0);
}

TEST_CASE("batch_norm_statistics writes the training forward's mean and invstd bits", "[normalized_sum]") {
  Rng rng(25);
  for (const Shape& s : {Shape{20, 28, 14, 14}, Shape{3, 4, 5, 7}, Shape{5, 6, 1, 1}}) {
    const int64_t N = s[0], C = s[1], HW = s[2] * s[3];
    const std::vector<float> x = add_scalar(Tensor::randn(s, rng), 3.f).to_vector();
    std::vector<float> m1(static_cast<size_t>(C)), i1(m1), m2(m1), i2(m1), y(x.size());
    kernels::cpu::batch_norm_statistics(x.data(), m1.data(), i1.data(), N, C, HW, 1e-5f);
    kernels::cpu::batch_norm_forward_train(x.data(), nullptr, nullptr, y.data(), m2.data(), i2.data(), nullptr,
                                           nullptr, N, C, HW, 1e-5f, 0.1f);
    CHECK(m1 == m2);
    CHECK(i1 == i2);
  }
}

TEST_CASE("normalized_weighted_sum rejects bad inputs by name", "[normalized_sum][errors]") {
  Rng rng(26);
  const Tensor a = Tensor::randn({2, 3, 4, 4}, rng), b = Tensor::randn({2, 3, 4, 4}, rng), w = Tensor::randn({2}, rng);
  expect_error([&] { normalized_weighted_sum({a, b}, w, Tensor(), {true}); },
               {"normalized_weighted_sum", "1 flags for 2 inputs"});
  expect_error([&] { normalized_weighted_sum({a, Tensor::randn({2, 3, 4, 5}, rng)}, w, Tensor(), {true, true}); },
               {"normalized_weighted_sum", "share one shape"});
  const Tensor c = Tensor::randn({2, 3, 4}, rng);
  expect_error([&] { normalized_weighted_sum({c, c}, w, Tensor(), {true, true}); },
               {"normalized_weighted_sum", "[N, C, H, W] or [N, C]"});
  expect_error([&] { normalized_weighted_sum({a, b}, w, Tensor(), {true, false}, 0.f); },
               {"normalized_weighted_sum", "eps must be > 0"});
  const Tensor one = Tensor::randn({1, 3, 1, 1}, rng);
  expect_error([&] { normalized_weighted_sum({one, one}, w, Tensor(), {true, false}); },
               {"normalized_weighted_sum", "more than one value per channel"});
  expect_error([&] { normalized_weighted_sum({a, b}, w, Tensor::ones({2, 3}), {true, false}); },
               {"normalized_weighted_sum", "row_scales must be [2, 2]"});
  expect_error([&] { normalized_weighted_sum({a, b}, Tensor::randn({3}, rng), Tensor(), {true, false}); },
               {"normalized_weighted_sum", "w must be 1-D [2]"});
}
