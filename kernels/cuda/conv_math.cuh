// Per-element index math of the hand-written depthwise convolution and the
// pooling kernels, as host+device functions: each CUDA thread calls one of
// these for its output element, and tests/cuda/kernel_math_test.cpp calls the
// same functions on the host against naive references (so the index math is
// checked even on machines without a GPU). Compiles as plain C++ too.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define MN_HD __host__ __device__ __forceinline__
#else
#define MN_HD inline
#endif

namespace metanas::kernels::cuda {

// Depthwise geometry in 32-bit ints (one plane is far below 2^31 elements).
struct DwGeom {
  int C, H, W, OH, OW;
  int KH, KW;
  int sh, sw, pt, pl, dh, dw;
};

MN_HD float relu_if(float v, bool relu) { return relu && !(v > 0.f) ? 0.f : v; }

// y[oh, ow] of one plane: sum_{kh,kw} w[kh, kw] * (relu) x[oh*sh - pt + kh*dh, ow*sw - pl + kw*dw].
// KH_/KW_ > 0 fix the kernel size at compile time; 0 reads it from d.
template <int KH_, int KW_, bool Relu>
MN_HD float dw_forward_point(const float* xp, const float* wk, const DwGeom& d, int oh, int ow) {
  const int KH = KH_ > 0 ? KH_ : d.KH, KW = KW_ > 0 ? KW_ : d.KW;
  const int ih0 = oh * d.sh - d.pt, iw0 = ow * d.sw - d.pl;
  float acc = 0.f;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (int kh = 0; kh < KH; ++kh) {
    const int ih = ih0 + kh * d.dh;
    if (ih < 0 || ih >= d.H) continue;
    const float* row = xp + ih * d.W;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
    for (int kw = 0; kw < KW; ++kw) {
      const int iw = iw0 + kw * d.dw;
      if (iw < 0 || iw >= d.W) continue;
      float v = row[iw];
      if (Relu) v = v > 0.f ? v : 0.f;
      acc += wk[kh * KW + kw] * v;
    }
  }
  return acc;
}

// dx[ih, iw] of one plane (before the ReLU mask): the outputs whose window
// tap (kh, kw) reads (ih, iw) are oh = (ih + pt - kh*dh) / sh when that
// division is exact and lands in [0, OH) (same for w).
template <int KH_, int KW_>
MN_HD float dw_backward_data_point(const float* dyp, const float* wk, const DwGeom& d, int ih, int iw) {
  const int KH = KH_ > 0 ? KH_ : d.KH, KW = KW_ > 0 ? KW_ : d.KW;
  float acc = 0.f;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (int kh = 0; kh < KH; ++kh) {
    const int th = ih + d.pt - kh * d.dh;
    if (th < 0) continue;
    const int oh = th / d.sh;
    if (oh * d.sh != th || oh >= d.OH) continue;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
    for (int kw = 0; kw < KW; ++kw) {
      const int tw = iw + d.pl - kw * d.dw;
      if (tw < 0) continue;
      const int ow = tw / d.sw;
      if (ow * d.sw != tw || ow >= d.OW) continue;
      acc += wk[kh * KW + kw] * dyp[oh * d.OW + ow];
    }
  }
  return acc;
}

// The input element read by output (oh, ow) at tap (kh, kw), or 0 outside the image.
MN_HD float dw_tap_input(const float* xp, const DwGeom& d, int oh, int ow, int kh, int kw, bool relu) {
  const int ih = oh * d.sh - d.pt + kh * d.dh, iw = ow * d.sw - d.pl + kw * d.dw;
  if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) return 0.f;
  return relu_if(xp[ih * d.W + iw], relu);
}

// Pooling geometry (square window, symmetric padding), 32-bit.
struct PoolDims {
  int H, W, OH, OW, k, stride, pad;
};

