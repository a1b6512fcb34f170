// CUDA kernels of the activations and policy-gradient ops: sigmoid, tanh, exp,
// masked log-softmax, per-row gather, clamp and element-wise minimum.
// Semantics: metanas/kernels/op_table.def; CPU reference: kernels/cpu/activation.cpp.
// Element-wise ones are memory-bound grid-stride loops. log-softmax gives each
// row one warp (the agent's action rows are short); the max and the sum are
// warp butterflies in a fixed order and the sum is in double like the CPU's,
// so results are reproducible run to run. A fully masked row gives NaN (the
// CPU kernel raises an error instead; a device kernel cannot).
// Bench: build/bin/engine-bench --device cuda --filter sigmoid (and friends).
#include <cmath>

#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {

__device__ __forceinline__ void store(float* dst, int64_t i, float v, bool acc) { dst[i] = acc ? dst[i] + v : v; }

__global__ void sigmoid_kernel(float* y, const float* x, int64_t n) {
  MN_GRID_STRIDE(i, n) {
    const float v = x[i];
    if (v >= 0.f) {
      y[i] = 1.f / (1.f + expf(-v));
    } else {
      const float e = expf(v);
      y[i] = e / (1.f + e);
    }
  }
}
__global__ void sigmoid_backward_kernel(float* dx, const float* dy, const float* y, int64_t n, bool acc) {
  MN_GRID_STRIDE(i, n) store(dx, i, dy[i] * y[i] * (1.f - y[i]), acc);
}
__global__ void tanh_kernel(float* y, const float* x, int64_t n) { MN_GRID_STRIDE(i, n) y[i] = tanhf(x[i]); }
__global__ void tanh_backward_kernel(float* dx, const float* dy, const float* y, int64_t n, bool acc) {
  MN_GRID_STRIDE(i, n) store(dx, i, dy[i] * (1.f - y[i] * y[i]), acc);
}
__global__ void exp_kernel(float* y, const float* x, int64_t n) { MN_GRID_STRIDE(i, n) y[i] = expf(x[i]); }

// One warp per row.
__global__ void log_softmax_kernel(float* y, const float* x, const int32_t* mask, int64_t rows, int64_t cols) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  const bool active = row < rows;
  const int64_t o = (active ? row : 0) * cols;
  float m = -INFINITY;
  if (active)
    for (int64_t c = lane; c < cols; c += 32)
      if (!mask || mask[o + c]) m = fmaxf(m, x[o + c]);
  m = warp_max(m);
  double s = 0;
  if (active)
    for (int64_t c = lane; c < cols; c += 32)
      if (!mask || mask[o + c]) s += exp(static_cast<double>(x[o + c]) - m);
  s = warp_sum(s);
  if (!active) return;
  const float lse = s > 0 ? m + static_cast<float>(log(s)) : nanf("");
  for (int64_t c = lane; c < cols; c += 32)
    y[o + c] = (!mask || mask[o + c]) ? x[o + c] - lse : (s > 0 ? kMaskedLogProb : nanf(""));
}

__global__ void log_softmax_backward_kernel(float* dx, const float* dy, const float* y, const int32_t* mask,
                                            int64_t rows, int64_t cols, bool acc) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  const bool active = row < rows;
  const int64_t o = (active ? row : 0) * cols;
  double s = 0;
  if (active)
    for (int64_t c = lane; c < cols; c += 32)
      if (!mask || mask[o + c]) s += dy[o + c];
  s = warp_sum(s);
  if (!active) return;
  const float fs = static_cast<float>(s);
  for (int64_t c = lane; c < cols; c += 32)
    store(dx, o + c, (!mask || mask[o + c]) ? dy[o + c] - expf(y[o + c]) * fs : 0.f, acc);
}

__global__ void gather_cols_kernel(float* y, const float* x, const int32_t* idx, int64_t rows, int64_t cols) {
  MN_GRID_STRIDE(r, rows) {
    const int32_t c = idx[r];
    y[r] = (c >= 0 && c < cols) ? x[r * cols + c] : nanf("");
  }
}
// Each row's gradient is one element: rows never collide, no atomics needed.
__global__ void gather_cols_backward_kernel(float* dx, const float* dy, const int32_t* idx, int64_t rows,
                                            int64_t cols) {
  MN_GRID_STRIDE(r, rows) {
    const int32_t c = idx[r];
    if (c >= 0 && c < cols) dx[r * cols + c] += dy[r];
  }
}
__global__ void clamp_kernel(float* y, const float* x, float lo, float hi, int64_t n) {
  MN_GRID_STRIDE(i, n) y[i] = fminf(fmaxf(x[i], lo), hi);
}
__global__ void clamp_backward_kernel(float* dx, const float* dy, const float* x, float lo, float hi, int64_t n,
                                      bool acc) {
  MN_GRID_STRIDE(i, n) store(dx, i, (x[i] >= lo && x[i] <= hi) ? dy[i] : 0.f, acc);
}
__global__ void minimum_kernel(float* y, const float* a, const float* b, int64_t n) {
  MN_GRID_STRIDE(i, n) y[i] = fminf(a[i], b[i]);
}
__global__ void minimum_backward_kernel(float* da, float* db, const float* dy, const float* a, const float* b,
                                        int64_t n) {
  MN_GRID_STRIDE(i, n) {
    const float share = a[i] < b[i] ? 1.f : (a[i] > b[i] ? 0.f : 0.5f);
    if (da) da[i] = dy[i] * share;
    if (db) db[i] = dy[i] * (1.f - share);
  }
}

