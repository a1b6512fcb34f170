// conv2d: forward and both backwards against naive double references, finite-
// difference gradient checks for x and w, kernel accumulate mode, and errors.
// Cases cover every kernel path: dense / grouped im2col, 1x1 GEMM, depthwise
// direct, with stride, asymmetric padding, dilation and the fused input relu.
#include <catch2/catch.hpp>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/conv_shifted.h"
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/cpu_isa.h"
#include "metanas/engine/error.h"
#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::close_ratio;
using metanas::testing::grad_check;

namespace {

struct ConvCase {
  std::string name;
  int64_t N, Cin, H, W, Cout, KH, KW;
  Conv2dOptions opt;
};

Conv2dOptions opts(int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                   int64_t dh, int64_t dw, int64_t groups, bool relu) {
  Conv2dOptions o;
  o.stride_h = sh;
  o.stride_w = sw;
  o.pad_top = pt;
  o.pad_bottom = pb;
  o.pad_left = pl;
  o.pad_right = pr;
  o.dil_h = dh;
  o.dil_w = dw;
  o.groups = groups;
  o.relu_input = relu;
  return o;
}

std::vector<ConvCase> cases() {
  auto sq = [](int64_t s, int64_t p, int64_t d, int64_t g, bool relu) {
    Conv2dOptions o = Conv2dOptions::same(s, p, d, g);
    o.relu_input = relu;
    return o;
  };
  return {
      {"dense 3x3", 2, 3, 7, 6, 4, 3, 3, sq(1, 1, 1, 1, false)},
      {"dense 3x3 single sample", 1, 3, 6, 5, 4, 3, 3, sq(1, 1, 1, 1, true)},
      {"dense 3x3 stride 2", 2, 3, 7, 8, 4, 3, 3, sq(2, 1, 1, 1, false)},
      {"dense 3x3 dilation 2 relu", 2, 3, 8, 7, 3, 3, 3, sq(1, 2, 2, 1, true)},
      {"dense 1x5 asymmetric pad", 2, 4, 6, 7, 4, 1, 5, opts(1, 1, 0, 0, 2, 2, 1, 1, 1, true)},
      {"dense 5x1 asymmetric pad", 2, 4, 7, 6, 4, 5, 1, opts(1, 1, 2, 2, 0, 0, 1, 1, 1, true)},
      {"dense odd geometry", 3, 2, 9, 8, 3, 2, 3, opts(2, 1, 1, 0, 2, 1, 1, 2, 1, false)},
      {"grouped 2 groups", 2, 4, 6, 6, 6, 3, 3, sq(1, 1, 1, 2, false)},
      {"grouped stride 2 relu", 3, 6, 7, 7, 3, 3, 3, sq(2, 1, 1, 3, true)},
      {"channel multiplier (groups = Cin, Cout = 2 Cin)", 2, 3, 6, 6, 6, 3, 3, sq(1, 1, 1, 3, false)},
      {"pointwise 1x1", 3, 5, 5, 6, 4, 1, 1, sq(1, 0, 1, 1, false)},
      {"pointwise 1x1 relu", 3, 5, 5, 6, 4, 1, 1, sq(1, 0, 1, 1, true)},
      {"pointwise 1x1 grouped relu", 2, 4, 5, 5, 6, 1, 1, sq(1, 0, 1, 2, true)},
      {"1x1 stride 2 (im2col path)", 2, 3, 7, 7, 4, 1, 1, sq(2, 0, 1, 1, false)},
      {"depthwise 3x3", 2, 4, 7, 6, 4, 3, 3, sq(1, 1, 1, 4, false)},
      {"depthwise 3x3 relu", 3, 5, 8, 8, 5, 3, 3, sq(1, 1, 1, 5, true)},
      {"depthwise 3x3 dilation 2 relu", 2, 4, 8, 7, 4, 3, 3, sq(1, 2, 2, 4, true)},
      {"depthwise 3x3 stride 2 relu", 2, 4, 9, 8, 4, 3, 3, sq(2, 1, 1, 4, true)},
      {"depthwise 3x3 dilation 2 stride 2 relu", 2, 3, 9, 9, 3, 3, 3, sq(2, 2, 2, 3, true)},
      {"depthwise 5x5 odd geometry", 2, 3, 9, 10, 3, 5, 5, opts(2, 3, 2, 1, 0, 3, 1, 2, 3, true)},
      {"depthwise 1x5 / 5x1", 2, 3, 6, 7, 3, 5, 1, opts(1, 2, 2, 2, 0, 1, 1, 1, 3, false)},
      {"depthwise 5x1 stride 1, pad beyond kernel", 2, 2, 6, 5, 2, 5, 1, opts(1, 1, 3, 1, 2, 2, 1, 1, 2, false)},
      {"depthwise 2x3 stride 1 asymmetric", 2, 3, 6, 7, 3, 2, 3, opts(1, 1, 1, 0, 0, 2, 2, 1, 3, true)},
      {"depthwise 5x5 dilation 2", 2, 2, 9, 9, 2, 5, 5, sq(1, 4, 2, 2, true)},
      {"depthwise 3x3 pad 3", 2, 2, 5, 5, 2, 3, 3, sq(1, 3, 1, 2, false)},
  };
}

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t plo, int64_t phi, int64_t d) {
  return (in + plo + phi - d * (k - 1) - 1) / s + 1;
}

