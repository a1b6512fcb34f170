// CPU kernels of the DARTS mixed op over batch-normalised inputs: each
// candidate op's last batch norm (training mode, affine-free: DARTS's search
// ops) folded into the weighted sum, so its normalised output is never
// written or read back, and its backward is taken from dy directly instead of
// from a materialised dy_k = w_k * dy per input.
//   y = sum_k a_k(n) * invstd_k[c] * (x_k - mean_k[c]),  a_k(n) = w_k * rs_k[n]
// (plain inputs: mean 0, invstd 1). Backward, with g_k = a_k dy the gradient
// the batch norm of input k would have received and M = N * HW:
//   A_k[c] = sum g_k,  B_k[c] = sum g_k (x_k - mean_k[c])      (over n, hw)
//   dx_k = invstd (g_k - A_k / M - (x_k - mean) invstd^2 B_k / M)  (normalised)
//   dx_k = g_k                                                   (plain)
//   dw_k = sum_n rs_k[n] sum_c invstd_k[c] sum_hw dy (x_k - mean_k[c])
// Both A and B come from two per-plane sums, sum dy and sum dy (x_k - mean),
// so the backward is one reading pass over dy and the inputs, then one
// writing pass. Planes are summed in float lanes (lane_sum.h) and merged in
// double in sample order: bits do not depend on the thread count.
// Bench: benchmarks/engine-bench ("mixed op + batch norms").
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/lane_sum.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

namespace {
constexpr int64_t kParallelMin = 1 << 14;  // elements below which threads do not pay

template <typename Body>
void for_planes(int64_t planes, int64_t work, Body body) {
#pragma omp parallel for schedule(static) if (work >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) body(p);
}
}  // namespace

void normalized_sum_forward(float* y, const float* const* xs, const float* w, const float* rs, const float* mean,
                            const float* invstd, int K, int64_t N, int64_t C, int64_t HW) {
  const int64_t planes = N * C;
  for_planes(planes, planes * HW * (K > 0 ? K : 1), [&](int64_t p) {
    const int64_t n = p / C, c = p % C;
    float* __restrict yp = y + p * HW;
    if (K <= 0) {
      for (int64_t i = 0; i < HW; ++i) yp[i] = 0.f;
      return;
    }
    for (int k = 0; k < K; ++k) {
      const float a = w[k] * (rs ? rs[k * N + n] : 1.f) * invstd[k * C + c], m = mean[k * C + c];
      const float* __restrict xp = xs[k] + p * HW;
      // (x - m) before the scale: a large common offset cancels exactly first.
      if (k == 0)
        for (int64_t i = 0; i < HW; ++i) yp[i] = a * (xp[i] - m);
      else
        for (int64_t i = 0; i < HW; ++i) yp[i] += a * (xp[i] - m);
    }
  });
}

void normalized_sum_backward(float* const* dxs, float* dw, const float* dy, const float* const* xs, const float* w,
                             const float* rs, const float* mean, const float* invstd, const int* normalized,
                             const int* accumulate_x, int K, int64_t N, int64_t C, int64_t HW, bool accumulate_w) {
  if (K <= 0) return;
  const int64_t planes = N * C, M = N * HW;
  // Which inputs need the per-plane sums: normalised ones with a gradient, and all when dw is wanted.
  std::vector<char> sums_of(static_cast<size_t>(K));
  for (int k = 0; k < K; ++k) sums_of[static_cast<size_t>(k)] = dw || (normalized[k] && dxs[k]);
  // s1[p] = sum dy; s2[k * planes + p] = sum dy (x_k - mean_k[c]).
  std::vector<double> s1(static_cast<size_t>(planes)), s2(static_cast<size_t>(K * planes));
  for_planes(planes, planes * HW * (K + 1), [&](int64_t p) {
    const int64_t c = p % C;
    const float* gp = dy + p * HW;
    s1[static_cast<size_t>(p)] = float_lane_sum(HW, [gp](int64_t i) { return gp[i]; });
    for (int k = 0; k < K; ++k) {
      if (!sums_of[static_cast<size_t>(k)]) continue;
      const float* xp = xs[k] + p * HW;
      const float m = mean[k * C + c];
      s2[static_cast<size_t>(k * planes + p)] =
          float_lane_sum(HW, [gp, xp, m](int64_t i) { return gp[i] * (xp[i] - m); });
    }
  });
  // Per (k, c): dx_k = alpha(n) dy - gamma - (x - mean) beta for normalised inputs.
  std::vector<float> beta(static_cast<size_t>(K * C)), gamma(static_cast<size_t>(K * C));
  const double inv_m = M > 0 ? 1.0 / static_cast<double>(M) : 0.0;
  for (int k = 0; k < K; ++k) {
    const auto scale = [&](int64_t n) { return rs ? static_cast<double>(rs[k * N + n]) : 1.0; };
    if (normalized[k] && dxs[k])
      for (int64_t c = 0; c < C; ++c) {
        double A = 0, B = 0;
        for (int64_t n = 0; n < N; ++n) {
          A += scale(n) * s1[static_cast<size_t>(n * C + c)];
          B += scale(n) * s2[static_cast<size_t>(k * planes + n * C + c)];
        }
        const double is = invstd[k * C + c];
        A *= w[k];
        B *= w[k];
        gamma[static_cast<size_t>(k * C + c)] = static_cast<float>(is * A * inv_m);
        beta[static_cast<size_t>(k * C + c)] = static_cast<float>(is * is * is * B * inv_m);
      }
    if (dw) {
      double t = 0;
      for (int64_t n = 0; n < N; ++n) {
        double row = 0;
        for (int64_t c = 0; c < C; ++c)
          row += static_cast<double>(invstd[k * C + c]) * s2[static_cast<size_t>(k * planes + n * C + c)];
        t += scale(n) * row;
      }
      dw[k] = accumulate_w ? dw[k] + static_cast<float>(t) : static_cast<float>(t);
    }
  }
  for_planes(planes, planes * HW * K, [&](int64_t p) {
    const int64_t n = p / C, c = p % C;
    const float* __restrict gp = dy + p * HW;
    for (int k = 0; k < K; ++k) {
      if (!dxs[k]) continue;
      float* __restrict d = dxs[k] + p * HW;
      const bool acc = accumulate_x && accumulate_x[k];
      const float a = w[k] * (rs ? rs[k * N + n] : 1.f);
      if (!normalized[k]) {
        if (acc)
          for (int64_t i = 0; i < HW; ++i) d[i] += a * gp[i];
        else
          for (int64_t i = 0; i < HW; ++i) d[i] = a * gp[i];
        continue;
      }
      const float is = invstd[k * C + c], m = mean[k * C + c];
      const float al = a * is, ga = gamma[static_cast<size_t>(k * C + c)], be = beta[static_cast<size_t>(k * C + c)];
      const float* __restrict xp = xs[k] + p * HW;
      if (acc)
        for (int64_t i = 0; i < HW; ++i) d[i] += al * gp[i] - ga - (xp[i] - m) * be;
      else
        for (int64_t i = 0; i < HW; ++i) d[i] = al * gp[i] - ga - (xp[i] - m) * be;
    }
  });
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
