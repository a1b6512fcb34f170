// weighted_sum (the DARTS mixed op): forward against a double reference,
// finite-difference gradients for every input and the weights, skipped
// gradients, the softmax -> select_row -> weighted_sum chain, and errors.
// With row scales (the drop-path masks folded into the mixed op): forward and
// dw against a double reference with rows that straddle the kernel's blocks,
// finite differences, agreement with the unfused drop_path -> weighted_sum
// chain, drop_path_scales' rows against drop_path's masks, bitwise
// independence of the thread count, and errors.
#include <catch2/catch.hpp>
#include <omp.h>

#include <string>
#include <vector>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/expect_error.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::close_ratio;
using metanas::testing::expect_error;
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

// Row scales [K, N] drawn from {0, 1.25, 0.5, -1.5}: zeros like drop-path,
// other values so that a scale applied to the wrong row or input shows.
Tensor random_scales(int K, int64_t N, Rng& rng) {
  const float pick[4] = {0.f, 1.25f, 0.5f, -1.5f};
  std::vector<float> v(static_cast<size_t>(K * N));
  for (auto& s : v) s = pick[rng.next_u64() % 4];
  return Tensor::from_vector(v, Shape{K, N});
}

struct Reference {
  std::vector<double> y, dw;
  std::vector<std::vector<double>> dx;
};

Reference reference(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& rs, const Tensor& g) {
  const size_t K = xs.size();
  const std::vector<float> wv = w.to_vector(), sv = rs.to_vector(), gv = g.to_vector();
  const int64_t N = xs[0].dim(0), cols = xs[0].numel() / N;
  Reference r;
  r.y.assign(gv.size(), 0.0);
  r.dw.assign(K, 0.0);
  r.dx.assign(K, std::vector<double>(gv.size(), 0.0));
  for (size_t k = 0; k < K; ++k) {
    const std::vector<float> x = xs[k].to_vector();
    for (size_t i = 0; i < gv.size(); ++i) {
      const double s = sv[k * static_cast<size_t>(N) + i / static_cast<size_t>(cols)];
      r.y[i] += static_cast<double>(wv[k]) * s * x[i];
      r.dx[k][i] = static_cast<double>(wv[k]) * s * gv[i];
      r.dw[k] += s * static_cast<double>(gv[i]) * x[i];
    }
  }
  return r;
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
  auto expect = [](auto&& fn, std::vector<std::string> parts) {
    parts.push_back("weighted_sum");
    expect_error(fn, parts);
  };
  expect([&] { weighted_sum({a, c}, Tensor::zeros({2})); }, {"[2, 3]", "[3, 2]"});
  expect([&] { weighted_sum({a, b}, Tensor::zeros({3})); }, {"[2]", "[3]"});      // K mismatch
  expect([&] { weighted_sum({a, b}, Tensor::zeros({1, 2})); }, {"[1, 2]"});        // w not 1-D
  expect([&] { weighted_sum({}, Tensor::zeros({0})); }, {});                       // no inputs
  expect([&] { weighted_sum({a, Tensor()}, Tensor::zeros({2})); }, {"xs[1]"});     // undefined
  expect([&] { weighted_sum({a, b}, Tensor::from_ints({1, 1}, {2})); }, {"int32"});  // int w
}

TEST_CASE("weighted_sum with row scales matches a double reference, forward and backward",
          "[weighted_sum][row_scales]") {
  Rng rng(40);
  // Rows of 2697 elements straddle the 2048-element blocks; the small shape
  // stays serial, the large one is threaded.
  for (const Shape& s : {Shape{3, 2, 2, 2}, Shape{5, 3, 29, 31}, Shape{7, 1000}}) {
    for (int K : {1, 3, 8}) {
      INFO("shape " << s.str() << " K " << K);
      std::vector<Tensor> xs = random_inputs(K, s, rng);
      for (auto& x : xs) x.set_requires_grad();
      Tensor w = Tensor::randn({K}, rng).set_requires_grad();
      Tensor rs = random_scales(K, s[0], rng);
      Tensor g = Tensor::randn(s, rng);
      Tensor y = weighted_sum(xs, w, rs);
      y.backward(g);
      const Reference ref = reference(xs, w, rs, g);
      REQUIRE(close_ratio(y.to_vector(), ref.y, 1e-5, 1e-5) <= 1.0);
      for (int k = 0; k < K; ++k) REQUIRE(close_ratio(xs[k].grad().to_vector(), ref.dx[k], 1e-6, 1e-6) <= 1.0);
      REQUIRE(close_ratio(w.grad().to_vector(), ref.dw, 1e-4, 1e-5) <= 1.0);
    }
  }
}

TEST_CASE("weighted_sum with row scales: gradients match finite differences", "[weighted_sum][row_scales]") {
  Rng rng(41);
  const int K = 3;
  std::vector<Tensor> in = random_inputs(K, Shape{4, 3, 2, 5}, rng);
  in.push_back(Tensor::randn({K}, rng));
  const Tensor rs = random_scales(K, 4, rng);
  auto f = [rs](const std::vector<Tensor>& t) {
    return weighted_sum(std::vector<Tensor>(t.begin(), t.end() - 1), t.back(), rs);
  };
  for (int i = 0; i <= K; ++i) {
    auto r = grad_check(f, in, i);
    INFO("input " << i << ": " << r.message);
    REQUIRE(r.ok);
  }
}

