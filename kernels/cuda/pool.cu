// CUDA max / average pooling (square window, symmetric padding): padding
// never wins a max (argmax = h*W + w within the input plane, first maximum in
// window order) and an average divides by the real pixels only. Backwards are
// gathers (each input pixel sums the windows that contain it, in window
// order), so there are no atomics and results are reproducible. Index math
// in conv_math.cuh (tested on the host); grids from plane_grid.cuh (packed
// for small planes). Bench: benchmarks/kernel-bench.
#include "kernels/cuda/conv_math.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/plane_grid.cuh"

namespace metanas::kernels::cuda {

namespace {

PoolDims make_pool(const PoolGeom& g) {
  constexpr int64_t kMax = 0x7fffffff;
  MN_KCHECK(g.H * g.W < kMax && g.OH * g.OW < kMax && g.N * g.C < kMax, "pooling: shape too large (N=", g.N,
           " C=", g.C, " H=", g.H, " W=", g.W, ")");
  return PoolDims{static_cast<int>(g.H),  static_cast<int>(g.W),      static_cast<int>(g.OH),
                  static_cast<int>(g.OW), static_cast<int>(g.k),      static_cast<int>(g.stride),
                  static_cast<int>(g.pad)};
}

__global__ void max_forward_kernel(PlaneGrid pg, const float* __restrict__ x, float* __restrict__ y,
                                   int32_t* __restrict__ arg, PoolDims p) {
  const int ohw = p.OH * p.OW;
  for_plane_elems(
      pg, ohw, [&](int64_t plane) { return plane; },
      [&](int64_t plane, int q) {
        const int oh = q / p.OW, ow = q - oh * p.OW;
        int a;
        const float v = max_pool_point(x + plane * p.H * p.W, p, oh, ow, &a);
        y[plane * ohw + q] = v;
        arg[plane * ohw + q] = a;
      });
}

__global__ void max_backward_kernel(PlaneGrid pg, const float* __restrict__ dy, const int32_t* __restrict__ arg,
                                    float* __restrict__ dx, PoolDims p, bool accumulate) {
  const int hw = p.H * p.W;
  for_plane_elems(
      pg, hw, [&](int64_t plane) { return plane; },
      [&](int64_t plane, int q) {
        const int64_t ooff = plane * p.OH * p.OW;
        const int h = q / p.W, w = q - h * p.W;
        const float v = max_pool_backward_point(dy + ooff, arg + ooff, p, h, w);
        float* o = dx + plane * hw + q;
        *o = accumulate ? *o + v : v;
      });
}

__global__ void avg_forward_kernel(PlaneGrid pg, const float* __restrict__ x, float* __restrict__ y, PoolDims p) {
  const int ohw = p.OH * p.OW;
  for_plane_elems(
      pg, ohw, [&](int64_t plane) { return plane; },
      [&](int64_t plane, int q) {
        const int oh = q / p.OW, ow = q - oh * p.OW;
        y[plane * ohw + q] = avg_pool_point(x + plane * p.H * p.W, p, oh, ow);
      });
}

__global__ void avg_backward_kernel(PlaneGrid pg, const float* __restrict__ dy, float* __restrict__ dx, PoolDims p,
                                    bool accumulate) {
  const int hw = p.H * p.W;
  for_plane_elems(
      pg, hw, [&](int64_t plane) { return plane; },
      [&](int64_t plane, int q) {
        const int h = q / p.W, w = q - h * p.W;
        const float v = avg_pool_backward_point(dy + plane * p.OH * p.OW, p, h, w);
        float* o = dx + plane * hw + q;
        *o = accumulate ? *o + v : v;
      });
}

}  // namespace

void max_pool_forward(const Context& c, const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
  if (g.N * g.C * g.OH * g.OW <= 0) return;
  const PlaneGrid pg = plane_grid(g.N * g.C, g.OH * g.OW);
  max_forward_kernel<<<pg.grid, kThreads, 0, c.stream>>>(pg, x, y, argmax, make_pool(g));
  MN_CUDA_LAUNCH_CHECK();
}

void max_pool_backward(const Context& c, const PoolGeom& g, const float* dy, const int32_t* argmax, float* dx,
                       bool accumulate) {
  if (g.N * g.C * g.H * g.W <= 0) return;
  const PlaneGrid pg = plane_grid(g.N * g.C, g.H * g.W);
  max_backward_kernel<<<pg.grid, kThreads, 0, c.stream>>>(pg, dy, argmax, dx, make_pool(g), accumulate);
  MN_CUDA_LAUNCH_CHECK();
}

void avg_pool_forward(const Context& c, const PoolGeom& g, const float* x, float* y) {
  if (g.N * g.C * g.OH * g.OW <= 0) return;
  const PlaneGrid pg = plane_grid(g.N * g.C, g.OH * g.OW);
  avg_forward_kernel<<<pg.grid, kThreads, 0, c.stream>>>(pg, x, y, make_pool(g));
  MN_CUDA_LAUNCH_CHECK();
}

void avg_pool_backward(const Context& c, const PoolGeom& g, const float* dy, float* dx, bool accumulate) {
  if (g.N * g.C * g.H * g.W <= 0) return;
  const PlaneGrid pg = plane_grid(g.N * g.C, g.H * g.W);
  avg_backward_kernel<<<pg.grid, kThreads, 0, c.stream>>>(pg, dy, dx, make_pool(g), accumulate);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
