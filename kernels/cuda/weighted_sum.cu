// Hand-written kernel 1: the DARTS mixed-op weighted sum.
//   forward : y[i] = sum_k a_k(i) * xs[k][i]                     (K inputs, one pass)
//   backward: dxs[k][i] = a_k(i) * dy[i]  (k with dxs[k] != null) and
//             dw[k] (+)= sum_i dy[i] * xs[k][i] * rs_k(i)         in the same pass,
// with a_k(i) = w[k] * rs_k(i) and rs_k(i) = rs[k * rows + i / cols] the row
// (sample) scales of input k, the folded drop-path masks (1 when rs is null).
// How: the K input pointers travel by value in the kernel arguments (up to
// kMaxK per launch; more inputs are processed in chunks), so there is no
// host-to-device copy and the launch can be captured in a CUDA graph. Each
// thread reads dy and every xs[k] once (float4 when all pointers are 16-byte
// aligned), writes every dxs[k], and keeps K dot-product partials in
// registers; cub::BlockReduce reduces them per block, and a second tiny kernel
// adds the per-block partials in block order (double): no atomics, so dw is
// bitwise identical run to run.
// Bench: build/bin/kernel-bench --only weighted_sum (compares with the unfused
// chain of K axpby kernels + K dot products).
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {
constexpr int kMaxK = 8;  // inputs per launch (DARTS/MetaNAS use 7 or 8 primitives)

struct InPtrs {
  const float* p[kMaxK];
};
struct OutPtrs {
  float* p[kMaxK];
};

__device__ __forceinline__ float4 ld4(const float* p, int64_t i) { return reinterpret_cast<const float4*>(p)[i]; }
__device__ __forceinline__ void st4(float* p, int64_t i, float4 v) { reinterpret_cast<float4*>(p)[i] = v; }
__device__ __forceinline__ float4 fma4(float a, float4 x, float4 y) {
  return make_float4(fmaf(a, x.x, y.x), fmaf(a, x.y, y.y), fmaf(a, x.z, y.z), fmaf(a, x.w, y.w));
}
__device__ __forceinline__ float4 scale4(float a, float4 x) {
  return make_float4(a * x.x, a * x.y, a * x.z, a * x.w);
}
__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

// Row scales of a launch: rs (K x rows, this chunk's first row at rs), cols
// elements per row; rs null = all ones (a product with 1.f is exact, so the
// unscaled results keep their bits).
struct RowScales {
  const float* rs;
  int64_t rows, cols;
  __device__ __forceinline__ float at(int k, int64_t i) const { return rs ? __ldg(rs + k * rows + i / cols) : 1.f; }
};

// y (+)= sum_k a_k xs[k]; V = 4 processes float4 groups (n4 = n / 4 groups;
// with row scales cols % 4 == 0, so a group lies in one row).
template <bool Acc>
__global__ void forward_kernel(float* __restrict__ y, InPtrs xs, const float* __restrict__ w, RowScales R, int K,
                               int64_t n) {
  float wk[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) wk[k] = k < K ? w[k] : 0.f;
  MN_GRID_STRIDE(i, n) {
    float s = Acc ? y[i] : 0.f;
#pragma unroll
    for (int k = 0; k < kMaxK; ++k)
      if (k < K) s = fmaf(wk[k] * R.at(k, i), __ldg(xs.p[k] + i), s);
    y[i] = s;
  }
}

template <bool Acc>
__global__ void forward_kernel4(float* __restrict__ y, InPtrs xs, const float* __restrict__ w, RowScales R, int K,
                                int64_t n4) {
  float wk[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) wk[k] = k < K ? w[k] : 0.f;
  MN_GRID_STRIDE(i, n4) {
    float4 s = Acc ? ld4(y, i) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int k = 0; k < kMaxK; ++k)
      if (k < K) s = fma4(wk[k] * R.at(k, 4 * i), ld4(xs.p[k], i), s);
    st4(y, i, s);
  }
}

// One pass over dy and the xs: writes dxs, leaves per-block dot products in
// partial[blockIdx.x * K + k] (when partial != null).
template <bool Vec4>
__global__ void __launch_bounds__(kThreads) backward_kernel(OutPtrs dxs, InPtrs xs, const float* __restrict__ dy,
                                                            const float* __restrict__ w, RowScales R, int K,
                                                            int64_t n, float* __restrict__ partial) {
  float wk[kMaxK], acc[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) {
    wk[k] = k < K ? w[k] : 0.f;
    acc[k] = 0.f;
  }
  const bool want_dw = partial != nullptr;
  if (Vec4) {
    const int64_t n4 = n / 4;
    MN_GRID_STRIDE(i, n4) {
      const float4 g = ld4(dy, i);
#pragma unroll
      for (int k = 0; k < kMaxK; ++k) {
        if (k < K) {
          const float sc = R.at(k, 4 * i);
          if (dxs.p[k]) st4(dxs.p[k], i, scale4(wk[k] * sc, g));
          if (want_dw) acc[k] += sc * dot4(g, ld4(xs.p[k], i));
        }
      }
    }
  } else {
    MN_GRID_STRIDE(i, n) {
      const float g = dy[i];
#pragma unroll
      for (int k = 0; k < kMaxK; ++k) {
        if (k < K) {
          const float sc = R.at(k, i);
          if (dxs.p[k]) dxs.p[k][i] = wk[k] * sc * g;
          if (want_dw) acc[k] = fmaf(g * sc, __ldg(xs.p[k] + i), acc[k]);
        }
      }
    }
  }
  if (!want_dw) return;
  using BlockReduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) {
    if (k < K) {
      const float s = BlockReduce(temp).Sum(acc[k]);
      if (threadIdx.x == 0) partial[static_cast<int64_t>(blockIdx.x) * K + k] = s;
      __syncthreads();  // temp is reused by the next k
    }
  }
}

