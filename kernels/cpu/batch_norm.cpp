// CPU batch normalisation over [N, C, HW]: training (batch statistics, with the
// PyTorch running-statistics update), evaluation, and both backwards.
// Each (n, c) plane is reduced on its own (in parallel), then the planes of a
// channel are merged in double in sample order, so results do not depend on
// the thread count. The mean/variance of a plane are two-pass (plane in
// cache; the first pass relative to the plane's first value) and planes are
// merged with Chan's formula, which avoids the cancellation of
// sum(x^2) - M*mean^2. A plane's sums run in 16 float lanes (element i in
// lane i % 16, lanes added in a fixed tree, in double): that vectorises where
// one serial chain cannot, and the order is fixed, so the thread count still
// cannot change a bit.
// Bench: benchmarks/engine-bench.
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/lane_sum.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

namespace {

constexpr int64_t kParallelMin = 1 << 14;  // elements below which threads do not pay

// body(p) for every (n, c) plane p = n*C + c.
template <typename Body>
void for_planes(int64_t N, int64_t C, int64_t HW, Body body) {
  const int64_t planes = N * C;
#pragma omp parallel for schedule(static) if (planes * HW >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) body(p);
}

// y = x * scale[c] + shift[c] (per plane), or dx (+)= the same form.
void apply_affine(const float* x, float* y, const std::vector<float>& scale,
                  const std::vector<float>& shift, int64_t N, int64_t C, int64_t HW) {
  for_planes(N, C, HW, [&](int64_t p) {
    const int64_t c = p % C;
    const float a = scale[static_cast<size_t>(c)], b = shift[static_cast<size_t>(c)];
    const float* __restrict xp = x + p * HW;
    float* __restrict yp = y + p * HW;
    for (int64_t i = 0; i < HW; ++i) yp[i] = xp[i] * a + b;
  });
}

// Per-channel sums over the batch of f(plane) -> (double, double), planes merged in order.
struct Sums2 {
  std::vector<double> a, b;
};
template <typename PlaneFn>
Sums2 channel_sums(int64_t N, int64_t C, int64_t HW, PlaneFn plane_fn) {
  std::vector<double> pa(static_cast<size_t>(N * C)), pb(static_cast<size_t>(N * C));
  for_planes(N, C, HW, [&](int64_t p) { plane_fn(p, pa[static_cast<size_t>(p)], pb[static_cast<size_t>(p)]); });
  Sums2 s{std::vector<double>(static_cast<size_t>(C), 0.0), std::vector<double>(static_cast<size_t>(C), 0.0)};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      s.a[static_cast<size_t>(c)] += pa[static_cast<size_t>(n * C + c)];
      s.b[static_cast<size_t>(c)] += pb[static_cast<size_t>(n * C + c)];
    }
  return s;
}

// The backwards' reductions: per channel, a = sum dy and b = sum dy * (x - mean[c]).
Sums2 dy_sums(const float* dy, const float* x, const float* mean, int64_t N, int64_t C, int64_t HW) {
  return channel_sums(N, C, HW, [&](int64_t p, double& a, double& b) {
    const float* gp = dy + p * HW;
    const float* xp = x + p * HW;
    const float mu = mean[p % C];
    a = float_lane_sum(HW, [gp](int64_t i) { return gp[i]; });
    b = float_lane_sum(HW, [gp, xp, mu](int64_t i) { return gp[i] * (xp[i] - mu); });
  });
}

inline float opt_or(const float* p, int64_t c, float dflt) { return p ? p[c] : dflt; }

}  // namespace

