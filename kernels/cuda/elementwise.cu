// CUDA element-wise kernels: fill, axpby, add, mul, affine, ReLU and its
// backward, bias broadcast, and the fused ReLU copy used by convolutions.
// Memory-bound grid-stride loops; bench: benchmarks/kernel-bench (copy roofline).
#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {
template <typename T>
__global__ void fill_kernel(T* y, T v, int64_t n) {
  MN_GRID_STRIDE(i, n) y[i] = v;
}
__global__ void axpby_kernel(float* y, const float* x, float a, float b, int64_t n) {
  MN_GRID_STRIDE(i, n) y[i] = a * x[i] + b * y[i];
}
__global__ void add_kernel(float* y, const float* a, const float* b, float alpha, float beta, int64_t n) {
  MN_GRID_STRIDE(i, n) y[i] = alpha * a[i] + beta * b[i];
}
template <bool Acc>
__global__ void mul_kernel(float* y, const float* a, const float* b, int64_t n) {
  MN_GRID_STRIDE(i, n) {
    const float v = a[i] * b[i];
    y[i] = Acc ? y[i] + v : v;
  }
}
__global__ void affine_kernel(float* y, const float* x, float alpha, float beta, int64_t n) {
  MN_GRID_STRIDE(i, n) y[i] = alpha * x[i] + beta;
}
__global__ void relu_kernel(float* y, const float* x, int64_t n) {
  MN_GRID_STRIDE(i, n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
template <bool Acc>
__global__ void relu_backward_kernel(float* dx, const float* dy, const float* x, int64_t n) {
  MN_GRID_STRIDE(i, n) {
    const float v = x[i] > 0.f ? dy[i] : 0.f;
    dx[i] = Acc ? dx[i] + v : v;
  }
}
__global__ void add_bias_rows_kernel(float* y, const float* b, int64_t rows, int64_t cols) {
  MN_GRID_STRIDE(i, rows * cols) y[i] += b[i % cols];
}
}  // namespace

void fill(const Context& c, float* y, float v, int64_t n) {
  if (n <= 0) return;
  fill_kernel<float><<<grid_for(c, n), kThreads, 0, c.stream>>>(y, v, n);
  MN_CUDA_LAUNCH_CHECK();
}

void fill_i32(const Context& c, int32_t* y, int32_t v, int64_t n) {
  if (n <= 0) return;
  fill_kernel<int32_t><<<grid_for(c, n), kThreads, 0, c.stream>>>(y, v, n);
  MN_CUDA_LAUNCH_CHECK();
}

void axpby(const Context& c, float* y, const float* x, float a, float b, int64_t n) {
  if (n <= 0) return;
  axpby_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(y, x, a, b, n);
  MN_CUDA_LAUNCH_CHECK();
}

void add(const Context& c, float* y, const float* a, const float* b, float alpha, float beta, int64_t n) {
  if (n <= 0) return;
  add_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(y, a, b, alpha, beta, n);
  MN_CUDA_LAUNCH_CHECK();
}

void mul(const Context& c, float* y, const float* a, const float* b, int64_t n, bool accumulate) {
  if (n <= 0) return;
  if (accumulate)
    mul_kernel<true><<<grid_for(c, n), kThreads, 0, c.stream>>>(y, a, b, n);
  else
    mul_kernel<false><<<grid_for(c, n), kThreads, 0, c.stream>>>(y, a, b, n);
  MN_CUDA_LAUNCH_CHECK();
}

void affine(const Context& c, float* y, const float* x, float alpha, float beta, int64_t n) {
  if (n <= 0) return;
  affine_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(y, x, alpha, beta, n);
  MN_CUDA_LAUNCH_CHECK();
}

void relu_forward(const Context& c, float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  relu_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(y, x, n);
  MN_CUDA_LAUNCH_CHECK();
}

void relu_backward(const Context& c, float* dx, const float* dy, const float* x, int64_t n, bool accumulate) {
  if (n <= 0) return;
  if (accumulate)
    relu_backward_kernel<true><<<grid_for(c, n), kThreads, 0, c.stream>>>(dx, dy, x, n);
  else
    relu_backward_kernel<false><<<grid_for(c, n), kThreads, 0, c.stream>>>(dx, dy, x, n);
  MN_CUDA_LAUNCH_CHECK();
}

void add_bias_rows(const Context& c, float* y, const float* b, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  add_bias_rows_kernel<<<grid_for(c, rows * cols), kThreads, 0, c.stream>>>(y, b, rows, cols);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
