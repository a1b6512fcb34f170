// CPU element-wise kernels, reductions and layout copies.
// Reductions sum fixed-size blocks in double and then the blocks in order, so
// results do not depend on the thread count. Bench: benchmarks/engine-bench.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

namespace {
constexpr int64_t kParallelMin = 1 << 14;  // below this, threads cost more than they save
constexpr int64_t kBlock = 4096;           // reduction block (fixed: determinism)

template <typename F>
double blocked_sum(int64_t n, F f) {
  const int64_t nb = (n + kBlock - 1) / kBlock;
  if (nb <= 1) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += f(i);
    return s;
  }
  std::vector<double> part(static_cast<size_t>(nb));
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t b = 0; b < nb; ++b) {
    double s = 0;
    const int64_t e = std::min(n, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < e; ++i) s += f(i);
    part[b] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  return s;
}
}  // namespace

void fill(float* y, float v, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = v;
}

void fill_i32(int32_t* y, int32_t v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = v;
}

void axpby(float* y, const float* x, float a, float b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i] + b * y[i];
}

void add(float* y, const float* a, const float* b, float alpha, float beta, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * a[i] + beta * b[i];
}

void mul(float* y, const float* a, const float* b, int64_t n, bool accumulate) {
  if (accumulate) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] += a[i] * b[i];
  } else {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
  }
}

void affine(float* y, const float* x, float alpha, float beta, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta;
}

void relu_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

void relu_backward(float* dx, const float* dy, const float* x, int64_t n, bool accumulate) {
  if (accumulate) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) dx[i] += x[i] > 0.f ? dy[i] : 0.f;
  } else {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
  }
}

void sum(float* out1, const float* x, int64_t n) {
  out1[0] = static_cast<float>(blocked_sum(n, [x](int64_t i) { return static_cast<double>(x[i]); }));
}

void sum_squares(float* out1, const float* x, int64_t n) {
  out1[0] = static_cast<float>(blocked_sum(n, [x](int64_t i) {
    const double v = x[i];
    return v * v;
  }));
}

void sum_rows(float* y, const float* x, int64_t rows, int64_t cols, bool accumulate) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t c = 0; c < cols; ++c) {
    double s = 0;
    for (int64_t r = 0; r < rows; ++r) s += x[r * cols + c];
    y[c] = accumulate ? y[c] + static_cast<float>(s) : static_cast<float>(s);
  }
}

void add_bias_rows(float* y, const float* b, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += b[c];
}

void box_copy(const BoxCopy& b, const float* src, float* dst) {
  const int64_t planes = b.N * b.C;
#pragma omp parallel for schedule(static) if (planes * b.Hc * b.Wc >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / b.C, c = p % b.C;
    const float* s = src + ((n * b.src_C + b.sc0 + c) * b.src_H + b.sh0) * b.src_W + b.sw0;
    float* d = dst + ((n * b.dst_C + b.dc0 + c) * b.dst_H + b.dh0) * b.dst_W + b.dw0;
    for (int64_t h = 0; h < b.Hc; ++h) {
      const float* sr = s + h * b.src_W;
      float* dr = d + h * b.dst_W;
      if (b.accumulate) {
        for (int64_t w = 0; w < b.Wc; ++w) dr[w] += sr[w];
      } else {
        std::copy(sr, sr + b.Wc, dr);
      }
    }
  }
}

void global_avg_pool_forward(const float* x, float* y, int64_t NC, int64_t HW) {
  const double inv = 1.0 / static_cast<double>(HW);
#pragma omp parallel for schedule(static) if (NC * HW >= kParallelMin)
  for (int64_t i = 0; i < NC; ++i) {
    double s = 0;
    for (int64_t j = 0; j < HW; ++j) s += x[i * HW + j];
    y[i] = static_cast<float>(s * inv);
  }
}

void global_avg_pool_backward(const float* dy, float* dx, int64_t NC, int64_t HW, bool accumulate) {
  const float inv = 1.f / static_cast<float>(HW);
#pragma omp parallel for schedule(static) if (NC * HW >= kParallelMin)
  for (int64_t i = 0; i < NC; ++i) {
    const float g = dy[i] * inv;
    float* d = dx + i * HW;
    if (accumulate)
      for (int64_t j = 0; j < HW; ++j) d[j] += g;
    else
      for (int64_t j = 0; j < HW; ++j) d[j] = g;
  }
}

void scale_rows(float* y, const float* x, const float* scale, int64_t rows, int64_t cols,
                bool accumulate) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float s = scale[r];
    if (accumulate)
      for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += s * x[r * cols + c];
    else
      for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = s * x[r * cols + c];
  }
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