// Shapes of one case.
struct Geo {
  int64_t N, Cin, H, W, Cout, KH, KW, OH, OW, G, Cg, Coutg;
  Conv2dOptions o;
  explicit Geo(const ConvCase& c)
      : N(c.N), Cin(c.Cin), H(c.H), W(c.W), Cout(c.Cout), KH(c.KH), KW(c.KW),
        OH(out_size(c.H, c.KH, c.opt.stride_h, c.opt.pad_top, c.opt.pad_bottom, c.opt.dil_h)),
        OW(out_size(c.W, c.KW, c.opt.stride_w, c.opt.pad_left, c.opt.pad_right, c.opt.dil_w)),
        G(c.opt.groups), Cg(c.Cin / c.opt.groups), Coutg(c.Cout / c.opt.groups), o(c.opt) {}
  // Calls f(n, co, oh, ow, ci, ih, iw, widx) for every (output, tap) pair that hits a real pixel.
  template <typename F>
  void each(F f) const {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t co = 0; co < Cout; ++co) {
        const int64_t gi = co / Coutg;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow)
            for (int64_t cg = 0; cg < Cg; ++cg)
              for (int64_t kh = 0; kh < KH; ++kh)
                for (int64_t kw = 0; kw < KW; ++kw) {
                  const int64_t ih = oh * o.stride_h + kh * o.dil_h - o.pad_top;
                  const int64_t iw = ow * o.stride_w + kw * o.dil_w - o.pad_left;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  const int64_t ci = gi * Cg + cg;
                  f(((n * Cout + co) * OH + oh) * OW + ow, ((n * Cin + ci) * H + ih) * W + iw,
                    ((co * Cg + cg) * KH + kh) * KW + kw);
                }
      }
  }
};

double in_val(const std::vector<float>& x, int64_t i, bool relu) {
  return relu ? std::max(0.0, static_cast<double>(x[i])) : static_cast<double>(x[i]);
}

std::vector<double> ref_forward(const Geo& g, const std::vector<float>& x, const std::vector<float>& w) {
  std::vector<double> y(static_cast<size_t>(g.N * g.Cout * g.OH * g.OW), 0.0);
  g.each([&](int64_t yi, int64_t xi, int64_t wi) { y[yi] += in_val(x, xi, g.o.relu_input) * w[wi]; });
  return y;
}

std::vector<double> ref_backward_data(const Geo& g, const std::vector<float>& x,
                                      const std::vector<float>& w, const std::vector<float>& dy) {
  std::vector<double> dx(x.size(), 0.0);
  g.each([&](int64_t yi, int64_t xi, int64_t wi) {
    if (!g.o.relu_input || x[xi] > 0) dx[xi] += static_cast<double>(dy[yi]) * w[wi];
  });
  return dx;
}

std::vector<double> ref_backward_weight(const Geo& g, const std::vector<float>& x,
                                        const std::vector<float>& dy) {
  std::vector<double> dw(static_cast<size_t>(g.Cout * g.Cg * g.KH * g.KW), 0.0);
  g.each([&](int64_t yi, int64_t xi, int64_t wi) { dw[wi] += static_cast<double>(dy[yi]) * in_val(x, xi, g.o.relu_input); });
  return dw;
}

// Values in +-[0.1, 1]: away from the relu kink by more than the FD step.
std::vector<float> away_from_zero(int64_t n, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) {
    const float m = 0.1f + 0.9f * rng.uniform();
    e = rng.uniform() < 0.5f ? -m : m;
  }
  return v;
}

ConvGeom kernel_geom(const Geo& g) {
  ConvGeom k;
  k.N = g.N;
  k.Cin = g.Cin;
  k.H = g.H;
  k.W = g.W;
  k.Cout = g.Cout;
  k.KH = g.KH;
  k.KW = g.KW;
  k.stride_h = g.o.stride_h;
  k.stride_w = g.o.stride_w;
  k.pad_top = g.o.pad_top;
  k.pad_bottom = g.o.pad_bottom;
  k.pad_left = g.o.pad_left;
  k.pad_right = g.o.pad_right;
  k.dil_h = g.o.dil_h;
  k.dil_w = g.o.dil_w;
  k.groups = g.G;
  k.OH = g.OH;
  k.OW = g.OW;
  k.relu_input = g.o.relu_input;
  return k;
}

}  // namespace

