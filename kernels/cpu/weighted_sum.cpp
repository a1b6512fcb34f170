// CPU kernels of the DARTS mixed op y = sum_k w[k] * xs[k] and its backward,
// optionally with per-row (per-sample) scales of each input: the drop-path
// masks, folded in so that the masked op outputs are never materialised.
// Both passes walk the data in cache-sized blocks and visit all K inputs per
// block, so each array crosses memory once. dw is reduced per fixed-size
// block in double and the blocks are summed in order: the result does not
// depend on the thread count.
#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

namespace {
constexpr int64_t kBlock = 2048;           // elements per block (fixed: determinism)
constexpr int64_t kParallelMin = 1 << 14;  // total elements below which threads do not pay

// <g, x> over len elements with exact products in double. Eight independent
// accumulators (a fixed order, so still deterministic) hide the add latency.
inline double dot_double(const float* g, const float* x, int64_t len) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= len; i += 8)
    for (int u = 0; u < 8; ++u) s[u] += static_cast<double>(g[i + u]) * static_cast<double>(x[i + u]);
  double t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < len; ++i) t += static_cast<double>(g[i]) * static_cast<double>(x[i]);
  return t;
}
}  // namespace

// A block's runs of one row: body(run start, run length, row). Without row
// scales the whole block is one run (row 0) and the scale is 1.f (an exact
// product), so those results keep the bits they had before row scales existed.
template <typename Body>
inline void for_runs(int64_t s, int64_t e, int64_t cols, bool scaled, Body body) {
  if (!scaled) return body(s, e - s, int64_t{0});
  for (int64_t i = s; i < e;) {
    const int64_t r = i / cols, stop = std::min(e, (r + 1) * cols);
    body(i, stop - i, r);
    i = stop;
  }
}

void weighted_sum_forward(float* y, const float* const* xs, const float* w, const float* rs, int64_t rows, int K,
                          int64_t n) {
  if (n <= 0) return;
  if (K <= 0) {
    std::fill(y, y + n, 0.f);
    return;
  }
  const std::vector<float> wk(w, w + K);  // w and rs are host memory on the CPU backend
  const int64_t cols = rs ? n / rows : n;
  const int64_t nb = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n * K >= kParallelMin)
  for (int64_t b = 0; b < nb; ++b) {
    for_runs(b * kBlock, std::min(n, (b + 1) * kBlock), cols, rs != nullptr, [&](int64_t s, int64_t len, int64_t r) {
      float* yb = y + s;
      {
        const float* x = xs[0] + s;
        const float a = wk[0] * (rs ? rs[r] : 1.f);
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) yb[i] = a * x[i];
      }
      for (int k = 1; k < K; ++k) {
        const float* x = xs[k] + s;
        const float a = wk[k] * (rs ? rs[k * rows + r] : 1.f);
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) yb[i] += a * x[i];
      }
    });
  }
}

// dxs[k] = a[k] * dy (overwritten; null entries skipped). dw[k] (+)= <dy, xs[k]>
// (each row's share times its scale) when dw is non-null (null: the weights
// need no gradient).
void weighted_sum_backward(float* const* dxs, float* dw, const float* dy, const float* const* xs,
                           const float* w, const float* rs, int64_t rows, int K, int64_t n, bool accumulate_w) {
  if (K <= 0) return;
  const std::vector<float> wk(w, w + K);
  const int64_t cols = rs ? n / rows : n;
  const int64_t nb = n > 0 ? (n + kBlock - 1) / kBlock : 0;
  // part[b * K + k]: block b's share of dw[k].
  std::vector<double> part(dw ? static_cast<size_t>(nb * K) : 0);
#pragma omp parallel for schedule(static) if (n * K >= kParallelMin)
  for (int64_t b = 0; b < nb; ++b) {
    for_runs(b * kBlock, std::min(n, (b + 1) * kBlock), cols, rs != nullptr, [&](int64_t s, int64_t len, int64_t r) {
      const float* g = dy + s;
      for (int k = 0; k < K; ++k) {
        const float sc = rs ? rs[k * rows + r] : 1.f;
        if (dxs[k]) {
          float* d = dxs[k] + s;
          const float a = wk[k] * sc;
#pragma omp simd
          for (int64_t i = 0; i < len; ++i) d[i] = a * g[i];
        }
        if (dw) {
          const double t = dot_double(g, xs[k] + s, len);
          part[static_cast<size_t>(b * K + k)] += static_cast<double>(sc) * t;
        }
      }
    });
  }
  if (!dw) return;
  for (int k = 0; k < K; ++k) {
    double s = 0;
    for (int64_t b = 0; b < nb; ++b) s += part[static_cast<size_t>(b * K + k)];
    dw[k] = accumulate_w ? dw[k] + static_cast<float>(s) : static_cast<float>(s);
  }
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
