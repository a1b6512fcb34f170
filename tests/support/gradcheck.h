// Central finite-difference gradient checks for engine ops.
//
// The scalar probed is L = sum_i R_i * f(inputs)_i with a fixed random R, so
// every output element matters. L is accumulated in double on the host. Each
// checked element's error is (|analytic - numeric| - noise) / max(|numeric|,
// floor), floor = floor_frac * max_j |numeric_j|, where noise bounds the
// float rounding of the op's outputs (GradCheckOptions::noise_mult); the
// check passes when the worst error is below tol. Large inputs are sampled
// (max_elements spread evenly, plus the entries of largest analytic
// magnitude). With the defaults a backward off by 1% on any checked element
// whose gradient is at least 10% of the largest fails, the largest is always
// checked, and NaNs always fail (see tests/engine/gradcheck_test.cpp). An op
// whose outputs are huge against their gradients (say a sum of thousands of
// squares) resolves less than 1%: raise eps for it when the op is smooth.
#pragma once
#include <algorithm>
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
  // Large inputs also check their largest analytic entries: at least
  // check_largest of them, and every entry within largest_band of the maximum
  // (at most max_elements), so a 1% error on the largest gradient is always
  // probed even when many entries are nearly as large.
  int check_largest = 8;
  double largest_band = 0.03;
  // Float rounding of the op's outputs makes the numeric gradient noisy by up
  // to  sum_i |R_i| (|y+_i| + |y-_i|) 2^-24 / h  over the outputs that moved
  // (the largest single term when none moved); that much, times noise_mult
  // for rounding inside the op, is forgiven.
  // Without it a scalar output that is large against its gradients (a sum of
  // squares over thousands of elements, a batch-mean loss) fails at random.
  double noise_mult = 2.0;
  uint64_t seed = 12345;
};

struct GradCheckResult {
  bool ok = true;
  double worst = 0;           // worst scaled error
  int64_t worst_index = -1;
  double analytic = 0, numeric = 0;
  double noise = 0;           // rounding noise forgiven at the worst element
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
  // The evenly spread sample, plus the largest analytic entries: an error on
  // the dominant gradient must never slip between the sampled elements.
  std::vector<int64_t> picks;
  for (int64_t i = 0; i < n; i += stride) picks.push_back(i);
  if (stride > 1) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    auto mag = [&](int64_t i) {  // NaN ranks first (and keeps the sort's ordering strict)
      const double a = std::fabs(static_cast<double>(ana[static_cast<size_t>(i)]));
      return std::isnan(a) ? HUGE_VAL : a;
    };
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return mag(a) > mag(b); });
    const double band = (1.0 - opt.largest_band) * mag(order[0]);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t i = order[static_cast<size_t>(j)];
      const bool in_band = mag(i) >= band && j < opt.max_elements;
      if (j >= opt.check_largest && !in_band) break;
      picks.push_back(i);
    }
    std::sort(picks.begin(), picks.end());
    picks.erase(std::unique(picks.begin(), picks.end()), picks.end());
  }
  std::vector<int64_t> idx;
  std::vector<double> num, noise;
  for (int64_t i : picks) {
    std::vector<Tensor> in = inputs;
    std::vector<float> v = base;
    v[i] = static_cast<float>(base[i] + opt.eps);
    in[which] = Tensor::from_vector(v, inputs[which].shape(), inputs[which].device());
    std::vector<float> yp, ym;
    {
      NoGradGuard ng;
      yp = f(in).to_vector();
      v[i] = static_cast<float>(base[i] - opt.eps);
      in[which] = Tensor::from_vector(v, inputs[which].shape(), inputs[which].device());
      ym = f(in).to_vector();
    }
    double lp = 0, lm = 0, rounding = 0, largest = 0;
    for (size_t k = 0; k < yp.size(); ++k) {
      lp += R[k] * static_cast<double>(yp[k]);
      lm += R[k] * static_cast<double>(ym[k]);
      const double r = std::fabs(R[k]) * (std::fabs(static_cast<double>(yp[k])) +
                                          std::fabs(static_cast<double>(ym[k])));
      if (yp[k] != ym[k]) rounding += r;
      largest = std::max(largest, r);
    }
    // Nothing moved: the change was rounded away in at least one output.
    if (rounding == 0) rounding = largest;
    // Use the perturbation actually representable in float.
    const double h = static_cast<double>(static_cast<float>(base[i] + opt.eps)) -
                     static_cast<double>(static_cast<float>(base[i] - opt.eps));
    idx.push_back(i);
    num.push_back((lp - lm) / h);
    noise.push_back(opt.noise_mult * rounding * 0x1p-24 / h);
  }
  double maxabs = 0;
  for (double v : num) maxabs = std::max(maxabs, std::fabs(v));
  const double floor = std::max(opt.floor_frac * maxabs, 1e-6);
  for (size_t j = 0; j < idx.size(); ++j) {
    const double a = ana[static_cast<size_t>(idx[j])];
    const double diff = std::fabs(a - num[j]);
    // A NaN on either side (or in the outputs) is a failure, never a pass.
    const double err = std::isnan(diff) || !std::isfinite(noise[j])
                           ? HUGE_VAL
                           : std::max(0.0, diff - noise[j]) / std::max(std::fabs(num[j]), floor);
    if (err > res.worst || res.worst_index < 0) {
      res.worst = err;
      res.worst_index = idx[j];
      res.analytic = a;
      res.numeric = num[j];
      res.noise = noise[j];
    }
  }
  res.ok = res.worst <= opt.tol;
  std::ostringstream os;
  os << "input " << which << ": worst scaled error " << res.worst << " at element " << res.worst_index
     << " (analytic " << res.analytic << ", numeric " << res.numeric << " +- " << res.noise
     << "), tol " << opt.tol;
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
