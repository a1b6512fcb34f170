// CUDA layout kernels: 4-D box copy (concat / channel slice / crop and their
// backwards), global average pooling and its backward, and per-row scaling
// (drop-path). Plane-parallel grids (grid.x = planes or rows) keep the index
// math 32-bit inside a plane; the pooling sum is a fixed-order warp reduction
// in double. Bench: benchmarks/kernel-bench (roofline = copy).
#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {

dim3 plane_grid(int64_t planes, int64_t plane_elems) {
  const int64_t tiles = std::min<int64_t>((plane_elems + kThreads - 1) / kThreads, 65535);
  return dim3(static_cast<unsigned>(planes), static_cast<unsigned>(std::max<int64_t>(tiles, 1)));
}

#define MN_PLANE_LOOP(q, count)                                                                  \
  for (int64_t q = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; q < (count); \
       q += static_cast<int64_t>(gridDim.y) * blockDim.x)

__global__ void box_copy_kernel(BoxCopy b, const float* __restrict__ src, float* __restrict__ dst) {
  const int64_t plane = blockIdx.x;
  const int64_t n = plane / b.C, c = plane - n * b.C;
  const float* s = src + ((n * b.src_C + b.sc0 + c) * b.src_H + b.sh0) * b.src_W + b.sw0;
  float* d = dst + ((n * b.dst_C + b.dc0 + c) * b.dst_H + b.dh0) * b.dst_W + b.dw0;
  MN_PLANE_LOOP(q, b.Hc * b.Wc) {
    const int64_t h = q / b.Wc, w = q - h * b.Wc;
    const float v = s[h * b.src_W + w];
    float* o = d + h * b.dst_W + w;
    *o = b.accumulate ? *o + v : v;
  }
}

// One warp per row of HW elements; y[row] = mean.
__global__ void gap_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t NC, int64_t HW) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  double s = 0;
  if (row < NC)
    for (int64_t j = lane; j < HW; j += 32) s += x[row * HW + j];
  s = warp_sum(s);
  if (row < NC && lane == 0) y[row] = static_cast<float>(s * (1.0 / static_cast<double>(HW)));
}

template <bool Acc>
__global__ void gap_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx, int64_t HW, float inv) {
  const int64_t row = blockIdx.x;
  const float g = dy[row] * inv;
  float* d = dx + row * HW;
  MN_PLANE_LOOP(q, HW) d[q] = Acc ? d[q] + g : g;
}

template <bool Acc>
__global__ void scale_rows_kernel(float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ scale,
                                  int64_t cols) {
  const int64_t row = blockIdx.x;
  const float s = scale[row];
  float* yr = y + row * cols;
  const float* xr = x + row * cols;
  MN_PLANE_LOOP(q, cols) {
    const float v = s * xr[q];
    yr[q] = Acc ? yr[q] + v : v;
  }
}

void check_planes(int64_t planes, const char* what) {
  MN_KCHECK(planes < 0x7fffffffLL, what, ": ", planes, " planes exceed the grid limit");
}

}  // namespace

void box_copy(const Context& c, const BoxCopy& b, const float* src, float* dst) {
  if (b.N * b.C * b.Hc * b.Wc <= 0) return;
  check_planes(b.N * b.C, "box_copy");
  box_copy_kernel<<<plane_grid(b.N * b.C, b.Hc * b.Wc), kThreads, 0, c.stream>>>(b, src, dst);
  MN_CUDA_LAUNCH_CHECK();
}

void global_avg_pool_forward(const Context& c, const float* x, float* y, int64_t NC, int64_t HW) {
  if (NC <= 0) return;
  if (HW <= 0) {
    fill(c, y, 0.f, NC);  // an empty mean; the op rejects empty planes
    return;
  }
  const int64_t threads = NC * 32;
  gap_forward_kernel<<<static_cast<unsigned>((threads + kThreads - 1) / kThreads), kThreads, 0, c.stream>>>(x, y, NC,
                                                                                                            HW);
  MN_CUDA_LAUNCH_CHECK();
}

void global_avg_pool_backward(const Context& c, const float* dy, float* dx, int64_t NC, int64_t HW, bool accumulate) {
  if (NC <= 0 || HW <= 0) return;
  check_planes(NC, "global_avg_pool backward");
  const float inv = 1.f / static_cast<float>(HW);
  if (accumulate)
    gap_backward_kernel<true><<<plane_grid(NC, HW), kThreads, 0, c.stream>>>(dy, dx, HW, inv);
  else
    gap_backward_kernel<false><<<plane_grid(NC, HW), kThreads, 0, c.stream>>>(dy, dx, HW, inv);
  MN_CUDA_LAUNCH_CHECK();
}

void scale_rows(const Context& c, float* y, const float* x, const float* scale, int64_t rows, int64_t cols,
                bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  check_planes(rows, "scale_rows");
  if (accumulate)
    scale_rows_kernel<true><<<plane_grid(rows, cols), kThreads, 0, c.stream>>>(y, x, scale, cols);
  else
    scale_rows_kernel<false><<<plane_grid(rows, cols), kThreads, 0, c.stream>>>(y, x, scale, cols);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