// dw[k] (+)= sum_b partial[b * K + k], one block per k, fixed order.
template <bool Acc>
__global__ void __launch_bounds__(kThreads) finalize_dw_kernel(float* dw, const float* partial, int blocks, int K) {
  const int k = blockIdx.x;
  double s = 0;
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) s += partial[static_cast<int64_t>(b) * K + k];
  using BlockReduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const double t = BlockReduce(temp).Sum(s);
  if (threadIdx.x == 0) dw[k] = Acc ? dw[k] + static_cast<float>(t) : static_cast<float>(t);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }
}  // namespace

void weighted_sum_forward(const Context& c, float* y, const float* const* xs, const float* w, const float* rs,
                          int64_t rows, int K, int64_t n) {
  if (n <= 0) return;
  if (K <= 0) {
    fill(c, y, 0.f, n);
    return;
  }
  for (int k0 = 0; k0 < K; k0 += kMaxK) {
    const int kc = std::min(kMaxK, K - k0);
    InPtrs in{};
    const RowScales R{rs ? rs + static_cast<int64_t>(k0) * rows : nullptr, rows, rs ? n / rows : n};
    bool vec = n % 4 == 0 && aligned16(y) && (!rs || R.cols % 4 == 0);
    for (int k = 0; k < kc; ++k) {
      in.p[k] = xs[k0 + k];
      vec = vec && aligned16(in.p[k]);
    }
    const bool acc = k0 > 0;  // later chunks add to the first chunk's result
    if (vec) {
      const int64_t n4 = n / 4;
      if (acc)
        forward_kernel4<true><<<grid_for(c, n4), kThreads, 0, c.stream>>>(y, in, w + k0, R, kc, n4);
      else
        forward_kernel4<false><<<grid_for(c, n4), kThreads, 0, c.stream>>>(y, in, w + k0, R, kc, n4);
    } else {
      if (acc)
        forward_kernel<true><<<grid_for(c, n), kThreads, 0, c.stream>>>(y, in, w + k0, R, kc, n);
      else
        forward_kernel<false><<<grid_for(c, n), kThreads, 0, c.stream>>>(y, in, w + k0, R, kc, n);
    }
    MN_CUDA_LAUNCH_CHECK();
  }
}

void weighted_sum_backward(const Context& c, float* const* dxs, float* dw, const float* dy, const float* const* xs,
                           const float* w, const float* rs, int64_t rows, int K, int64_t n, bool accumulate_w) {
  if (K <= 0) return;
  if (n <= 0) {
    if (dw && !accumulate_w) fill(c, dw, 0.f, K);
    return;
  }
  for (int k0 = 0; k0 < K; k0 += kMaxK) {
    const int kc = std::min(kMaxK, K - k0);
    InPtrs in{};
    OutPtrs out{};
    const RowScales R{rs ? rs + static_cast<int64_t>(k0) * rows : nullptr, rows, rs ? n / rows : n};
    bool vec = n % 4 == 0 && aligned16(dy) && (!rs || R.cols % 4 == 0);
    for (int k = 0; k < kc; ++k) {
      in.p[k] = xs[k0 + k];
      out.p[k] = dxs[k0 + k];
      vec = vec && aligned16(in.p[k]) && (!out.p[k] || aligned16(out.p[k]));
    }
    const unsigned blocks = grid_for(c, vec ? n / 4 : n);
    ScratchBuffer partial(*c.alloc, dw ? sizeof(float) * blocks * kc : 0);
    float* part = dw ? partial.as<float>() : nullptr;
    if (vec)
      backward_kernel<true><<<blocks, kThreads, 0, c.stream>>>(out, in, dy, w + k0, R, kc, n, part);
    else
      backward_kernel<false><<<blocks, kThreads, 0, c.stream>>>(out, in, dy, w + k0, R, kc, n, part);
    MN_CUDA_LAUNCH_CHECK();
    if (dw) {
      if (accumulate_w)
        finalize_dw_kernel<true><<<kc, kThreads, 0, c.stream>>>(dw + k0, part, static_cast<int>(blocks), kc);
      else
        finalize_dw_kernel<false><<<kc, kThreads, 0, c.stream>>>(dw + k0, part, static_cast<int>(blocks), kc);
      MN_CUDA_LAUNCH_CHECK();
    }
  }
}

}  // namespace metanas::kernels::cuda