TEST_CASE("conv2d forward and backward match naive double references", "[conv]") {
  Rng rng(7);
  for (const auto& c : cases()) {
    INFO(c.name);
    const Geo g(c);
    auto xv = away_from_zero(g.N * g.Cin * g.H * g.W, rng);
    auto wv = away_from_zero(g.Cout * g.Cg * g.KH * g.KW, rng);
    Tensor x = Tensor::from_vector(xv, {g.N, g.Cin, g.H, g.W}).set_requires_grad();
    Tensor w = Tensor::from_vector(wv, {g.Cout, g.Cg, g.KH, g.KW}).set_requires_grad();
    Tensor y = conv2d(x, w, c.opt);
    REQUIRE(y.shape() == Shape{g.N, g.Cout, g.OH, g.OW});
    CHECK(close_ratio(y.to_vector(), ref_forward(g, xv, wv), 1e-5, 1e-5) <= 1.0);

    auto dyv = away_from_zero(y.numel(), rng);
    y.backward(Tensor::from_vector(dyv, y.shape()));
    CHECK(close_ratio(x.grad().to_vector(), ref_backward_data(g, xv, wv, dyv), 1e-5, 1e-5) <= 1.0);
    CHECK(close_ratio(w.grad().to_vector(), ref_backward_weight(g, xv, dyv), 1e-5, 1e-5) <= 1.0);
  }
}

// Sizes that take the threaded, shifted-GEMM, oneDNN and depthwise paths.
std::vector<ConvCase> big_cases() {
  return {
      {"depthwise 3x3 dil 2 relu", 4, 8, 14, 14, 8, 3, 3, Conv2dOptions::same(1, 2, 2, 8)},
      {"depthwise 3x3 stride 2", 4, 8, 14, 14, 8, 3, 3, Conv2dOptions::same(2, 1, 1, 8)},
      {"dense 1x5", 4, 8, 14, 14, 8, 1, 5, opts(1, 1, 0, 0, 2, 2, 1, 1, 1, true)},
      {"pointwise", 4, 8, 14, 14, 8, 1, 1, Conv2dOptions::same(1, 0)},
      // More samples than weight-gradient chunks: chunks sum several samples.
      {"dense 3x3 batch 37", 37, 3, 5, 5, 4, 3, 3, Conv2dOptions::same(1, 1)},
      {"pointwise batch 37", 37, 3, 5, 5, 4, 1, 1, Conv2dOptions::same(1, 0)},
      {"depthwise batch 37", 37, 3, 5, 5, 3, 3, 3, Conv2dOptions::same(1, 1, 1, 3)},
      {"pointwise 40 -> 12 (GEMM path)", 4, 40, 7, 7, 12, 1, 1, Conv2dOptions::same(1, 0)},
      {"dense 3x3 64 channels", 2, 64, 7, 7, 64, 3, 3, Conv2dOptions::same(1, 1)},
  };
}

TEST_CASE("conv2d at MetaNAS-like sizes matches the reference (threaded paths)", "[conv]") {
  Rng rng(11);
  for (auto c : big_cases()) {
    c.opt.relu_input = true;
    INFO(c.name);
    const Geo g(c);
    auto xv = away_from_zero(g.N * g.Cin * g.H * g.W, rng);
    auto wv = away_from_zero(g.Cout * g.Cg * g.KH * g.KW, rng);
    Tensor x = Tensor::from_vector(xv, {g.N, g.Cin, g.H, g.W}).set_requires_grad();
    Tensor w = Tensor::from_vector(wv, {g.Cout, g.Cg, g.KH, g.KW}).set_requires_grad();
    Tensor y = conv2d(x, w, c.opt);
    CHECK(close_ratio(y.to_vector(), ref_forward(g, xv, wv), 1e-5, 1e-5) <= 1.0);
    auto dyv = away_from_zero(y.numel(), rng);
    y.backward(Tensor::from_vector(dyv, y.shape()));
    CHECK(close_ratio(x.grad().to_vector(), ref_backward_data(g, xv, wv, dyv), 1e-5, 1e-5) <= 1.0);
    CHECK(close_ratio(w.grad().to_vector(), ref_backward_weight(g, xv, dyv), 1e-4, 1e-5) <= 1.0);
    // Same inputs, same bits: no order-dependent reductions.
    Tensor x2 = x.detach().clone().set_requires_grad(), w2 = w.detach().clone().set_requires_grad();
    conv2d(x2, w2, c.opt).backward(Tensor::from_vector(dyv, y.shape()));
    CHECK(w2.grad().to_vector() == w.grad().to_vector());
    CHECK(x2.grad().to_vector() == x.grad().to_vector());
  }
}

TEST_CASE("conv2d finite-difference gradients for x and w", "[conv][gradcheck]") {
  Rng rng(3);
  for (const auto& c : cases()) {
    INFO(c.name);
    const Geo g(c);
    Tensor x = Tensor::from_vector(away_from_zero(g.N * g.Cin * g.H * g.W, rng), {g.N, g.Cin, g.H, g.W});
    Tensor w = Tensor::from_vector(away_from_zero(g.Cout * g.Cg * g.KH * g.KW, rng), {g.Cout, g.Cg, g.KH, g.KW});
    const Conv2dOptions o = c.opt;
    auto f = [o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], o); };
    metanas::testing::GradCheckOptions gopt;
    gopt.max_elements = 96;
    auto rx = grad_check(f, {x, w}, 0, gopt);
    auto rw = grad_check(f, {x, w}, 1, gopt);
    INFO("x: " << rx.message);
    INFO("w: " << rw.message);
    CHECK(rx.ok);
    CHECK(rw.ok);
  }
}

