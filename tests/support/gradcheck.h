// Central finite-difference gradient checks for engine ops.
//
// The scalar probed is L = sum_i R_i * f(inputs)_i with a fixed random R, so
// every output element matters. L is accumulated in double on the host. Each
// checked element's error is |analytic - numeric| / max(|numeric|, floor),
// floor = floor_frac * max_j |numeric_j|, and the check passes when the worst
// error is below tol. With the defaults a backward off by 1% on any element
// whose gradient is at least 10% of the largest fails (see the sensitivity
// test in tests/engine/gradcheck_test.cpp).
#pragma once
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "metanas/engine/autograd.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"

namespace metanas::testing {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradCheckOptions {
  double eps = 1e-2;          // perturbation (inputs are float32)
  double tol = 3e-3;          // max scaled error
  double floor_frac = 0.1;    // errors are scaled by max(|num|, floor_frac * max|num|)
  int max_elements = 256;     // elements checked per input (spread evenly when larger)
  uint64_t seed = 12345;
};

struct GradCheckResult {
  bool ok = true;
  double worst = 0;           // worst scaled error
  int64_t worst_index = -1;
  double analytic = 0, numeric = 0;
  std::string message;
};

inline double probe_loss(const Tensor& y, const std::vector<double>& R) {
  std::vector<float> v = y.to_vector();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += R[i] * static_cast<double>(v[i]);
  return s;
}

// Analytic gradient of L w.r.t. inputs[which] via backward().
inline std::vector<float> analytic_grad(const OpFn& f, std::vector<Tensor> inputs, int which,
                                        const std::vector<double>& R) {
  std::vector<Tensor> leaves;
  for (auto& t : inputs) {
    Tensor leaf = t.defined() ? t.clone() : Tensor();
    if (leaf.defined() && leaf.dtype() == DType::F32) leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }
  Tensor y = f(leaves);
  std::vector<float> r(R.begin(), R.end());
  Tensor gy = Tensor::from_vector(r, y.shape(), y.device());
  y.backward(gy);
  Tensor g = leaves[which].grad();
  if (!g.defined()) return std::vector<float>(static_cast<size_t>(leaves[which].numel()), 0.f);
  return g.to_vector();
}

inline GradCheckResult grad_check(const OpFn& f, const std::vector<Tensor>& inputs, int which,
                                  const GradCheckOptions& opt = {}) {
  GradCheckResult res;
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = f(inputs);
  }
  Rng rng(opt.seed);
  std::vector<double> R(static_cast<size_t>(y0.numel()));
  for (auto& r : R) r = rng.uniform_double() * 2.0 - 1.0;
  std::vector<float> ana = analytic_grad(f, inputs, which, R);

  const int64_t n = inputs[which].numel();
  const int64_t stride = n > opt.max_elements ? (n + opt.max_elements - 1) / opt.max_elements : 1;
  std::vector<float> base = inputs[which].to_vector();
  std::vector<int64_t> idx;
  std::vector<double> num;
  for (int64_t i = 0; i < n; i += stride) {
    std::vector<Tensor> in = inputs;
    std::vector<float> v = base;
    v[i] = static_cast<float>(base[i] + opt.eps);
    in[which] = Tensor::from_vector(v, inputs[which].shape(), inputs[which].device());
    double lp, lm;
    {
      NoGradGuard ng;
      lp = probe_loss(f(in), R);
      v[i] = static_cast<float>(base[i] - opt.eps);
      in[which] = Tensor::from_vector(v, inputs[which].shape(), inputs[which].device());
      lm = probe_loss(f(in), R);
    }
    // Use the perturbation actually representable in float.
    const double h = static_cast<double>(static_cast<float>(base[i] + opt.eps)) -
                     static_cast<double>(static_cast<float>(base[i] - opt.eps));
    idx.push_back(i);
    num.push_back((lp - lm) / h);
  }
  double maxabs = 0;
  for (double v : num) maxabs = std::max(maxabs, std::fabs(v));
  const double floor = std::max(opt.floor_frac * maxabs, 1e-6);
  for (size_t j = 0; j < idx.size(); ++j) {
    const double a = ana[static_cast<size_t>(idx[j])];
    const double err = std::fabs(a - num[j]) / std::max(std::fabs(num[j]), floor);
    if (err > res.worst) {
      res.worst = err;
      res.worst_index = idx[j];
      res.analytic = a;
      res.numeric = num[j];
    }
  }
  res.ok = res.worst <= opt.tol;
  std::ostringstream os;
  os << "input " << which << ": worst scaled error " << res.worst << " at element " << res.worst_index
     << " (analytic " << res.analytic << ", numeric " << res.numeric << "), tol " << opt.tol;
  res.message = os.str();
  return res;
}

// Max |a - b| / (atol + rtol * |b|) over elements; <= 1 means close.
inline double close_ratio(const std::vector<float>& a, const std::vector<double>& b, double atol,
                          double rtol) {
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]) / (atol + rtol * std::fabs(b[i])));
  return a.size() == b.size() ? worst : 1e30;
}

}  // namespace metanas::testing