namespace {
// Per channel c: the batch mean mu[c] and the sum of squared deviations m2[c].
void channel_moments(const float* x, int64_t N, int64_t C, int64_t HW, std::vector<double>& mu,
                     std::vector<double>& m2) {
  // Per plane: mean and sum of squared deviations.
  std::vector<double> pmean(static_cast<size_t>(N * C)), pm2(static_cast<size_t>(N * C));
  for_planes(N, C, HW, [&](int64_t p) {
    const float* xp = x + p * HW;
    if (HW == 0) {
      pmean[static_cast<size_t>(p)] = pm2[static_cast<size_t>(p)] = 0.0;
      return;
    }
    // Sums relative to the plane's first value, so a large common offset
    // (a mean of 1000, a spread of 0.01) cancels before the float lanes add.
    const float x0 = xp[0];
    const double s = float_lane_sum(HW, [xp, x0](int64_t i) { return xp[i] - x0; });
    const double m = x0 + s / static_cast<double>(HW);
    const float mf = static_cast<float>(m);
    const double q = float_lane_sum(HW, [xp, mf](int64_t i) {
      const float d = xp[i] - mf;
      return d * d;
    });
    const double shift = m - static_cast<double>(mf);  // sum (x - m)^2 = sum (x - mf)^2 - HW * shift^2
    pmean[static_cast<size_t>(p)] = m;
    pm2[static_cast<size_t>(p)] = std::max(0.0, q - static_cast<double>(HW) * shift * shift);
  });
  mu.assign(static_cast<size_t>(C), 0.0);
  m2.assign(static_cast<size_t>(C), 0.0);
  for (int64_t c = 0; c < C; ++c) {
    // Chan et al.: merge the planes of channel c in sample order.
    double cnt = 0, u = 0, q2 = 0;
    for (int64_t n = 0; n < N; ++n) {
      const double pm = pmean[static_cast<size_t>(n * C + c)], q = pm2[static_cast<size_t>(n * C + c)];
      const double hw = static_cast<double>(HW), tot = cnt + hw;
      if (tot == 0) continue;
      const double delta = pm - u;
      u += delta * hw / tot;
      q2 += q + delta * delta * cnt * hw / tot;
      cnt = tot;
    }
    mu[static_cast<size_t>(c)] = u;
    m2[static_cast<size_t>(c)] = q2;
  }
}
}  // namespace

void batch_norm_statistics(const float* x, float* mean, float* invstd, int64_t N, int64_t C, int64_t HW, float eps) {
  if (C == 0) return;
  const int64_t M = N * HW;
  std::vector<double> mu, m2;
  channel_moments(x, N, C, HW, mu, m2);
  for (int64_t c = 0; c < C; ++c) {
    const double var = M > 0 ? m2[static_cast<size_t>(c)] / static_cast<double>(M) : 0.0;
    mean[c] = static_cast<float>(mu[static_cast<size_t>(c)]);
    invstd[c] = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
  }
}

void batch_norm_forward_train(const float* x, const float* gamma, const float* beta, float* y,
                              float* mean, float* invstd, float* running_mean, float* running_var,
                              int64_t N, int64_t C, int64_t HW, float eps, float momentum) {
  const int64_t M = N * HW;
  if (C == 0) return;
  std::vector<double> moments_mu, moments_m2;
  channel_moments(x, N, C, HW, moments_mu, moments_m2);
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const double mu = moments_mu[static_cast<size_t>(c)], m2 = moments_m2[static_cast<size_t>(c)];
    const double var = M > 0 ? m2 / static_cast<double>(M) : 0.0;
    const double is = 1.0 / std::sqrt(var + static_cast<double>(eps));
    mean[c] = static_cast<float>(mu);
    invstd[c] = static_cast<float>(is);
    if (running_mean && running_var) {
      const double unbiased = M > 1 ? m2 / static_cast<double>(M - 1) : var;
      running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
      running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
    const double sc = is * opt_or(gamma, c, 1.f);
    scale[static_cast<size_t>(c)] = static_cast<float>(sc);
    shift[static_cast<size_t>(c)] = static_cast<float>(opt_or(beta, c, 0.f) - mu * sc);
  }
  apply_affine(x, y, scale, shift, N, C, HW);
}