// Autograd's accumulate-into form (engine/src/ops/conv.cpp) hands these flags
// the pending gradient sums: the bits must be those of a fresh gradient added
// afterwards, so that form cannot change a run's results.
TEST_CASE("conv kernels accumulate into existing gradients: the reference, bitwise fresh + add", "[conv]") {
  Rng rng(6);
  std::vector<ConvCase> all = cases();
  for (const auto& c : big_cases()) all.push_back(c);
  for (const auto& c : all) {
    for (const bool relu : {false, true}) {
      ConvCase cc = c;
      cc.opt.relu_input = relu;
      INFO(c.name << (relu ? " relu" : ""));
      const Geo g(cc);
      const ConvGeom kg = kernel_geom(g);
      auto xv = away_from_zero(g.N * g.Cin * g.H * g.W, rng);
      auto wv = away_from_zero(g.Cout * g.Cg * g.KH * g.KW, rng);
      auto dyv = away_from_zero(g.N * g.Cout * g.OH * g.OW, rng);
      auto dx0 = away_from_zero(static_cast<int64_t>(xv.size()), rng);
      auto dw0 = away_from_zero(static_cast<int64_t>(wv.size()), rng);
      std::vector<float> dx = dx0, dw = dw0, fdx(xv.size()), fdw(wv.size());
      kernels::cpu::conv2d_backward_data(kg, dyv.data(), wv.data(), xv.data(), dx.data(), true);
      kernels::cpu::conv2d_backward_weight(kg, xv.data(), dyv.data(), dw.data(), true);
      kernels::cpu::conv2d_backward_data(kg, dyv.data(), wv.data(), xv.data(), fdx.data(), false);
      kernels::cpu::conv2d_backward_weight(kg, xv.data(), dyv.data(), fdw.data(), false);
      auto rdx = ref_backward_data(g, xv, wv, dyv);
      auto rdw = ref_backward_weight(g, xv, dyv);
      for (size_t i = 0; i < rdx.size(); ++i) rdx[i] += dx0[i];
      for (size_t i = 0; i < rdw.size(); ++i) rdw[i] += dw0[i];
      CHECK(close_ratio(dx, rdx, 1e-5, 1e-5) <= 1.0);
      CHECK(close_ratio(dw, rdw, 1e-4, 1e-5) <= 1.0);
      for (size_t i = 0; i < fdx.size(); ++i) fdx[i] = dx0[i] + fdx[i];
      for (size_t i = 0; i < fdw.size(); ++i) fdw[i] = dw0[i] + fdw[i];
      CHECK(dx == fdx);
      CHECK(dw == fdw);
    }
  }
}

TEST_CASE("conv2d's backward adds into a tensor's pending gradient sum", "[conv][autograd]") {
  // x feeds a pool and three convs (a MetaNAS state feeding an edge's ops):
  // the first conv's gradient is adopted as the sum, the next add into it.
  Rng rng(12);
  Tensor x = Tensor::randn({2, 4, 6, 6}, rng).set_requires_grad();
  std::vector<Tensor> ws;
  for (int i = 0; i < 3; ++i) ws.push_back(Tensor::randn({4, 4, 3, 3}, rng).set_requires_grad());
  auto loss = [&](const Tensor& in) {
    Conv2dOptions o = Conv2dOptions::same(1, 1);
    o.relu_input = true;
    Tensor y = avg_pool2d(in, 3, 1, 1);
    for (const Tensor& w : ws) y = add(y, conv2d(in, w, o));
    return sum(mul(y, y));
  };
  // A leaf with a gradient buffer (a ParamSet parameter's) is added into too.
  const std::vector<float> w0 = std::vector<float>(static_cast<size_t>(ws[0].numel()), 0.25f);
  ws[0].set_grad(Tensor::from_vector(w0, ws[0].shape()));
  const uint64_t before = into_accumulations_for_testing();
  loss(x).backward();
  // Two of the three convs and the pool (last in backward order) added into
  // x's sum, one conv into ws[0]'s gradient.
  CHECK(into_accumulations_for_testing() - before == 4);

  // Same gradients as finite differences of the whole graph.
  const std::vector<float> g = x.grad().to_vector();
  std::vector<float> xv = x.detach().to_vector();
  const float h = 1e-2f;
  for (int64_t i : {0, 17, 71, 143, 200, 287}) {
    std::vector<float> a = xv, b = xv;
    a[static_cast<size_t>(i)] += h;
    b[static_cast<size_t>(i)] -= h;
    NoGradGuard ng;
    const double fd = (loss(Tensor::from_vector(a, x.shape())).item() - loss(Tensor::from_vector(b, x.shape())).item()) / (2 * h);
    CHECK(std::abs(g[static_cast<size_t>(i)] - fd) <= 2e-2 * (1 + std::abs(fd)));
  }
}

TEST_CASE("conv2d only computes the gradients that are needed", "[conv]") {
  Rng rng(9);
  Tensor x = Tensor::randn({2, 3, 5, 5}, rng);
  Tensor w = Tensor::randn({4, 3, 3, 3}, rng).set_requires_grad();
  sum(conv2d(x, w, Conv2dOptions::same(1, 1))).backward();
  REQUIRE(w.grad().defined());
  REQUIRE_FALSE(x.grad().defined());
  {
    NoGradGuard ng;
    REQUIRE_FALSE(conv2d(x, w).requires_grad());
  }
}

