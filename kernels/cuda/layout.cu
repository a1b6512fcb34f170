// CUDA layout kernels: 4-D box copy (concat / channel slice / crop and their
// backwards), global average pooling and its backward, and per-row scaling
// (drop-path). Plane grids (plane_grid.cuh: tiled for large planes, packed for
// small ones) keep the index math 32-bit, with no 64-bit division per
// element; the pooling sum is a fixed-order warp reduction
// in double. Bench: benchmarks/kernel-bench (roofline = copy).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/plane_grid.cuh"

namespace metanas::kernels::cuda {

namespace {

static_assert(kPlaneThreads == kThreads, "plane_grid.cuh assumes the common block size");

struct Span {
  const float* s;
  float* d;
};

__global__ void box_copy_kernel(BoxCopy b, PlaneGrid pg, const float* __restrict__ src, float* __restrict__ dst) {
  // 32-bit plane split and in-plane index math (box_copy checks the sizes).
  const int C = static_cast<int>(b.C), Wc = static_cast<int>(b.Wc);
  const int sW = static_cast<int>(b.src_W), dW = static_cast<int>(b.dst_W);
  for_plane_elems(
      pg, static_cast<int>(b.Hc * b.Wc),
      [&](int64_t plane) {
        const int n = static_cast<int>(plane) / C, c = static_cast<int>(plane) - n * C;
        return Span{src + ((n * b.src_C + b.sc0 + c) * b.src_H + b.sh0) * b.src_W + b.sw0,
                    dst + ((n * b.dst_C + b.dc0 + c) * b.dst_H + b.dh0) * b.dst_W + b.dw0};
      },
      [&](const Span& p, int q) {
        const int h = q / Wc, w = q - h * Wc;
        const float v = p.s[h * sW + w];
        float* o = p.d + h * dW + w;
        *o = b.accumulate ? *o + v : v;
      });
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
__global__ void gap_backward_kernel(PlaneGrid pg, const float* __restrict__ dy, float* __restrict__ dx, int HW,
                                    float inv) {
  for_plane_elems(
      pg, HW, [&](int64_t row) { return Span{dy + row, dx + row * HW}; },
      [&](const Span& p, int q) {
        const float g = *p.s * inv;
        p.d[q] = Acc ? p.d[q] + g : g;
      });
}

template <bool Acc>
__global__ void scale_rows_kernel(PlaneGrid pg, float* __restrict__ y, const float* __restrict__ x,
                                  const float* __restrict__ scale, int cols) {
  for_plane_elems(
      pg, cols, [&](int64_t row) { return row; },
      [&](int64_t row, int q) {
        const int64_t i = row * cols + q;
        const float v = scale[row] * x[i];
        y[i] = Acc ? y[i] + v : v;
      });
}

void check_planes(int64_t planes, int64_t plane_elems, const char* what) {
  MN_KCHECK(planes < 0x7fffffffLL && plane_elems < 0x7fffffffLL, what, ": ", planes, " planes of ", plane_elems,
            " elements exceed the 32-bit grid/index limit");
}

}  // namespace

void box_copy(const Context& c, const BoxCopy& b, const float* src, float* dst) {
  if (b.N * b.C * b.Hc * b.Wc <= 0) return;
  check_planes(b.N * b.C, std::max(b.src_H * b.src_W, b.dst_H * b.dst_W), "box_copy");
  const PlaneGrid pg = plane_grid(b.N * b.C, b.Hc * b.Wc);
  box_copy_kernel<<<pg.grid, kThreads, 0, c.stream>>>(b, pg, src, dst);
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
  check_planes(NC, HW, "global_avg_pool backward");
  const float inv = 1.f / static_cast<float>(HW);
  const PlaneGrid pg = plane_grid(NC, HW);
  const int hw = static_cast<int>(HW);
  if (accumulate)
    gap_backward_kernel<true><<<pg.grid, kThreads, 0, c.stream>>>(pg, dy, dx, hw, inv);
  else
    gap_backward_kernel<false><<<pg.grid, kThreads, 0, c.stream>>>(pg, dy, dx, hw, inv);
  MN_CUDA_LAUNCH_CHECK();
}

void scale_rows(const Context& c, float* y, const float* x, const float* scale, int64_t rows, int64_t cols,
                bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  check_planes(rows, cols, "scale_rows");
  const PlaneGrid pg = plane_grid(rows, cols);
  const int n = static_cast<int>(cols);
  if (accumulate)
    scale_rows_kernel<true><<<pg.grid, kThreads, 0, c.stream>>>(pg, y, x, scale, n);
  else
    scale_rows_kernel<false><<<pg.grid, kThreads, 0, c.stream>>>(pg, y, x, scale, n);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
