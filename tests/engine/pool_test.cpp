// Pooling: max_pool2d, avg_pool2d (padding excluded from the count) and
// global_avg_pool against naive double references, finite-difference gradient
// checks, kernel accumulate mode, and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::close_ratio;
using metanas::testing::grad_check;

namespace {

struct PoolCase {
  int64_t N, C, H, W, k, stride, pad;
};

const std::vector<PoolCase> kCases = {
    {2, 3, 7, 6, 3, 1, 1},  // MetaNAS, stride 1
    {2, 3, 8, 7, 3, 2, 1},  // MetaNAS reduction cell, stride 2
    {2, 2, 7, 7, 3, 2, 1},  // odd size, stride 2
    {2, 2, 6, 8, 2, 2, 0},  // classic 2x2
    {2, 3, 7, 9, 2, 2, 0},  // 2x2 fast path, odd sizes: last row and column unused
    {1, 2, 9, 7, 5, 2, 2},  // wide window, heavy padding
    {2, 2, 7, 6, 3, 3, 0},  // stride > 1, no padding, leftover pixels
    {3, 4, 5, 5, 1, 1, 0},  // identity
    // Rows of 8 or more outputs: written as 8-wide vectors, the last one overlapping.
    {2, 3, 5, 13, 3, 1, 1},  // 13 outputs per row: vectors at 0 and 5
    {1, 2, 6, 16, 3, 1, 1},  // two whole vectors
    {2, 2, 6, 20, 3, 2, 1},  // stride 2, 10 outputs per row
    {1, 2, 7, 12, 5, 1, 2},  // 5x5 window, 12 outputs per row
};

std::string name(const PoolCase& c) {
  return "N" + std::to_string(c.N) + " C" + std::to_string(c.C) + " " + std::to_string(c.H) + "x" +
         std::to_string(c.W) + " k" + std::to_string(c.k) + " s" + std::to_string(c.stride) +
         " p" + std::to_string(c.pad);
}

int64_t osz(int64_t in, const PoolCase& c) { return (in + 2 * c.pad - c.k) / c.stride + 1; }

// Calls f(out_index, in_index, real_count) for every real pixel of every window.
template <typename F>
void each_window(const PoolCase& c, F f) {
  const int64_t OH = osz(c.H, c), OW = osz(c.W, c);
  for (int64_t p = 0; p < c.N * c.C; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        std::vector<int64_t> in;
        for (int64_t kh = 0; kh < c.k; ++kh)
          for (int64_t kw = 0; kw < c.k; ++kw) {
            const int64_t ih = oh * c.stride - c.pad + kh, iw = ow * c.stride - c.pad + kw;
            if (ih >= 0 && ih < c.H && iw >= 0 && iw < c.W) in.push_back((p * c.H + ih) * c.W + iw);
          }
        for (int64_t i : in) f((p * OH + oh) * OW + ow, i, static_cast<int64_t>(in.size()));
      }
}

// Distinct values spaced 0.05 apart in random order: no max-pool ties, and a
// finite-difference step of 0.01 never changes an argmax.
std::vector<float> distinct_values(int64_t n, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = 0.05f * static_cast<float>(i - n / 2);
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[rng.below(static_cast<uint64_t>(i + 1))]);
  return v;
}

PoolGeom geom(const PoolCase& c) {
  PoolGeom g;
  g.N = c.N;
  g.C = c.C;
  g.H = c.H;
  g.W = c.W;
  g.k = c.k;
  g.stride = c.stride;
  g.pad = c.pad;
  g.OH = osz(c.H, c);
  g.OW = osz(c.W, c);
  return g;
}

}  // namespace

