// Hand-written kernel 2: depthwise convolution (groups == Cin == Cout, weight
// [C, 1, KH, KW]) with ReLU of the input fused into every read, as used by the
// MetaNAS/DARTS blocks ReLU -> depthwise -> pointwise -> BN:
//   forward        y[n,c,oh,ow]  = sum_{kh,kw} w[c,kh,kw] * relu(x)[n,c,oh*s-pt+kh*d, ow*s-pl+kw*d]
//   backward-data  dx[n,c,h,w]  (+)= (x > 0) * sum over the taps reading (h, w) of w * dy
//   backward-weight dw[c,kh,kw] (+)= sum_{n,oh,ow} dy[n,c,oh,ow] * relu(x)[...]
// Kernel sizes 3x3 (dilation 1 and 2), 5x5, 1x5 and 5x1 are compiled with the
// window unrolled and the weights in registers; any other size runs the same
// code with a runtime window. Strides, dilations and (asymmetric) padding are
// runtime. The index math lives in conv_math.cuh (tested on the host).
// How: forward and backward-data are gathers with one thread per output /
// input element (grid.x = the N*C planes, grid.y tiles a plane), so no
// atomics and 32-bit index math inside a plane; neighbouring threads share
// their window reads through L1. backward-weight splits each channel's
// N*OH*OW products into a size-determined number of chunks, reduces each
// chunk's taps with cub::BlockReduce, then sums the chunks in order: bitwise
// reproducible run to run.
// Bench: build/bin/kernel-bench --only depthwise (compares with cuDNN's
// grouped convolution and with the unfused ReLU kernel + depthwise).
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda/conv_math.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/plane_grid.cuh"

