// CPU kernels of the activations and policy-gradient ops: sigmoid, tanh, exp,
// masked log-softmax, per-row gather, clamp and element-wise minimum (the GRU
// cell and the PPO loss of the meta-RL agent are composed from them).
// Semantics: metanas/kernels/op_table.def. Element-wise loops run on OpenMP
// threads above a size threshold; the log-softmax row sums are in double and
// in column order, so results do not depend on the thread count.
// Bench: benchmarks/engine-bench.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

namespace {
constexpr int64_t kParallelMin = 1 << 14;

template <typename F>
void each(int64_t n, F f) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) f(i);
}

inline void store(float* dst, int64_t i, float v, bool accumulate) { dst[i] = accumulate ? dst[i] + v : v; }
}  // namespace

void sigmoid_forward(float* y, const float* x, int64_t n) {
  // Two branches keep exp's argument <= 0: no overflow for large |x|.
  each(n, [&](int64_t i) {
    const float v = x[i];
    if (v >= 0.f) {
      y[i] = 1.f / (1.f + std::exp(-v));
    } else {
      const float e = std::exp(v);
      y[i] = e / (1.f + e);
    }
  });
}

void sigmoid_backward(float* dx, const float* dy, const float* y, int64_t n, bool accumulate) {
  each(n, [&](int64_t i) { store(dx, i, dy[i] * y[i] * (1.f - y[i]), accumulate); });
}

void tanh_forward(float* y, const float* x, int64_t n) {
  each(n, [&](int64_t i) { y[i] = std::tanh(x[i]); });
}

void tanh_backward(float* dx, const float* dy, const float* y, int64_t n, bool accumulate) {
  each(n, [&](int64_t i) { store(dx, i, dy[i] * (1.f - y[i] * y[i]), accumulate); });
}

void exp_forward(float* y, const float* x, int64_t n) {
  each(n, [&](int64_t i) { y[i] = std::exp(x[i]); });
}

void log_softmax_forward(float* y, const float* x, const int32_t* mask, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const int32_t* mr = mask ? mask + r * cols : nullptr;
    float m = -INFINITY;
    for (int64_t c = 0; c < cols; ++c)
      if (!mr || mr[c]) m = std::max(m, xr[c]);
    // No throw inside the parallel region: a fully masked row is flagged and reported after it.
    double s = 0;
    for (int64_t c = 0; c < cols; ++c)
      if (!mr || mr[c]) s += std::exp(static_cast<double>(xr[c]) - m);
    const float lse = m + static_cast<float>(std::log(s));
    float* yr = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) yr[c] = (!mr || mr[c]) ? xr[c] - lse : kMaskedLogProb;
  }
  if (mask)
    for (int64_t r = 0; r < rows; ++r)
      MN_KCHECK(std::any_of(mask + r * cols, mask + (r + 1) * cols, [](int32_t v) { return v != 0; }),
                "log_softmax: row ", r, " of the mask allows no entry");
}

void log_softmax_backward(float* dx, const float* dy, const float* y, const int32_t* mask, int64_t rows,
                          int64_t cols, bool accumulate) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * cols;
    const int32_t* mr = mask ? mask + o : nullptr;
    double s = 0;
    for (int64_t c = 0; c < cols; ++c)
      if (!mr || mr[c]) s += dy[o + c];
    const float fs = static_cast<float>(s);
    for (int64_t c = 0; c < cols; ++c) {
      const float v = (!mr || mr[c]) ? dy[o + c] - std::exp(y[o + c]) * fs : 0.f;
      store(dx, o + c, v, accumulate);
    }
  }
}

void gather_cols_forward(float* y, const float* x, const int32_t* idx, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    MN_KCHECK(idx[r] >= 0 && idx[r] < cols, "gather_cols: index ", idx[r], " at row ", r, " outside [0, ", cols,
              ")");
    y[r] = x[r * cols + idx[r]];
  }
}

void gather_cols_backward(float* dx, const float* dy, const int32_t* idx, int64_t rows, int64_t cols,
                          bool accumulate) {
  if (!accumulate) std::fill(dx, dx + rows * cols, 0.f);
  for (int64_t r = 0; r < rows; ++r) dx[r * cols + idx[r]] += dy[r];
}

void clamp_forward(float* y, const float* x, float lo, float hi, int64_t n) {
  each(n, [&](int64_t i) { y[i] = std::min(std::max(x[i], lo), hi); });
}

void clamp_backward(float* dx, const float* dy, const float* x, float lo, float hi, int64_t n, bool accumulate) {
  each(n, [&](int64_t i) { store(dx, i, (x[i] >= lo && x[i] <= hi) ? dy[i] : 0.f, accumulate); });
}

void minimum_forward(float* y, const float* a, const float* b, int64_t n) {
  each(n, [&](int64_t i) { y[i] = std::min(a[i], b[i]); });
}

void minimum_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t n) {
  each(n, [&](int64_t i) {
    const float share = a[i] < b[i] ? 1.f : (a[i] > b[i] ? 0.f : 0.5f);
    if (da) da[i] = dy[i] * share;
    if (db) db[i] = dy[i] * (1.f - share);
  });
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