// Max over the real pixels of window (oh, ow); *arg = h*W + w of the first
// maximum in row-major window order (padding never wins).
MN_HD float max_pool_point(const float* xp, const PoolDims& p, int oh, int ow, int* arg) {
  const int h0 = oh * p.stride - p.pad, w0 = ow * p.stride - p.pad;
  float best = 0.f;
  int bi = -1;
  for (int h = h0 < 0 ? 0 : h0; h < h0 + p.k && h < p.H; ++h)
    for (int w = w0 < 0 ? 0 : w0; w < w0 + p.k && w < p.W; ++w) {
      const float v = xp[h * p.W + w];
      if (bi < 0 || v > best) {
        best = v;
        bi = h * p.W + w;
      }
    }
  *arg = bi;
  return best;
}

// Number of real pixels in window (oh, ow) (the average pool's divisor).
MN_HD int pool_count(const PoolDims& p, int oh, int ow) {
  const int h0 = oh * p.stride - p.pad, w0 = ow * p.stride - p.pad;
  const int hs = h0 < 0 ? 0 : h0, ws = w0 < 0 ? 0 : w0;
  const int he = h0 + p.k < p.H ? h0 + p.k : p.H, we = w0 + p.k < p.W ? w0 + p.k : p.W;
  return (he - hs) * (we - ws);
}

MN_HD float avg_pool_point(const float* xp, const PoolDims& p, int oh, int ow) {
  const int h0 = oh * p.stride - p.pad, w0 = ow * p.stride - p.pad;
  float s = 0.f;
  for (int h = h0 < 0 ? 0 : h0; h < h0 + p.k && h < p.H; ++h)
    for (int w = w0 < 0 ? 0 : w0; w < w0 + p.k && w < p.W; ++w) s += xp[h * p.W + w];
  const int n = pool_count(p, oh, ow);
  return n > 0 ? s / static_cast<float>(n) : 0.f;
}

// The output windows containing input pixel (h, w): oh in [*oh0, *oh1), ow in [*ow0, *ow1).
MN_HD void pool_windows_of(const PoolDims& p, int h, int w, int* oh0, int* oh1, int* ow0, int* ow1) {
  // oh*stride - pad <= h <= oh*stride - pad + k - 1
  const int hp = h + p.pad, wp = w + p.pad;
  int a = hp - p.k + 1;
  a = a <= 0 ? 0 : (a + p.stride - 1) / p.stride;
  int b = hp / p.stride + 1;
  *oh0 = a;
  *oh1 = b < p.OH ? b : p.OH;
  a = wp - p.k + 1;
  a = a <= 0 ? 0 : (a + p.stride - 1) / p.stride;
  b = wp / p.stride + 1;
  *ow0 = a;
  *ow1 = b < p.OW ? b : p.OW;
}

// dx[h, w] of one plane, max pool: the dy of every window whose argmax is this pixel.
MN_HD float max_pool_backward_point(const float* dyp, const int32_t* argp, const PoolDims& p, int h, int w) {
  int oh0, oh1, ow0, ow1;
  pool_windows_of(p, h, w, &oh0, &oh1, &ow0, &ow1);
  const int self = h * p.W + w;
  float s = 0.f;
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow = ow0; ow < ow1; ++ow)
      if (argp[oh * p.OW + ow] == self) s += dyp[oh * p.OW + ow];
  return s;
}

// dx[h, w] of one plane, average pool: sum of dy / count over the windows containing the pixel.
MN_HD float avg_pool_backward_point(const float* dyp, const PoolDims& p, int h, int w) {
  int oh0, oh1, ow0, ow1;
  pool_windows_of(p, h, w, &oh0, &oh1, &ow0, &ow1);
  float s = 0.f;
  for (int oh = oh0; oh < oh1; ++oh)
    for (int ow = ow0; ow < ow1; ++ow) s += dyp[oh * p.OW + ow] / static_cast<float>(pool_count(p, oh, ow));
  return s;
}

}  // namespace metanas::kernels::cuda