namespace metanas::kernels::cuda {

namespace {

DwGeom make_dw(const ConvGeom& g) {
  return DwGeom{static_cast<int>(g.Cin),      static_cast<int>(g.H),        static_cast<int>(g.W),
                static_cast<int>(g.OH),       static_cast<int>(g.OW),       static_cast<int>(g.KH),
                static_cast<int>(g.KW),       static_cast<int>(g.stride_h), static_cast<int>(g.stride_w),
                static_cast<int>(g.pad_top),  static_cast<int>(g.pad_left), static_cast<int>(g.dil_h),
                static_cast<int>(g.dil_w)};
}

void check_dw(const ConvGeom& g, const char* what) {
  constexpr int64_t kMax = 0x7fffffff;
  MN_KCHECK(g.H * g.W < kMax && g.OH * g.OW < kMax && g.N * g.OH * g.OW < kMax && g.N * g.Cin < kMax &&
               g.KH * g.KW < kMax,
           what, ": shape too large for the depthwise kernel's 32-bit plane indexing (N=", g.N, " C=", g.Cin,
           " H=", g.H, " W=", g.W, ")");
}

template <int KH, int KW, bool Relu>
__global__ void __launch_bounds__(kThreads) forward_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                                           float* __restrict__ y, DwGeom d) {
  const int64_t plane = blockIdx.x;
  const int c = static_cast<int>(plane % d.C);
  const int ohw = d.OH * d.OW;
  const float* xp = x + plane * d.H * d.W;
  float* yp = y + plane * ohw;
  const float* wg = w + static_cast<int64_t>(c) * d.KH * d.KW;
  if constexpr (KH > 0) {
    float wk[KH * KW];
#pragma unroll
    for (int t = 0; t < KH * KW; ++t) wk[t] = __ldg(wg + t);
    for (int q = blockIdx.y * blockDim.x + threadIdx.x; q < ohw; q += gridDim.y * blockDim.x) {
      const int oh = q / d.OW, ow = q - oh * d.OW;
      yp[q] = dw_forward_point<KH, KW, Relu>(xp, wk, d, oh, ow);
    }
  } else {
    for (int q = blockIdx.y * blockDim.x + threadIdx.x; q < ohw; q += gridDim.y * blockDim.x) {
      const int oh = q / d.OW, ow = q - oh * d.OW;
      yp[q] = dw_forward_point<0, 0, Relu>(xp, wg, d, oh, ow);
    }
  }
}

template <int KH, int KW, bool Relu>
__global__ void __launch_bounds__(kThreads) backward_data_kernel(const float* __restrict__ dy,
                                                                 const float* __restrict__ w,
                                                                 const float* __restrict__ x, float* __restrict__ dx,
                                                                 DwGeom d, bool accumulate) {
  const int64_t plane = blockIdx.x;
  const int c = static_cast<int>(plane % d.C);
  const int hw = d.H * d.W;
  const float* dyp = dy + plane * d.OH * d.OW;
  const float* xp = Relu ? x + plane * hw : nullptr;
  float* dxp = dx + plane * hw;
  const float* wg = w + static_cast<int64_t>(c) * d.KH * d.KW;
  float wreg[KH > 0 ? KH * KW : 1];
  if constexpr (KH > 0) {
#pragma unroll
    for (int t = 0; t < KH * KW; ++t) wreg[t] = __ldg(wg + t);
  }
  const float* wk = KH > 0 ? wreg : wg;
  for (int q = blockIdx.y * blockDim.x + threadIdx.x; q < hw; q += gridDim.y * blockDim.x) {
    const int h = q / d.W, wc = q - h * d.W;
    float v = dw_backward_data_point<KH, KW>(dyp, wk, d, h, wc);
    if (Relu && !(xp[q] > 0.f)) v = 0.f;
    dxp[q] = accumulate ? dxp[q] + v : v;
  }
}

// Compile-time window: every thread keeps KH*KW partial sums for its share
// of chunk (blockIdx.y) of channel blockIdx.x.
template <int KH, int KW, bool Relu>
__global__ void __launch_bounds__(kThreads) backward_weight_kernel(const float* __restrict__ x,
                                                                   const float* __restrict__ dy,
                                                                   float* __restrict__ partial, DwGeom d, int N,
                                                                   int chunk) {
  constexpr int KK = KH * KW;
  const int c = blockIdx.x, s = blockIdx.y, S = gridDim.y;
  const int ohw = d.OH * d.OW, total = N * ohw;
  const int j0 = s * chunk, j1 = min(total, j0 + chunk);
  float acc[KK];
#pragma unroll
  for (int t = 0; t < KK; ++t) acc[t] = 0.f;
  for (int j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
    const int n = j / ohw, q = j - n * ohw;
    const int oh = q / d.OW, ow = q - oh * d.OW;
    const int64_t plane = static_cast<int64_t>(n) * d.C + c;
    const float g = dy[plane * ohw + q];
    const float* xp = x + plane * d.H * d.W;
#pragma unroll
    for (int kh = 0; kh < KH; ++kh)
#pragma unroll
      for (int kw = 0; kw < KW; ++kw) acc[kh * KW + kw] += g * dw_tap_input(xp, d, oh, ow, kh, kw, Relu);
  }
  using BlockReduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  float* out = partial + (static_cast<int64_t>(c) * S + s) * KK;
#pragma unroll
  for (int t = 0; t < KK; ++t) {
    const float v = BlockReduce(temp).Sum(acc[t]);
    if (threadIdx.x == 0) out[t] = v;
    __syncthreads();
  }
}

// Runtime window: the same reduction one tap at a time.
template <bool Relu>
__global__ void __launch_bounds__(kThreads) backward_weight_generic_kernel(const float* __restrict__ x,
                                                                           const float* __restrict__ dy,
                                                                           float* __restrict__ partial, DwGeom d,
                                                                           int N, int chunk) {
  const int KK = d.KH * d.KW;
  const int c = blockIdx.x, s = blockIdx.y, S = gridDim.y;
  const int ohw = d.OH * d.OW, total = N * ohw;
  const int j0 = s * chunk, j1 = min(total, j0 + chunk);
  using BlockReduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  float* out = partial + (static_cast<int64_t>(c) * S + s) * KK;
  for (int t = 0; t < KK; ++t) {
    const int kh = t / d.KW, kw = t - kh * d.KW;
    float acc = 0.f;
    for (int j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
      const int n = j / ohw, q = j - n * ohw;
      const int oh = q / d.OW, ow = q - oh * d.OW;
      const int64_t plane = static_cast<int64_t>(n) * d.C + c;
      acc += dy[plane * ohw + q] * dw_tap_input(x + plane * d.H * d.W, d, oh, ow, kh, kw, Relu);
    }
    const float v = BlockReduce(temp).Sum(acc);
    if (threadIdx.x == 0) out[t] = v;
    __syncthreads();
  }
}

// dw[c, t] (+)= sum_s partial[(c*S + s)*KK + t], in chunk order.
__global__ void finalize_weight_kernel(float* dw, const float* partial, int C, int S, int KK, bool accumulate) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= C * KK) return;
  const int c = i / KK, t = i - c * KK;
  float s = 0.f;
  for (int k = 0; k < S; ++k) s += partial[(static_cast<int64_t>(c) * S + k) * KK + t];
  dw[i] = accumulate ? dw[i] + s : s;
}

// Calls f(integral_constant KH, integral_constant KW) for the compiled
// window sizes, or with (0, 0) for a runtime window.
template <typename F>
void with_window(int64_t KH, int64_t KW, F f) {
  using std::integral_constant;
  if (KH == 3 && KW == 3) f(integral_constant<int, 3>{}, integral_constant<int, 3>{});
  else if (KH == 5 && KW == 5) f(integral_constant<int, 5>{}, integral_constant<int, 5>{});
  else if (KH == 1 && KW == 5) f(integral_constant<int, 1>{}, integral_constant<int, 5>{});
  else if (KH == 5 && KW == 1) f(integral_constant<int, 5>{}, integral_constant<int, 1>{});
  else f(integral_constant<int, 0>{}, integral_constant<int, 0>{});
}

}  // namespace