TEST_CASE("row-scaled weighted_sum equals drop_path -> weighted_sum, with drop_path_scales' masks",
          "[weighted_sum][row_scales][drop_path]") {
  Rng rng(42);
  const int K = 4;
  const int64_t N = 16;
  const Shape s{N, 3, 6, 6};
  PhiloxKey key;
  key.seed = 0x5eedu;
  key.step = 3;
  key.op = 10;
  const float p = 0.3f;
  const std::vector<int64_t> ops{0, -1, 7, 2};  // input 1 is not dropped (an identity op)
  const Tensor rs = drop_path_scales(N, p, key, ops, Device::CPU);
  REQUIRE(rs.shape() == Shape{K, N});

  // Each row is the mask drop_path applies under key.op + ops[r] (ones for -1).
  const std::vector<float> sv = rs.to_vector();
  int zeros = 0;
  for (int r = 0; r < K; ++r) {
    const Tensor ones = Tensor::ones(Shape{N, 1});
    PhiloxKey k = key;
    k.op += static_cast<uint32_t>(ops[static_cast<size_t>(r)] < 0 ? 0 : ops[static_cast<size_t>(r)]);
    const std::vector<float> m =
        ops[static_cast<size_t>(r)] < 0 ? ones.to_vector() : drop_path(ones, p, k).to_vector();
    for (int64_t n = 0; n < N; ++n) {
      REQUIRE(sv[static_cast<size_t>(r * N + n)] == m[static_cast<size_t>(n)]);
      zeros += m[static_cast<size_t>(n)] == 0.f;
    }
  }
  REQUIRE(zeros > 0);  // the planted check would be vacuous without drops

  auto run = [&](bool fused, std::vector<std::vector<float>>& dx, std::vector<float>& dw) {
    Rng r(43);
    std::vector<Tensor> xs = random_inputs(K, s, r);
    for (auto& x : xs) x.set_requires_grad();
    Tensor w = Tensor::randn({K}, r).set_requires_grad();
    Tensor g = Tensor::randn(s, r);
    Tensor y;
    if (fused) {
      y = weighted_sum(xs, w, rs);
    } else {
      std::vector<Tensor> d;
      for (int k = 0; k < K; ++k) {
        PhiloxKey kk = key;
        kk.op += static_cast<uint32_t>(ops[static_cast<size_t>(k)]);
        d.push_back(ops[static_cast<size_t>(k)] < 0 ? xs[static_cast<size_t>(k)]
                                                     : drop_path(xs[static_cast<size_t>(k)], p, kk));
      }
      y = weighted_sum(d, w);
    }
    y.backward(g);
    dx.clear();
    for (auto& x : xs) dx.push_back(x.grad().to_vector());
    dw = w.grad().to_vector();
    return y.to_vector();
  };
  std::vector<std::vector<float>> dx0, dx1;
  std::vector<float> dw0, dw1;
  const std::vector<float> y0 = run(false, dx0, dw0), y1 = run(true, dx1, dw1);
  auto as_double = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
  REQUIRE(close_ratio(y1, as_double(y0), 1e-6, 1e-6) <= 1.0);
  for (int k = 0; k < K; ++k) REQUIRE(close_ratio(dx1[k], as_double(dx0[k]), 1e-6, 1e-6) <= 1.0);
  REQUIRE(close_ratio(dw1, as_double(dw0), 1e-5, 1e-5) <= 1.0);
}

TEST_CASE("weighted_sum with row scales gives the same bits on 1, 2 and 3 threads", "[weighted_sum][row_scales]") {
  Rng rng(44);
  const int K = 6;
  const Shape s{9, 7, 14, 14};
  const std::vector<Tensor> xs0 = random_inputs(K, s, rng);
  const Tensor w0 = Tensor::randn({K}, rng), rs = random_scales(K, s[0], rng), g = Tensor::randn(s, rng);
  const int saved = omp_get_max_threads();
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    std::vector<Tensor> xs;
    for (const auto& x : xs0) xs.push_back(x.clone().set_requires_grad());
    Tensor w = w0.clone().set_requires_grad();
    Tensor y = weighted_sum(xs, w, rs);
    y.backward(g);
    std::vector<float> all = y.to_vector();
    for (const auto& x : xs) {
      const auto d = x.grad().to_vector();
      all.insert(all.end(), d.begin(), d.end());
    }
    const auto dw = w.grad().to_vector();
    all.insert(all.end(), dw.begin(), dw.end());
    if (first.empty())
      first = all;
    else
      REQUIRE(all == first);
  }
  omp_set_num_threads(saved);
}

TEST_CASE("weighted_sum row scales and drop_path_scales reject bad input by name", "[weighted_sum][row_scales]") {
  const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({2, 3}), w = Tensor::zeros({2});
  expect_error([&] { weighted_sum({a, b}, w, Tensor::ones({2, 3})); }, {"weighted_sum", "row_scales", "[2, 2]", "[2, 3]"});
  expect_error([&] { weighted_sum({a, b}, w, Tensor::ones({4})); }, {"row_scales", "[2, 2]"});
  expect_error([&] { weighted_sum({a, b}, w, Tensor::ones({2, 2}).set_requires_grad()); }, {"row_scales", "no gradient"});
  expect_error([&] { weighted_sum({a, b}, w, Tensor()); }, {"weighted_sum", "row_scales"});
  expect_error([&] { drop_path_scales(4, 1.f, PhiloxKey{}, {0}, Device::CPU); }, {"drop_path_scales", "[0, 1)"});
  expect_error([&] { drop_path_scales(-1, 0.2f, PhiloxKey{}, {0}, Device::CPU); }, {"drop_path_scales", "negative"});
}