TEST_CASE("max_pool2d matches a naive reference and padding never wins", "[pool]") {
  Rng rng(1);
  for (const auto& c : kCases) {
    INFO(name(c));
    // All negative: a padded zero would win if padding took part.
    auto xv = distinct_values(c.N * c.C * c.H * c.W, rng);
    for (auto& v : xv) v -= 100.f;
    const int64_t OH = osz(c.H, c), OW = osz(c.W, c);
    std::vector<double> ref(static_cast<size_t>(c.N * c.C * OH * OW), -1e30);
    std::vector<int64_t> arg(ref.size(), -1);
    each_window(c, [&](int64_t o, int64_t i, int64_t) {
      if (xv[i] > ref[o]) {
        ref[o] = xv[i];
        arg[o] = i;
      }
    });
    Tensor x = Tensor::from_vector(xv, {c.N, c.C, c.H, c.W}).set_requires_grad();
    Tensor y = max_pool2d(x, c.k, c.stride, c.pad);
    REQUIRE(y.shape() == Shape{c.N, c.C, OH, OW});
    CHECK(close_ratio(y.to_vector(), ref, 0, 1e-7) <= 1.0);
    // Backward: each output's gradient lands on its argmax.
    std::vector<float> dy(ref.size());
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = 0.5f + 0.01f * static_cast<float>(i % 17);
    y.backward(Tensor::from_vector(dy, y.shape()));
    std::vector<double> rdx(xv.size(), 0.0);
    for (size_t o = 0; o < arg.size(); ++o) rdx[static_cast<size_t>(arg[o])] += dy[o];
    CHECK(close_ratio(x.grad().to_vector(), rdx, 1e-6, 1e-6) <= 1.0);
  }
}

TEST_CASE("max pool kernel saves argmax as an index into the input plane", "[pool]") {
  // 1 x 1 x 3 x 4, k 2 s 2 p 0: windows {0,1,4,5} and {2,3,6,7}.
  Tensor x = Tensor::from_vector({1, 9, 2, 3, 4, 5, 8, 7, 0, 0, 0, 0}, {1, 1, 3, 4});
  PoolGeom g;
  g.N = 1; g.C = 1; g.H = 3; g.W = 4; g.k = 2; g.stride = 2; g.pad = 0; g.OH = 1; g.OW = 2;
  std::vector<float> y(2);
  std::vector<int32_t> arg(2);
  kernels::cpu::max_pool_forward(g, x.data(), y.data(), arg.data());
  CHECK(y[0] == 9.f);
  CHECK(arg[0] == 1);
  CHECK(y[1] == 8.f);
  CHECK(arg[1] == 6);
}

TEST_CASE("max pool ties go to the first maximum in row-major order", "[pool]") {
  for (const int64_t W : {5, 11}) {  // 11: the row kernel, with an overlapping last vector
    PoolGeom g;
    g.N = 1; g.C = 1; g.H = 4; g.W = W; g.k = 3; g.stride = 1; g.pad = 1; g.OH = 4; g.OW = W;
    std::vector<float> x(static_cast<size_t>(4 * W), 2.f), y(x.size());
    std::vector<int32_t> arg(x.size());
    kernels::cpu::max_pool_forward(g, x.data(), y.data(), arg.data());
    for (int64_t oh = 0; oh < 4; ++oh)
      for (int64_t ow = 0; ow < W; ++ow) {
        INFO("W " << W << ", output " << oh << "," << ow);
        CHECK(arg[static_cast<size_t>(oh * W + ow)] ==
              std::max<int64_t>(oh - 1, 0) * W + std::max<int64_t>(ow - 1, 0));
      }
  }
}

