// batch_norm: training and eval forward against naive double references,
// PyTorch running-statistics update, analytic and finite-difference gradients
// (affine and non-affine, [N, C, H, W] and [N, C]), kernel accumulate mode, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::close_ratio;
using metanas::testing::grad_check;

namespace {

struct Stats {
  std::vector<double> mean, var_biased, var_unbiased;
};

// x viewed as [N, C, HW].
Stats ref_stats(const std::vector<float>& x, int64_t N, int64_t C, int64_t HW) {
  Stats s;
  const double M = static_cast<double>(N * HW);
  for (int64_t c = 0; c < C; ++c) {
    double m = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) m += x[(n * C + c) * HW + i];
    m /= M;
    double q = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) q += (x[(n * C + c) * HW + i] - m) * (x[(n * C + c) * HW + i] - m);
    s.mean.push_back(m);
    s.var_biased.push_back(q / M);
    s.var_unbiased.push_back(q / (M - 1));
  }
  return s;
}

std::vector<double> ref_normalise(const std::vector<float>& x, const std::vector<double>& mean,
                                  const std::vector<double>& var, const std::vector<float>& gamma,
                                  const std::vector<float>& beta, int64_t N, int64_t C, int64_t HW,
                                  double eps) {
  std::vector<double> y(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t j = (n * C + c) * HW + i;
        const double g = gamma.empty() ? 1.0 : gamma[c], b = beta.empty() ? 0.0 : beta[c];
        y[j] = (x[j] - mean[c]) / std::sqrt(var[c] + eps) * g + b;
      }
  return y;
}

std::vector<float> randv(int64_t n, Rng& rng, float scale = 1.f, float shift = 0.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) e = shift + scale * rng.normal();
  return v;
}

struct BnCase {
  std::string name;
  Shape shape;
  bool affine;
};

const std::vector<BnCase> kCases = {
    {"4-D affine", {3, 4, 3, 5}, true},
    {"4-D non-affine", {3, 4, 3, 5}, false},
    {"2-D affine", {6, 5}, true},
    {"2-D non-affine", {6, 5}, false},
};

int64_t hw_of(const Shape& s) { return s.ndim() == 4 ? s[2] * s[3] : 1; }

}  // namespace

TEST_CASE("batch_norm training forward and running statistics match PyTorch semantics", "[batch_norm]") {
  Rng rng(1);
  for (const auto& c : kCases) {
    INFO(c.name);
    const int64_t N = c.shape[0], C = c.shape[1], HW = hw_of(c.shape);
    auto xv = randv(c.shape.numel(), rng, 2.f, 0.5f);
    std::vector<float> gv, bv;
    Tensor gamma, beta;
    if (c.affine) {
      gv = randv(C, rng, 0.5f, 1.f);
      bv = randv(C, rng);
      gamma = Tensor::from_vector(gv, {C});
      beta = Tensor::from_vector(bv, {C});
    }
    std::vector<float> rm0 = randv(C, rng), rv0(static_cast<size_t>(C));
    for (auto& v : rv0) v = 0.5f + rng.uniform();
    Tensor rm = Tensor::from_vector(rm0, {C}), rv = Tensor::from_vector(rv0, {C});
    BatchNormOptions o;
    o.momentum = 0.3f;
    o.eps = 1e-3f;
    Tensor y = batch_norm(Tensor::from_vector(xv, c.shape), gamma, beta, rm, rv, o);
    REQUIRE(y.shape() == c.shape);
    const Stats s = ref_stats(xv, N, C, HW);
    CHECK(close_ratio(y.to_vector(), ref_normalise(xv, s.mean, s.var_biased, gv, bv, N, C, HW, o.eps),
                      1e-5, 1e-5) <= 1.0);
    std::vector<double> erm(static_cast<size_t>(C)), erv(static_cast<size_t>(C));
    for (int64_t k = 0; k < C; ++k) {
      erm[k] = 0.7 * rm0[k] + 0.3 * s.mean[k];
      erv[k] = 0.7 * rv0[k] + 0.3 * s.var_unbiased[k];
    }
    CHECK(close_ratio(rm.to_vector(), erm, 1e-6, 1e-5) <= 1.0);
    CHECK(close_ratio(rv.to_vector(), erv, 1e-6, 1e-5) <= 1.0);
  }
}

TEST_CASE("batch_norm statistics stay accurate for a large mean", "[batch_norm]") {
  Rng rng(2);
  const int64_t N = 8, C = 3, HW = 49;
  auto xv = randv(N * C * HW, rng, 0.01f, 1000.f);  // std 0.01 around 1000
  Tensor y = batch_norm(Tensor::from_vector(xv, {N, C, 7, 7}), Tensor(), Tensor(), Tensor(), Tensor());
  const Stats s = ref_stats(xv, N, C, HW);
  // Inputs are float32 near 1000 (ulp 6e-5), so compare at the resolution of x itself.
  CHECK(close_ratio(y.to_vector(), ref_normalise(xv, s.mean, s.var_biased, {}, {}, N, C, HW, 1e-5),
                    2e-2, 1e-2) <= 1.0);
}