unsigned warp_rows_grid(int64_t rows) { return static_cast<unsigned>((rows * 32 + kThreads - 1) / kThreads); }

}  // namespace

void sigmoid_forward(const Context& c, float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  sigmoid_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(y, x, n);
  MN_CUDA_LAUNCH_CHECK();
}
void sigmoid_backward(const Context& c, float* dx, const float* dy, const float* y, int64_t n, bool accumulate) {
  if (n <= 0) return;
  sigmoid_backward_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(dx, dy, y, n, accumulate);
  MN_CUDA_LAUNCH_CHECK();
}
void tanh_forward(const Context& c, float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  tanh_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(y, x, n);
  MN_CUDA_LAUNCH_CHECK();
}
void tanh_backward(const Context& c, float* dx, const float* dy, const float* y, int64_t n, bool accumulate) {
  if (n <= 0) return;
  tanh_backward_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(dx, dy, y, n, accumulate);
  MN_CUDA_LAUNCH_CHECK();
}
void exp_forward(const Context& c, float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  exp_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(y, x, n);
  MN_CUDA_LAUNCH_CHECK();
}
void log_softmax_forward(const Context& c, float* y, const float* x, const int32_t* mask, int64_t rows,
                         int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  log_softmax_kernel<<<warp_rows_grid(rows), kThreads, 0, c.stream>>>(y, x, mask, rows, cols);
  MN_CUDA_LAUNCH_CHECK();
}
void log_softmax_backward(const Context& c, float* dx, const float* dy, const float* y, const int32_t* mask,
                          int64_t rows, int64_t cols, bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  log_softmax_backward_kernel<<<warp_rows_grid(rows), kThreads, 0, c.stream>>>(dx, dy, y, mask, rows, cols,
                                                                              accumulate);
  MN_CUDA_LAUNCH_CHECK();
}
void gather_cols_forward(const Context& c, float* y, const float* x, const int32_t* idx, int64_t rows,
                         int64_t cols) {
  if (rows <= 0) return;
  gather_cols_kernel<<<grid_for(c, rows), kThreads, 0, c.stream>>>(y, x, idx, rows, cols);
  MN_CUDA_LAUNCH_CHECK();
}
void gather_cols_backward(const Context& c, float* dx, const float* dy, const int32_t* idx, int64_t rows,
                          int64_t cols, bool accumulate) {
  if (rows <= 0) return;
  if (!accumulate) MN_CUDA_CHECK(cudaMemsetAsync(dx, 0, static_cast<size_t>(rows * cols) * sizeof(float), c.stream));
  gather_cols_backward_kernel<<<grid_for(c, rows), kThreads, 0, c.stream>>>(dx, dy, idx, rows, cols);
  MN_CUDA_LAUNCH_CHECK();
}
void clamp_forward(const Context& c, float* y, const float* x, float lo, float hi, int64_t n) {
  if (n <= 0) return;
  clamp_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(y, x, lo, hi, n);
  MN_CUDA_LAUNCH_CHECK();
}
void clamp_backward(const Context& c, float* dx, const float* dy, const float* x, float lo, float hi, int64_t n,
                    bool accumulate) {
  if (n <= 0) return;
  clamp_backward_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(dx, dy, x, lo, hi, n, accumulate);
  MN_CUDA_LAUNCH_CHECK();
}
void minimum_forward(const Context& c, float* y, const float* a, const float* b, int64_t n) {
  if (n <= 0) return;
  minimum_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(y, a, b, n);
  MN_CUDA_LAUNCH_CHECK();
}
void minimum_backward(const Context& c, float* da, float* db, const float* dy, const float* a, const float* b,
                      int64_t n) {
  if (n <= 0) return;
  minimum_backward_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(da, db, dy, a, b, n);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