bool depthwise_applies(const ConvGeom& g) {
  return g.groups > 1 && g.groups == g.Cin && g.Cout == g.Cin;
}

void depthwise_forward(const Context& c, const ConvGeom& g, const float* x, const float* w, float* y) {
  if (g.N * g.Cin * g.OH * g.OW <= 0) return;
  check_dw(g, "depthwise conv forward");
  const DwGeom d = make_dw(g);
  const dim3 grid = plane_tiles(g.N * g.Cin, g.OH * g.OW);
  with_window(g.KH, g.KW, [&](auto kh, auto kw) {
    constexpr int KH = decltype(kh)::value, KW = decltype(kw)::value;
    if (g.relu_input)
      forward_kernel<KH, KW, true><<<grid, kThreads, 0, c.stream>>>(x, w, y, d);
    else
      forward_kernel<KH, KW, false><<<grid, kThreads, 0, c.stream>>>(x, w, y, d);
  });
  MN_CUDA_LAUNCH_CHECK();
}

void depthwise_backward_data(const Context& c, const ConvGeom& g, const float* dy, const float* w, const float* x,
                             float* dx, bool accumulate) {
  if (g.N * g.Cin * g.H * g.W <= 0) return;
  check_dw(g, "depthwise conv backward-data");
  MN_KCHECK(!g.relu_input || x, "depthwise conv backward-data: relu_input needs the input x");
  const DwGeom d = make_dw(g);
  const dim3 grid = plane_tiles(g.N * g.Cin, g.H * g.W);
  with_window(g.KH, g.KW, [&](auto kh, auto kw) {
    constexpr int KH = decltype(kh)::value, KW = decltype(kw)::value;
    if (g.relu_input)
      backward_data_kernel<KH, KW, true><<<grid, kThreads, 0, c.stream>>>(dy, w, x, dx, d, accumulate);
    else
      backward_data_kernel<KH, KW, false><<<grid, kThreads, 0, c.stream>>>(dy, w, x, dx, d, accumulate);
  });
  MN_CUDA_LAUNCH_CHECK();
}

void depthwise_backward_weight(const Context& c, const ConvGeom& g, const float* x, const float* dy, float* dw,
                               bool accumulate) {
  const int64_t KK = g.KH * g.KW, C = g.Cin;
  if (C * KK <= 0) return;
  const int64_t total = g.N * g.OH * g.OW;
  if (total <= 0) {
    if (!accumulate) fill(c, dw, 0.f, C * KK);
    return;
  }
  check_dw(g, "depthwise conv backward-weight");
  // Chunks per channel depend only on the shape (determinism): ~2048
  // products per block, at most 64 chunks.
  const int64_t S = std::min<int64_t>(64, (total + 2047) / 2048);
  const int64_t chunk = (total + S - 1) / S;
  MN_KCHECK(S <= 65535, "depthwise conv backward-weight: too many chunks");
  ScratchBuffer partial(*c.alloc, sizeof(float) * static_cast<size_t>(C * S * KK));
  const DwGeom d = make_dw(g);
  const dim3 grid(static_cast<unsigned>(C), static_cast<unsigned>(S));
  const int n = static_cast<int>(g.N), ch = static_cast<int>(chunk);
  float* part = partial.as<float>();
  with_window(g.KH, g.KW, [&](auto kh, auto kw) {
    constexpr int KH = decltype(kh)::value, KW = decltype(kw)::value;
    if constexpr (KH > 0) {
      if (g.relu_input)
        backward_weight_kernel<KH, KW, true><<<grid, kThreads, 0, c.stream>>>(x, dy, part, d, n, ch);
      else
        backward_weight_kernel<KH, KW, false><<<grid, kThreads, 0, c.stream>>>(x, dy, part, d, n, ch);
    } else {
      if (g.relu_input)
        backward_weight_generic_kernel<true><<<grid, kThreads, 0, c.stream>>>(x, dy, part, d, n, ch);
      else
        backward_weight_generic_kernel<false><<<grid, kThreads, 0, c.stream>>>(x, dy, part, d, n, ch);
    }
  });
  MN_CUDA_LAUNCH_CHECK();
  const int64_t outs = C * KK;
  finalize_weight_kernel<<<static_cast<unsigned>((outs + kThreads - 1) / kThreads), kThreads, 0, c.stream>>>(
      dw, part, static_cast<int>(C), static_cast<int>(S), static_cast<int>(KK), accumulate);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