TEST_CASE("avg_pool2d matches a naive reference that excludes padding", "[pool]") {
  Rng rng(2);
  for (const auto& c : kCases) {
    INFO(name(c));
    auto xv = distinct_values(c.N * c.C * c.H * c.W, rng);
    const int64_t OH = osz(c.H, c), OW = osz(c.W, c);
    std::vector<double> ref(static_cast<size_t>(c.N * c.C * OH * OW), 0.0);
    each_window(c, [&](int64_t o, int64_t i, int64_t cnt) { ref[o] += xv[i] / static_cast<double>(cnt); });
    Tensor x = Tensor::from_vector(xv, {c.N, c.C, c.H, c.W}).set_requires_grad();
    Tensor y = avg_pool2d(x, c.k, c.stride, c.pad);
    REQUIRE(y.shape() == Shape{c.N, c.C, OH, OW});
    CHECK(close_ratio(y.to_vector(), ref, 1e-6, 1e-5) <= 1.0);
    std::vector<float> dy(ref.size());
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = 0.3f - 0.02f * static_cast<float>(i % 23);
    y.backward(Tensor::from_vector(dy, y.shape()));
    std::vector<double> rdx(xv.size(), 0.0);
    each_window(c, [&](int64_t o, int64_t i, int64_t cnt) { rdx[i] += dy[o] / static_cast<double>(cnt); });
    CHECK(close_ratio(x.grad().to_vector(), rdx, 1e-6, 1e-5) <= 1.0);
  }
}

TEST_CASE("avg_pool2d of a constant is that constant everywhere including the border", "[pool]") {
  Tensor x = Tensor::full({1, 2, 5, 5}, 3.f);
  for (float v : avg_pool2d(x, 3, 1, 1).to_vector()) REQUIRE(v == Approx(3.f));
  for (float v : avg_pool2d(x, 3, 2, 1).to_vector()) REQUIRE(v == Approx(3.f));
}

TEST_CASE("pooling finite-difference gradients", "[pool][gradcheck]") {
  Rng rng(4);
  for (const auto& c : kCases) {
    INFO(name(c));
    Tensor x = Tensor::from_vector(distinct_values(c.N * c.C * c.H * c.W, rng), {c.N, c.C, c.H, c.W});
    const int64_t k = c.k, s = c.stride, p = c.pad;
    auto rm = grad_check([=](const std::vector<Tensor>& in) { return max_pool2d(in[0], k, s, p); }, {x}, 0);
    auto ra = grad_check([=](const std::vector<Tensor>& in) { return avg_pool2d(in[0], k, s, p); }, {x}, 0);
    INFO("max: " << rm.message);
    INFO("avg: " << ra.message);
    CHECK(rm.ok);
    CHECK(ra.ok);
  }
}

TEST_CASE("pool kernels accumulate into existing gradients when asked", "[pool]") {
  Rng rng(6);
  for (const auto& c : kCases) {
    INFO(name(c));
    const PoolGeom g = geom(c);
    auto xv = distinct_values(c.N * c.C * c.H * c.W, rng);
    std::vector<float> y(static_cast<size_t>(c.N * c.C * g.OH * g.OW)), dy(y.size());
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = 0.1f * static_cast<float>(i % 7) - 0.2f;
    std::vector<int32_t> arg(y.size());
    kernels::cpu::max_pool_forward(g, xv.data(), y.data(), arg.data());
    std::vector<float> base(xv.size());
    for (size_t i = 0; i < base.size(); ++i) base[i] = 0.01f * static_cast<float>(i % 13);
    for (int which = 0; which < 2; ++which) {
      std::vector<float> fresh(xv.size(), 0.f), acc = base;
      if (which == 0) {
        kernels::cpu::max_pool_backward(g, dy.data(), arg.data(), fresh.data(), false);
        kernels::cpu::max_pool_backward(g, dy.data(), arg.data(), acc.data(), true);
      } else {
        kernels::cpu::avg_pool_backward(g, dy.data(), fresh.data(), false);
        kernels::cpu::avg_pool_backward(g, dy.data(), acc.data(), true);
      }
      std::vector<double> expect(xv.size());
      for (size_t i = 0; i < expect.size(); ++i) expect[i] = static_cast<double>(base[i]) + fresh[i];
      CHECK(close_ratio(acc, expect, 1e-6, 1e-6) <= 1.0);
    }
  }
}