void batch_norm_forward_eval(const float* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, float* y,
                             int64_t N, int64_t C, int64_t HW, float eps) {
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const double sc = opt_or(gamma, c, 1.f) / std::sqrt(static_cast<double>(running_var[c]) + eps);
    scale[static_cast<size_t>(c)] = static_cast<float>(sc);
    shift[static_cast<size_t>(c)] = static_cast<float>(opt_or(beta, c, 0.f) - running_mean[c] * sc);
  }
  apply_affine(x, y, scale, shift, N, C, HW);
}

void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* invstd,
                         const float* gamma, float* dx, float* dgamma, float* dbeta, int64_t N,
                         int64_t C, int64_t HW, bool accumulate) {
  const int64_t M = N * HW;
  if (C == 0) return;
  Sums2 s = dy_sums(dy, x, mean, N, C, HW);
  // dx = k * (dy - sum_dy / M - (x - mean) * invstd^2 * sum(dy (x - mean)) / M), k = gamma * invstd
  std::vector<float> k(static_cast<size_t>(C)), off(static_cast<size_t>(C)), slope(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const double is = invstd[c], sa = s.a[static_cast<size_t>(c)], sb = s.b[static_cast<size_t>(c)];
    const double inv_m = M > 0 ? 1.0 / static_cast<double>(M) : 0.0;
    k[static_cast<size_t>(c)] = static_cast<float>(opt_or(gamma, c, 1.f) * is);
    off[static_cast<size_t>(c)] = static_cast<float>(sa * inv_m);
    slope[static_cast<size_t>(c)] = static_cast<float>(is * is * sb * inv_m);
    if (dgamma) dgamma[c] = static_cast<float>((accumulate ? dgamma[c] : 0.0) + sb * is);
    if (dbeta) dbeta[c] = static_cast<float>((accumulate ? dbeta[c] : 0.0) + sa);
  }
  for_planes(N, C, HW, [&](int64_t p) {
    const int64_t c = p % C;
    const float kc = k[static_cast<size_t>(c)], oc = off[static_cast<size_t>(c)],
                sc = slope[static_cast<size_t>(c)], mu = mean[c];
    const float* __restrict gp = dy + p * HW;
    const float* __restrict xp = x + p * HW;
    float* __restrict dp = dx + p * HW;
    if (accumulate)
      for (int64_t i = 0; i < HW; ++i) dp[i] += kc * (gp[i] - oc - (xp[i] - mu) * sc);
    else
      for (int64_t i = 0; i < HW; ++i) dp[i] = kc * (gp[i] - oc - (xp[i] - mu) * sc);
  });
}

void batch_norm_backward_eval(const float* dy, const float* x, const float* gamma,
                              const float* running_mean, const float* running_var, float* dx,
                              float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW,
                              float eps, bool accumulate) {
  if (C == 0) return;
  std::vector<float> is(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c)
    is[static_cast<size_t>(c)] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
  if (dgamma || dbeta) {
    Sums2 s = dy_sums(dy, x, running_mean, N, C, HW);
    for (int64_t c = 0; c < C; ++c) {
      const double sa = s.a[static_cast<size_t>(c)], sb = s.b[static_cast<size_t>(c)];
      if (dgamma) dgamma[c] = static_cast<float>((accumulate ? dgamma[c] : 0.0) + sb * is[static_cast<size_t>(c)]);
      if (dbeta) dbeta[c] = static_cast<float>((accumulate ? dbeta[c] : 0.0) + sa);
    }
  }
  for_planes(N, C, HW, [&](int64_t p) {
    const int64_t c = p % C;
    const float kc = opt_or(gamma, c, 1.f) * is[static_cast<size_t>(c)];
    const float* __restrict gp = dy + p * HW;
    float* __restrict dp = dx + p * HW;
    if (accumulate)
      for (int64_t i = 0; i < HW; ++i) dp[i] += kc * gp[i];
    else
      for (int64_t i = 0; i < HW; ++i) dp[i] = kc * gp[i];
  });
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
