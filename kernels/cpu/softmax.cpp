// CPU kernels for row softmax with temperature, fused log-softmax + NLL
// cross-entropy, row argmax and accuracy. Every row subtracts its max before
// exp, so large logits never overflow; row sums are taken in double. Labels
// outside [0, cols) are validated by the op layer; these kernels still never
// index with them (such a row's loss is NaN and gets no one-hot term).
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

namespace {
constexpr int64_t kParallelMin = 1 << 14;  // total elements below which threads do not pay

inline bool label_ok(int32_t l, int64_t cols) { return l >= 0 && static_cast<int64_t>(l) < cols; }

// Max of a row (NaN-propagating is not needed: a NaN row stays NaN through exp).
inline float row_max(const float* x, int64_t cols) {
  float m = x[0];
  for (int64_t c = 1; c < cols; ++c) m = x[c] > m ? x[c] : m;
  return m;
}
}  // namespace

void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, float inv_t) {
  if (cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    // max of x * inv_t: for inv_t > 0 that is inv_t * max(x); the op rejects T <= 0.
    const float m = row_max(xr, cols) * inv_t;
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const float e = std::exp(xr[c] * inv_t - m);
      yr[c] = e;
      s += e;
    }
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
  }
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols,
                      float inv_t, bool accumulate) {
  if (cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = dy + r * cols;
    const float* yr = y + r * cols;
    float* d = dx + r * cols;
    double dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(g[c]) * yr[c];
    const float fd = static_cast<float>(dot);
    if (accumulate)
      for (int64_t c = 0; c < cols; ++c) d[c] += inv_t * yr[c] * (g[c] - fd);
    else
      for (int64_t c = 0; c < cols; ++c) d[c] = inv_t * yr[c] * (g[c] - fd);
  }
}

void cross_entropy_forward(float* loss1, float* probs, const float* logits, const int32_t* labels,
                           int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) {
    loss1[0] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  std::vector<double> row_loss(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = logits + r * cols;
    float* pr = probs + r * cols;
    const float m = row_max(xr, cols);
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const float e = std::exp(xr[c] - m);
      pr[c] = e;
      s += e;
    }
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t c = 0; c < cols; ++c) pr[c] *= inv;
    // -log softmax(x)[l] = log(sum exp(x - m)) - (x[l] - m), kept in double.
    const int32_t l = labels[r];
    row_loss[static_cast<size_t>(r)] =
        label_ok(l, cols) ? std::log(s) - (static_cast<double>(xr[l]) - m)
                          : std::numeric_limits<double>::quiet_NaN();
  }
  double total = 0;  // fixed order: deterministic
  for (double v : row_loss) total += v;
  loss1[0] = static_cast<float>(total / static_cast<double>(rows));
}

void cross_entropy_backward(float* dlogits, const float* dloss1, const float* probs,
                            const int32_t* labels, int64_t rows, int64_t cols, bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  const float scale = dloss1[0] / static_cast<float>(rows);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* pr = probs + r * cols;
    float* d = dlogits + r * cols;
    if (accumulate)
      for (int64_t c = 0; c < cols; ++c) d[c] += scale * pr[c];
    else
      for (int64_t c = 0; c < cols; ++c) d[c] = scale * pr[c];
    const int32_t l = labels[r];
    if (label_ok(l, cols)) d[l] -= scale;
  }
}

void argmax_rows(int32_t* idx, const float* x, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    int64_t best = cols > 0 ? 0 : -1;
    for (int64_t c = 1; c < cols; ++c)
      if (xr[c] > xr[best]) best = c;  // strict: the first max wins ties
    idx[r] = static_cast<int32_t>(best);
  }
}

void accuracy(float* out1, const float* logits, const int32_t* labels, int64_t rows, int64_t cols) {
  if (rows <= 0) {
    out1[0] = 0.f;
    return;
  }
  std::vector<int32_t> idx(static_cast<size_t>(rows));
  argmax_rows(idx.data(), logits, rows, cols);
  int64_t correct = 0;
  for (int64_t r = 0; r < rows; ++r) correct += idx[static_cast<size_t>(r)] == labels[r];
  out1[0] = static_cast<float>(static_cast<double>(correct) / static_cast<double>(rows));
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