TEST_CASE("conv_out_size", "[conv]") {
  REQUIRE(conv_out_size(28, 3, 1, 1, 1, 1) == 28);
  REQUIRE(conv_out_size(28, 3, 2, 1, 1, 1) == 14);
  REQUIRE(conv_out_size(28, 3, 1, 2, 2, 2) == 28);
  REQUIRE(conv_out_size(7, 3, 2, 2, 2, 2) == 4);
  REQUIRE(conv_out_size(28, 5, 1, 2, 2, 1) == 28);
  REQUIRE(conv_out_size(5, 1, 2, 0, 0, 1) == 3);
  REQUIRE_THROWS_AS(conv_out_size(2, 3, 1, 0, 0, 1), Error);
  REQUIRE_THROWS_AS(conv_out_size(5, 3, 0, 1, 1, 1), Error);
  REQUIRE_THROWS_AS(conv_out_size(5, 3, 1, -1, 1, 1), Error);
}

namespace {
std::string conv_error(const Tensor& x, const Tensor& w, const Conv2dOptions& o = {}) {
  try {
    conv2d(x, w, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("conv2d rejects bad inputs with clear errors", "[conv][errors]") {
  Tensor x = Tensor::zeros({2, 28, 8, 8});
  // Depthwise weight without groups.
  std::string e = conv_error(x, Tensor::zeros({28, 1, 3, 3}), Conv2dOptions::same(1, 1));
  CHECK(has(e, "conv2d: weight [28, 1, 3, 3] needs input channels/groups = 1"));
  CHECK(has(e, "[2, 28, 8, 8]"));
  CHECK(has(e, "conv2d"));
  e = conv_error(x, Tensor::zeros({28, 3, 3}));
  CHECK(has(e, "weight"));
  CHECK(has(e, "4-D"));
  e = conv_error(Tensor::zeros({28, 8, 8}), Tensor::zeros({28, 28, 3, 3}));
  CHECK(has(e, "input x"));
  e = conv_error(x, Tensor::zeros({30, 7, 3, 3}), Conv2dOptions::same(1, 1, 1, 4));
  CHECK(has(e, "not divisible by groups 4"));
  e = conv_error(x, Tensor::zeros({28, 28, 9, 9}));
  CHECK(has(e, "does not fit"));
  CHECK(has(e, "[28, 28, 9, 9]"));
  e = conv_error(x, Tensor::zeros({28, 28, 3, 3}), Conv2dOptions::same(0, 1));
  CHECK(has(e, "strides"));
  e = conv_error(x, Tensor::zeros({28, 28, 3, 3}), Conv2dOptions::same(1, -1));
  CHECK(has(e, "padding"));
  e = conv_error(x, Tensor::zeros({28, 28, 3, 3}), Conv2dOptions::same(1, 1, 0));
  CHECK(has(e, "dilation"));
  e = conv_error(Tensor::from_ints(std::vector<int32_t>(2 * 28 * 64), {2, 28, 8, 8}),
                 Tensor::zeros({28, 28, 3, 3}));
  CHECK(has(e, "float32"));
  e = conv_error(x, Tensor());
  CHECK(has(e, "undefined"));
}

// ---- the oneDNN path (the default where its plugin loads: kernels/cpu/conv_library.cpp, plugin kernels/cpu/dnnl) ----
// The whole engine suite runs under it by default and once more under
// METANAS_CPU_CONV=own (a ctest entry of tests/CMakeLists.txt); these cases check what that cannot: which
// cases oneDNN takes, its thread-count independence at batch sizes with
// several chunks, and the errors of the setting.
namespace {
namespace kc = metanas::kernels::cpu;

// Selects a convolution library for a scope and restores the previous one.
struct ConvLibrary {
  std::string saved = kc::cpu_conv_library();
  explicit ConvLibrary(const std::string& name) { kc::set_cpu_conv_library(name); }
  ~ConvLibrary() { kc::set_cpu_conv_library(saved); }
};

struct Passes {
  std::vector<float> y, dx, dw;
  // Zero outputs; dx and dw start at fixed values the kernels accumulate onto.
  Passes(const ConvGeom& k, size_t nx, size_t nw)
      : y(static_cast<size_t>(k.N * k.Cout * k.OH * k.OW), 0.f), dx(nx, 0.25f), dw(nw, -0.5f) {}
};

// The three kernels (dx and dw accumulate onto fixed start values), on
// `threads` OpenMP threads; `taken` = which of them the oneDNN path took.
Passes run_kernels(const ConvGeom& k, const std::vector<float>& x, const std::vector<float>& w,
                   const std::vector<float>& dy, int threads, bool taken[3]) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  Passes p(k, x.size(), w.size());
  taken[0] = kc::dnnl_conv_forward(k, x.data(), w.data(), p.y.data());
  if (!taken[0]) kc::conv2d_forward(k, x.data(), w.data(), p.y.data());
  taken[1] = kc::dnnl_conv_backward_data(k, dy.data(), w.data(), x.data(), p.dx.data(), true);
  if (!taken[1]) kc::conv2d_backward_data(k, dy.data(), w.data(), x.data(), p.dx.data(), true);
  taken[2] = kc::dnnl_conv_backward_weight(k, x.data(), dy.data(), p.dw.data(), true);
  if (!taken[2]) kc::conv2d_backward_weight(k, x.data(), dy.data(), p.dw.data(), true);
  omp_set_num_threads(saved);
  return p;
}
// A case's geometry and random inputs (relu input when its name says "relu").
struct CaseData {
  Geo g;
  ConvGeom k;
  std::vector<float> x, w, dy;
  CaseData(ConvCase c, Rng& rng) : g(with_named_relu(c)), k(kernel_geom(g)) {
    x = away_from_zero(g.N * g.Cin * g.H * g.W, rng);
    w = away_from_zero(g.Cout * g.Cg * g.KH * g.KW, rng);
    dy = away_from_zero(g.N * g.Cout * g.OH * g.OW, rng);
  }
  static ConvCase with_named_relu(ConvCase c) {
    if (c.name.find("relu") != std::string::npos) c.opt.relu_input = true;
    return c;
  }
};

// The three passes of run_kernels / run_table against the double references.
void check_passes(const Geo& g, const Passes& one, const std::vector<float>& xv, const std::vector<float>& wv,
                  const std::vector<float>& dyv) {
  auto rdx = ref_backward_data(g, xv, wv, dyv);
  auto rdw = ref_backward_weight(g, xv, dyv);
  for (auto& v : rdx) v += 0.25;
  for (auto& v : rdw) v -= 0.5;
  CHECK(close_ratio(one.y, ref_forward(g, xv, wv), 1e-5, 1e-5) <= 1.0);
  CHECK(close_ratio(one.dx, rdx, 1e-5, 1e-5) <= 1.0);
  CHECK(close_ratio(one.dw, rdw, 1e-4, 1e-5) <= 1.0);
}
}  // namespace

TEST_CASE("oneDNN convolutions: the cases it takes match the reference, bitwise for any thread count",
          "[conv][dnnl]") {
  if (!kc::cpu_conv_library_available("dnnl")) {
    WARN("this build has no oneDNN (libdnnl-dev): nothing to check");
    return;
  }
  ConvLibrary lib("dnnl");
  Rng rng(23);
  struct Expect {
    ConvCase c;
    bool fwd, bwd_data, bwd_weight;  // taken by oneDNN
  };
  const std::vector<Expect> cases = {
      {{"dense 3x3, 21 samples (8 chunks of 2 and 3)", 21, 16, 7, 7, 16, 3, 3, Conv2dOptions::same(1, 1)},
       true, true, true},
      {{"dense 1x5 relu asymmetric pad", 20, 12, 14, 14, 12, 1, 5, opts(1, 1, 0, 0, 2, 2, 1, 1, 1, true)},
       true, true, true},
      {{"dense 5x1", 5, 8, 9, 9, 8, 5, 1, opts(1, 1, 2, 2, 0, 0, 1, 1, 1, false)}, true, true, true},
      {{"dense 3x3 stride 2 relu", 9, 6, 9, 9, 10, 3, 3, Conv2dOptions::same(2, 1)}, true, true, true},
      {{"depthwise 3x3 relu: forward only", 20, 12, 7, 7, 12, 3, 3, Conv2dOptions::same(1, 1, 1, 12)},
       true, false, false},
      {{"depthwise 3x3 relu at 14x14, stride 1: the engine's", 20, 12, 14, 14, 12, 3, 3,
        Conv2dOptions::same(1, 1, 1, 12)}, false, false, false},
      {{"depthwise 3x3 stride 2", 7, 8, 9, 9, 8, 3, 3, Conv2dOptions::same(2, 1, 1, 8)}, true, false, false},
      {{"depthwise 3x3 dilation 2: forward only", 6, 8, 9, 9, 8, 3, 3, Conv2dOptions::same(1, 2, 2, 8)},
       true, false, false},
      {{"pointwise 1x1: the engine's GEMM", 6, 8, 7, 7, 8, 1, 1, Conv2dOptions::same(1, 0)}, false, false, false},
      {{"dense 1x5 relu, 16 channels at 28x28: the engine's", 3, 16, 28, 28, 16, 1, 5,
        opts(1, 1, 0, 0, 2, 2, 1, 1, 1, true)}, false, false, false},
      {{"dense 1x5 relu stride 2, 16 channels at 28x28: oneDNN forward, the engine's backward", 3, 16, 28, 28,
        16, 1, 5, opts(2, 2, 0, 0, 2, 2, 1, 1, 1, true)}, true, false, false},
      {{"dense 1x5, 16 channels at 28x28, plain input: oneDNN", 3, 16, 28, 28, 16, 1, 5,
        opts(1, 1, 0, 0, 2, 2, 1, 1, 1, false)}, true, true, true},
      {{"depthwise 3x3 at 28x28, stride 1: the engine's", 3, 8, 28, 28, 8, 3, 3, Conv2dOptions::same(1, 1, 1, 8)},
       false, false, false},
      {{"depthwise 3x3 at 28x28, stride 2: forward only", 3, 8, 28, 28, 8, 3, 3, Conv2dOptions::same(2, 1, 1, 8)},
       true, false, false},
      {{"grouped (not depthwise): the engine's", 4, 8, 7, 7, 8, 3, 3, Conv2dOptions::same(1, 1, 1, 2)},
       false, false, false},
  };
  for (auto e : cases) {
    INFO(e.c.name);
    const CaseData d(e.c, rng);
    const auto& [g, k, xv, wv, dyv] = d;
    bool taken[3];
    const Passes one = run_kernels(k, xv, wv, dyv, 1, taken);
    CHECK(taken[0] == e.fwd);
    CHECK(taken[1] == e.bwd_data);
    CHECK(taken[2] == e.bwd_weight);
    check_passes(g, one, xv, wv, dyv);
    for (int threads : {2, 3}) {
      INFO(threads << " threads");
      bool t2[3];
      const Passes p = run_kernels(k, xv, wv, dyv, threads, t2);
      CHECK(p.y == one.y);
      CHECK(p.dx == one.dx);
      CHECK(p.dw == one.dw);
    }
  }
}

TEST_CASE("oneDNN convolutions: on by default where the plugin loads, and bad settings are clear errors",
          "[conv][dnnl]") {
  {
    // auto (the default): oneDNN exactly when its plugin can be loaded, else the engine's kernels.
    ConvLibrary lib("auto");
    CHECK(kc::cpu_conv_library() == (kc::cpu_conv_library_available("dnnl") ? "dnnl" : "own"));
    ConvLibrary unset("");
    CHECK(kc::cpu_conv_library() == (kc::cpu_conv_library_available("dnnl") ? "dnnl" : "own"));
  }
  // Whatever METANAS_CPU_CONV this process runs under, "own" turns oneDNN off.
  {
    ConvLibrary lib("own");
    CHECK(kc::cpu_conv_library() == "own");
    std::vector<float> x(2 * 3 * 5 * 5, 1.f), w(4 * 3 * 3 * 3, 1.f), y(2 * 4 * 5 * 5);
    ConvGeom k;
    k.N = 2, k.Cin = 3, k.H = k.W = 5, k.Cout = 4, k.KH = k.KW = 3;
    k.pad_top = k.pad_bottom = k.pad_left = k.pad_right = 1;
    k.OH = k.OW = 5;
    CHECK_FALSE(kc::dnnl_conv_forward(k, x.data(), w.data(), y.data()));
  }
  std::string e;
  try {
    kc::set_cpu_conv_library("cudnn");
  } catch (const Error& err) {
    e = err.what();
  }
  CHECK(has(e, "unknown convolution library 'cudnn' (auto | own | dnnl)"));
  CHECK(kc::cpu_conv_library_available("own"));
  if (!kc::cpu_conv_library_available("dnnl")) {
    e.clear();
    try {
      kc::set_cpu_conv_library("dnnl");
    } catch (const Error& err) {
      e = err.what();
    }
    CHECK(has(e, "oneDNN plugin libmetanas_dnnl.so could not be loaded"));
  }
}

// ---- the shifted-GEMM path (kernels/cpu/conv_shifted.cpp): stride-1 dense convs in AVX2 builds ----
// Through the active kernel table (the ISA variant this process runs), so the
// baseline ctest entry checks that it declines and the default entry that it
// takes its cases; which cases run it is read from its call counter.
namespace {

struct ShiftedSwitch {
  bool saved = kc::shifted_conv_enabled();
  explicit ShiftedSwitch(bool on) { kc::set_shifted_conv_enabled(on); }
  ~ShiftedSwitch() { kc::set_shifted_conv_enabled(saved); }
};

// The three kernels on `threads` threads (dx, dw accumulate onto fixed start
// values); `calls` = how many of them the shifted path took.
Passes run_table(const ConvGeom& k, const std::vector<float>& x, const std::vector<float>& w,
                 const std::vector<float>& dy, int threads, int64_t& calls) {
  const kc::KernelTable& t = kc::active_kernel_table();
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  Passes p(k, x.size(), w.size());
  const int64_t before = kc::shifted_conv_calls();
  t.conv2d_forward(k, x.data(), w.data(), p.y.data());
  t.conv2d_backward_data(k, dy.data(), w.data(), x.data(), p.dx.data(), true);
  t.conv2d_backward_weight(k, x.data(), dy.data(), p.dw.data(), true);
  calls = kc::shifted_conv_calls() - before;
  omp_set_num_threads(saved);
  return p;
}

}  // namespace

TEST_CASE("shifted-GEMM convolutions: the cases they take match the reference, bitwise for any thread count",
          "[conv][shifted]") {
  const bool avx2 = metanas::cpu_isa() != metanas::CpuIsa::Baseline;
  Rng rng(31);
  struct Expect {
    ConvCase c;
    int calls;  // of the 3 passes, how many it takes in an AVX2 variant
  };
  const std::vector<Expect> cases = {
      {{"MetaNAS 1x5 relu, 28 channels at 28x28, batch 20", 20, 28, 28, 28, 28, 1, 5,
        opts(1, 1, 0, 0, 2, 2, 1, 1, 1, true)}, 3},
      {{"MetaNAS 5x1, 28 channels at 14x14", 6, 28, 14, 14, 28, 5, 1, opts(1, 1, 2, 2, 0, 0, 1, 1, 1, false)}, 3},
      {{"3x3 dilation 2 relu at 9x9 (output count not a multiple of 8)", 3, 8, 9, 9, 8, 3, 3,
        Conv2dOptions::same(1, 2, 2)}, 3},
      {{"3x3 at 7x7: declined (oneDNN is faster on so few outputs)", 3, 8, 7, 7, 8, 3, 3, Conv2dOptions::same(1, 1)},
       0},
      {{"1x5 at 7x7", 3, 8, 7, 7, 8, 1, 5, opts(1, 1, 0, 0, 2, 2, 1, 1, 1, false)}, 3},
      {{"3x3, 7 -> 5 channels (channel tails) on 9x11", 4, 7, 9, 11, 5, 3, 3, Conv2dOptions::same(1, 1)}, 3},
      {{"3x3 asymmetric padding within the reach", 2, 4, 10, 8, 6, 3, 3, opts(1, 1, 0, 2, 2, 1, 1, 1, 1, true)},
       3},
      {{"3x3 unpadded (valid)", 3, 5, 10, 10, 4, 3, 3, opts(1, 1, 0, 0, 0, 0, 1, 1, 1, false)}, 3},
      {{"2x3 kernel, dilation (2, 1)", 2, 3, 9, 8, 4, 2, 3, opts(1, 1, 1, 1, 1, 1, 2, 1, 1, true)}, 3},
      {{"single input channel (a stem)", 5, 1, 12, 12, 16, 3, 3, Conv2dOptions::same(1, 1)}, 3},
      // 2 samples on up to 3 threads: im2col + OpenBLAS (under METANAS_CPU_CONV=own)
      // once let OpenBLAS thread the GEMMs of fewer samples than threads, and
      // its bits then depended on the thread count.
      {{"64 -> 64 channels: declined (oneDNN / OpenBLAS are faster)", 2, 64, 7, 7, 64, 3, 3,
        Conv2dOptions::same(1, 1)}, 0},
      {{"1x1, 28 channels at 28x28", 4, 28, 28, 28, 28, 1, 1, Conv2dOptions::same(1, 0)}, 3},
      {{"1x1 relu at 14x14 (4 outputs past the last block of 8)", 5, 12, 14, 14, 9, 1, 1, Conv2dOptions::same(1, 0)},
       3},
      {{"1x1 at 7x7: the weight gradient stays with OpenBLAS", 4, 8, 7, 7, 8, 1, 1, Conv2dOptions::same(1, 0)}, 2},
      {{"1x1 on a 2x3 plane (fewer outputs than a block)", 3, 5, 2, 3, 6, 1, 1, Conv2dOptions::same(1, 0)}, 2},
      {{"1x1 relu 84 -> 28 (MetaNAS preprocessing): backward-data only", 3, 84, 14, 14, 28, 1, 1,
        Conv2dOptions::same(1, 0)}, 1},
      {{"1x1 padded: declined", 2, 4, 5, 5, 4, 1, 1, Conv2dOptions::same(1, 1)}, 0},
      {{"stride 2: declined", 3, 6, 9, 9, 6, 3, 3, Conv2dOptions::same(2, 1)}, 0},
      {{"grouped: declined", 2, 8, 7, 7, 8, 3, 3, Conv2dOptions::same(1, 1, 1, 2)}, 0},
      {{"depthwise: declined", 2, 8, 7, 7, 8, 3, 3, Conv2dOptions::same(1, 1, 1, 8)}, 0},
      {{"padding beyond the kernel's reach: declined", 2, 3, 5, 5, 4, 3, 3, opts(1, 1, 3, 0, 1, 1, 1, 1, 1, false)},
       0},
  };
  for (auto e : cases) {
    INFO(e.c.name);
    const CaseData d(e.c, rng);
    const auto& [g, k, xv, wv, dyv] = d;
    int64_t calls = 0;
    const Passes one = run_table(k, xv, wv, dyv, 1, calls);
    CHECK(calls == (avx2 ? e.calls : 0));
    check_passes(g, one, xv, wv, dyv);
    for (int threads : {2, 3}) {
      INFO(threads << " threads");
      int64_t c2 = 0;
      const Passes p = run_table(k, xv, wv, dyv, threads, c2);
      CHECK(c2 == calls);
      CHECK(p.y == one.y);
      CHECK(p.dx == one.dx);
      CHECK(p.dw == one.dw);
    }
    if (calls > 0) {
      // Off: the old paths run instead, to the same values within rounding.
      ShiftedSwitch off(false);
      int64_t c0 = 0;
      const Passes old = run_table(k, xv, wv, dyv, 1, c0);
      CHECK(c0 == 0);
      CHECK(close_ratio(old.y, std::vector<double>(one.y.begin(), one.y.end()), 1e-5, 1e-5) <= 1.0);
      CHECK(close_ratio(old.dw, std::vector<double>(one.dw.begin(), one.dw.end()), 1e-4, 1e-5) <= 1.0);
    }
  }
}