TEST_CASE("batch_norm eval forward uses the running statistics and leaves them alone", "[batch_norm]") {
  Rng rng(3);
  for (const auto& c : kCases) {
    INFO(c.name);
    const int64_t N = c.shape[0], C = c.shape[1], HW = hw_of(c.shape);
    auto xv = randv(c.shape.numel(), rng);
    std::vector<float> gv, bv;
    Tensor gamma, beta;
    if (c.affine) {
      gv = randv(C, rng, 0.5f, 1.f);
      bv = randv(C, rng);
      gamma = Tensor::from_vector(gv, {C});
      beta = Tensor::from_vector(bv, {C});
    }
    auto rm0 = randv(C, rng);
    std::vector<float> rv0(static_cast<size_t>(C));
    for (auto& v : rv0) v = 0.5f + rng.uniform();
    Tensor rm = Tensor::from_vector(rm0, {C}), rv = Tensor::from_vector(rv0, {C});
    BatchNormOptions o;
    o.training = false;
    Tensor y = batch_norm(Tensor::from_vector(xv, c.shape), gamma, beta, rm, rv, o);
    std::vector<double> m(rm0.begin(), rm0.end()), v(rv0.begin(), rv0.end());
    CHECK(close_ratio(y.to_vector(), ref_normalise(xv, m, v, gv, bv, N, C, HW, o.eps), 1e-5, 1e-5) <= 1.0);
    CHECK(rm.to_vector() == rm0);
    CHECK(rv.to_vector() == rv0);
  }
}

TEST_CASE("batch_norm training backward matches the analytic double formula", "[batch_norm]") {
  Rng rng(4);
  for (const auto& c : kCases) {
    INFO(c.name);
    const int64_t N = c.shape[0], C = c.shape[1], HW = hw_of(c.shape);
    const double M = static_cast<double>(N * HW), eps = 1e-5;
    auto xv = randv(c.shape.numel(), rng);
    auto dyv = randv(c.shape.numel(), rng);
    std::vector<float> gv(static_cast<size_t>(C), 1.f);
    Tensor x = Tensor::from_vector(xv, c.shape).set_requires_grad(), gamma, beta;
    if (c.affine) {
      gv = randv(C, rng, 0.5f, 1.f);
      gamma = Tensor::from_vector(gv, {C}).set_requires_grad();
      beta = Tensor::from_vector(randv(C, rng), {C}).set_requires_grad();
    }
    batch_norm(x, gamma, beta, Tensor(), Tensor()).backward(Tensor::from_vector(dyv, c.shape));
    const Stats s = ref_stats(xv, N, C, HW);
    std::vector<double> dx(xv.size()), dg(static_cast<size_t>(C), 0.0), db(static_cast<size_t>(C), 0.0);
    for (int64_t k = 0; k < C; ++k) {
      const double is = 1.0 / std::sqrt(s.var_biased[k] + eps);
      double sdy = 0, sdyxh = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          const int64_t j = (n * C + k) * HW + i;
          sdy += dyv[j];
          sdyxh += dyv[j] * (xv[j] - s.mean[k]) * is;
        }
      dg[k] = sdyxh;
      db[k] = sdy;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          const int64_t j = (n * C + k) * HW + i;
          const double xh = (xv[j] - s.mean[k]) * is;
          dx[j] = gv[k] * is * (dyv[j] - sdy / M - xh * sdyxh / M);
        }
    }
    CHECK(close_ratio(x.grad().to_vector(), dx, 1e-5, 1e-4) <= 1.0);
    if (c.affine) {
      CHECK(close_ratio(gamma.grad().to_vector(), dg, 1e-5, 1e-5) <= 1.0);
      CHECK(close_ratio(beta.grad().to_vector(), db, 1e-5, 1e-5) <= 1.0);
    }
  }
}

TEST_CASE("batch_norm finite-difference gradients in train and eval mode", "[batch_norm][gradcheck]") {
  Rng rng(5);
  for (bool training : {true, false}) {
    for (const auto& c : kCases) {
      INFO(c.name << (training ? " train" : " eval"));
      const int64_t C = c.shape[1];
      Tensor x = Tensor::from_vector(randv(c.shape.numel(), rng), c.shape);
      Tensor gamma = c.affine ? Tensor::from_vector(randv(C, rng, 0.5f, 1.f), {C}) : Tensor();
      Tensor beta = c.affine ? Tensor::from_vector(randv(C, rng), {C}) : Tensor();
      std::vector<float> rvv(static_cast<size_t>(C));
      for (auto& v : rvv) v = 0.5f + rng.uniform();
      const Tensor rm = Tensor::from_vector(randv(C, rng), {C}), rv = Tensor::from_vector(rvv, {C});
      BatchNormOptions o;
      o.training = training;
      // Fresh running-stat copies per call: a training forward updates them.
      auto f = [rm, rv, o](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[1], in[2], rm.clone(), rv.clone(), o);
      };
      const int inputs = c.affine ? 3 : 1;
      for (int which = 0; which < inputs; ++which) {
        auto r = grad_check(f, {x, gamma, beta}, which);
        INFO("input " << which << ": " << r.message);
        CHECK(r.ok);
      }
    }
  }
}