TEST_CASE("pool ops add their gradients into a tensor's pending sum", "[pool][autograd]") {
  // x feeds a max pool, an average pool and a global average pool (a MetaNAS
  // state feeding an edge's pooling ops): the first backward's gradient is
  // adopted as x's sum and the other two add into it, with the same result as
  // the gradients taken one op at a time and added.
  Rng rng(21);
  Tensor x = Tensor::randn({2, 3, 6, 6}, rng).set_requires_grad();
  Tensor a = Tensor::randn({2, 3, 6, 6}, rng), b = Tensor::randn({2, 3, 6, 6}, rng), c = Tensor::randn({2, 3}, rng);
  auto term = [&](const Tensor& in, int which) {
    if (which == 0) return sum(mul(max_pool2d(in, 3, 1, 1), a));
    if (which == 1) return sum(mul(avg_pool2d(in, 3, 1, 1), b));
    return sum(mul(global_avg_pool(in), c));
  };
  const uint64_t before = into_accumulations_for_testing();
  add(add(term(x, 0), term(x, 1)), term(x, 2)).backward();
  CHECK(into_accumulations_for_testing() - before == 2);
  const std::vector<float> got = x.grad().to_vector();
  std::vector<double> expect(got.size(), 0.0);
  for (int which = 0; which < 3; ++which) {
    Tensor xi = x.detach().set_requires_grad();
    term(xi, which).backward();
    const std::vector<float> g = xi.grad().to_vector();
    for (size_t i = 0; i < g.size(); ++i) expect[i] += g[i];
  }
  CHECK(close_ratio(got, expect, 1e-6, 1e-6) <= 1.0);
}

TEST_CASE("global_avg_pool matches a reference and its gradient", "[pool]") {
  Rng rng(8);
  const int64_t N = 3, C = 4, H = 5, W = 6;
  auto xv = distinct_values(N * C * H * W, rng);
  Tensor x = Tensor::from_vector(xv, {N, C, H, W});
  Tensor y = global_avg_pool(x);
  REQUIRE(y.shape() == Shape{N, C});
  std::vector<double> ref(static_cast<size_t>(N * C), 0.0);
  for (int64_t i = 0; i < N * C * H * W; ++i) ref[static_cast<size_t>(i / (H * W))] += xv[i] / double(H * W);
  CHECK(close_ratio(y.to_vector(), ref, 1e-6, 1e-5) <= 1.0);
  auto r = grad_check([](const std::vector<Tensor>& in) { return global_avg_pool(in[0]); }, {x}, 0);
  INFO(r.message);
  CHECK(r.ok);
}

namespace {
std::string err(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("pooling rejects bad inputs with clear errors", "[pool][errors]") {
  Tensor x = Tensor::zeros({2, 3, 6, 6});
  std::string e = err([&] { max_pool2d(x, 3, 1, 2); });
  CHECK(has(e, "max_pool2d"));
  CHECK(has(e, "pad 2"));
  e = err([&] { avg_pool2d(Tensor::zeros({3, 6, 6}), 3, 1, 1); });
  CHECK(has(e, "avg_pool2d"));
  CHECK(has(e, "4-D"));
  e = err([&] { avg_pool2d(Tensor::zeros({1, 1, 2, 2}), 5, 1, 1); });
  CHECK(has(e, "does not fit"));
  CHECK(has(e, "[1, 1, 2, 2]"));
  e = err([&] { max_pool2d(x, 3, 0, 1); });
  CHECK(has(e, "stride"));
  e = err([&] { max_pool2d(Tensor::from_ints(std::vector<int32_t>(4), {1, 1, 2, 2}), 1, 1, 0); });
  CHECK(has(e, "float32"));
  e = err([&] { global_avg_pool(Tensor::zeros({2, 3})); });
  CHECK(has(e, "global_avg_pool"));
  CHECK(has(e, "4-D"));
}