TEST_CASE("batch_norm kernels accumulate into existing gradients when asked", "[batch_norm]") {
  Rng rng(6);
  const int64_t N = 3, C = 4, HW = 10, n = N * C * HW;
  auto x = randv(n, rng), dy = randv(n, rng), gamma = randv(C, rng, 0.5f, 1.f);
  std::vector<float> y(static_cast<size_t>(n)), mean(static_cast<size_t>(C)), invstd(static_cast<size_t>(C));
  kernels::cpu::batch_norm_forward_train(x.data(), gamma.data(), nullptr, y.data(), mean.data(),
                                         invstd.data(), nullptr, nullptr, N, C, HW, 1e-5f, 0.1f);
  auto rm = randv(C, rng);
  std::vector<float> rv(static_cast<size_t>(C), 0.8f);
  for (int mode = 0; mode < 2; ++mode) {
    INFO((mode == 0 ? "train" : "eval"));
    auto run = [&](std::vector<float>& dx, std::vector<float>& dg, std::vector<float>& db, bool acc) {
      if (mode == 0)
        kernels::cpu::batch_norm_backward(dy.data(), x.data(), mean.data(), invstd.data(), gamma.data(),
                                          dx.data(), dg.data(), db.data(), N, C, HW, acc);
      else
        kernels::cpu::batch_norm_backward_eval(dy.data(), x.data(), gamma.data(), rm.data(), rv.data(),
                                               dx.data(), dg.data(), db.data(), N, C, HW, 1e-5f, acc);
    };
    std::vector<float> fdx(static_cast<size_t>(n)), fdg(static_cast<size_t>(C)), fdb(static_cast<size_t>(C));
    run(fdx, fdg, fdb, false);
    auto bdx = randv(n, rng), bdg = randv(C, rng), bdb = randv(C, rng);
    std::vector<float> adx = bdx, adg = bdg, adb = bdb;
    run(adx, adg, adb, true);
    auto plus = [](const std::vector<float>& a, const std::vector<float>& b) {
      std::vector<double> r(a.size());
      for (size_t i = 0; i < a.size(); ++i) r[i] = static_cast<double>(a[i]) + b[i];
      return r;
    };
    CHECK(close_ratio(adx, plus(bdx, fdx), 1e-6, 1e-6) <= 1.0);
    CHECK(close_ratio(adg, plus(bdg, fdg), 1e-6, 1e-6) <= 1.0);
    CHECK(close_ratio(adb, plus(bdb, fdb), 1e-6, 1e-6) <= 1.0);
  }
}

TEST_CASE("batch_norm running statistics are buffers outside autograd", "[batch_norm]") {
  Rng rng(7);
  Tensor x = Tensor::from_vector(randv(2 * 3 * 4, rng), {2, 3, 2, 2}).set_requires_grad();
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv);
  REQUIRE_FALSE(rm.requires_grad());
  REQUIRE(rm.to_vector() != std::vector<float>(3, 0.f));
  sum(y).backward();
  REQUIRE(x.grad().defined());
  // Under no_grad the running statistics still update (a forward pass in training mode).
  const auto before = rm.to_vector();
  {
    NoGradGuard ng;
    batch_norm(add_scalar(x, 1.f), Tensor(), Tensor(), rm, rv);
  }
  REQUIRE(rm.to_vector() != before);
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

TEST_CASE("batch_norm rejects bad inputs with clear errors", "[batch_norm][errors]") {
  Tensor x = Tensor::zeros({2, 4, 3, 3});
  std::string e = err([&] { batch_norm(x, Tensor::ones({3}), Tensor(), Tensor(), Tensor()); });
  CHECK(has(e, "batch_norm: gamma must be [4]"));
  CHECK(has(e, "[2, 4, 3, 3]"));
  e = err([&] { batch_norm(x, Tensor(), Tensor::zeros({4, 1}), Tensor(), Tensor()); });
  CHECK(has(e, "beta must be [4]"));
  e = err([&] { batch_norm(Tensor::zeros({2, 4, 3}), Tensor(), Tensor(), Tensor(), Tensor()); });
  CHECK(has(e, "[N, C, H, W] or [N, C]"));
  e = err([&] { batch_norm(x, Tensor(), Tensor(), Tensor::zeros({4}), Tensor()); });
  CHECK(has(e, "running_mean and running_var"));
  e = err([&] { batch_norm(x, Tensor(), Tensor(), Tensor::zeros({4}), Tensor::ones({5})); });
  CHECK(has(e, "running_var must be [4]"));
  BatchNormOptions eval;
  eval.training = false;
  e = err([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), eval); });
  CHECK(has(e, "eval mode"));
  e = err([&] { batch_norm(Tensor::zeros({1, 4}), Tensor(), Tensor(), Tensor(), Tensor()); });
  CHECK(has(e, "more than one value per channel"));
  e = err([&] { batch_norm(Tensor::from_ints({1, 2, 3, 4}, {2, 2}), Tensor(), Tensor(), Tensor(), Tensor()); });
  CHECK(has(e, "float32"));
}
