// CPU 2-D convolution (NCHW, no bias): forward, backward-data, backward-weight.
// Three paths: depthwise (groups == Cin == Cout) uses a direct per-plane kernel
// over a padded, stride-phase-split copy of the input, so every tap reads a
// contiguous run for any stride and dilation and an output row is one
// vectorised pass over all taps (stride-1 backward-data is the same kernel on
// zero-extended dy with the flipped filter); 1x1 stride-1 unpadded convs are
// plain GEMMs; everything else is im2col + GEMM per (sample, group). Work is
// split over (sample, group) items (OpenBLAS then runs serially in each
// thread; with fewer items than threads they run in turn and OpenBLAS
// threads each GEMM). Weight gradients are summed per fixed sample chunk and
// the chunks added in order, so results do not depend on the thread count.
// With METANAS_CPU_CONV=dnnl, oneDNN takes the cases it is faster on first
// (conv_library.cpp, plugin dnnl/conv_dnnl.cpp). Bench: benchmarks/engine-bench, benchmarks/conv-lib.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

namespace {

constexpr int64_t kMaxWeightChunks = 16;               // partial dW buffers (fixed: determinism)
constexpr int64_t kPartialBudget = 32ll << 20;          // bytes of partial dW buffers at most
constexpr int64_t kParallelMinFlops = 1 << 16;          // below this a conv runs on one thread

inline float relu_if(float v, bool relu) { return relu ? std::max(v, 0.f) : v; }

bool is_depthwise(const ConvGeom& g) { return g.groups > 1 && g.groups == g.Cin && g.groups == g.Cout; }

bool is_pointwise(const ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
         g.pad_bottom == 0 && g.pad_left == 0 && g.pad_right == 0;
}

int64_t forward_flops(const ConvGeom& g) {
  return 2 * g.N * g.Cout * g.OH * g.OW * (g.Cin / g.groups) * g.KH * g.KW;
}

// Output columns ow whose input column ow*s + off - pad lies in [0, W): [lo, hi).
inline void valid_range(int64_t out, int64_t in, int64_t stride, int64_t off, int64_t& lo,
                        int64_t& hi) {
  // need 0 <= ow*stride + off < in
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = in - off <= 0 ? 0 : (in - off + stride - 1) / stride;
  lo = std::min(lo, out);
  hi = std::max(lo, std::min(hi, out));
}

// ---------------------------------------------------------------------------
// im2col / col2im for one group of one sample.
// col[(c*KH + kh)*KW + kw][oh*OW + ow] = x[c][oh*sh + kh*dh - pt][ow*sw + kw*dw - pl]
// ---------------------------------------------------------------------------
void im2col(const ConvGeom& g, const float* x, int64_t C, float* col) {
  const int64_t OHW = g.OH * g.OW;
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        float* row = col + ((c * g.KH + kh) * g.KW + kw) * OHW;
        const int64_t woff = kw * g.dil_w - g.pad_left;
        int64_t lo, hi;
        valid_range(g.OW, g.W, g.stride_w, woff, lo, hi);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          float* r = row + oh * g.OW;
          const int64_t ih = oh * g.stride_h + kh * g.dil_h - g.pad_top;
          if (ih < 0 || ih >= g.H) {
            std::fill(r, r + g.OW, 0.f);
            continue;
          }
          const float* xr = xc + ih * g.W + woff;
          // Rows are short (7..28 floats) and the edges 0..2: inline loops, no
          // libc calls (CMakeLists.txt builds this file without
          // -ftree-loop-distribute-patterns, which would make them memset/memcpy).
          for (int64_t ow = 0; ow < lo; ++ow) r[ow] = 0.f;
          if (g.stride_w == 1) {
            if (g.relu_input)
              for (int64_t ow = lo; ow < hi; ++ow) r[ow] = std::max(xr[ow], 0.f);
            else
              for (int64_t ow = lo; ow < hi; ++ow) r[ow] = xr[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] = relu_if(xr[ow * g.stride_w], g.relu_input);
          }
          for (int64_t ow = hi; ow < g.OW; ++ow) r[ow] = 0.f;
        }
      }
    }
  }
}

// dx[c] += scatter of col (dx must be zeroed by the caller).
void col2im(const ConvGeom& g, const float* col, int64_t C, float* dx) {
  const int64_t OHW = g.OH * g.OW;
  for (int64_t c = 0; c < C; ++c) {
    float* dc = dx + c * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float* row = col + ((c * g.KH + kh) * g.KW + kw) * OHW;
        const int64_t woff = kw * g.dil_w - g.pad_left;
        int64_t lo, hi;
        valid_range(g.OW, g.W, g.stride_w, woff, lo, hi);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.stride_h + kh * g.dil_h - g.pad_top;
          if (ih < 0 || ih >= g.H) continue;
          const float* r = row + oh * g.OW;
          float* dr = dc + ih * g.W + woff;
          if (g.stride_w == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) dr[ow] += r[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dr[ow * g.stride_w] += r[ow];
          }
        }
      }
    }
  }
}

// dst (+)= src * (x > 0 when relu) over n elements. The mask is a select on
// unconditionally loaded values: a branch on the sign of x mispredicts half
// the time on real activations (it cost 20x the kernel's arithmetic).
void write_grad(float* __restrict dst, const float* __restrict src, const float* __restrict x,
                bool relu, bool accumulate, int64_t n) {
  if (relu) {
    if (accumulate)
      for (int64_t i = 0; i < n; ++i) {
        const float v = src[i], d = dst[i];
        dst[i] = d + (x[i] > 0.f ? v : 0.f);
      }
    else
      for (int64_t i = 0; i < n; ++i) {
        const float v = src[i];
        dst[i] = x[i] > 0.f ? v : 0.f;
      }
  } else {
    if (accumulate)
      for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
    else
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  }
}

// This thread's scratch of at least `floats` floats, kept between calls and
// not cleared: every user writes all of it before reading. (A fresh zeroed
// vector per call cost a memset, and above malloc's mmap threshold a page
// fault per 4 KiB, of up to a few MB per convolution: 8% of a 4-conv task.)
float* thread_scratch(int64_t floats) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < floats) {
    std::vector<float>().swap(buf);
    buf.resize(static_cast<size_t>(floats));
  }
  return buf.data();
}

// Runs body(item, thread_scratch) for item in [0, items). When there are
// enough items every thread takes whole items and GEMMs run single-threaded;
// otherwise items run one after another and OpenBLAS threads each GEMM.
template <typename Body>
void for_items(int64_t items, int64_t scratch_floats, bool parallel, Body body) {
  const int threads = omp_get_max_threads();
  if (parallel && threads > 1 && items >= threads) {
#pragma omp parallel
    {
      float* scratch = thread_scratch(scratch_floats);
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < items; ++i) body(i, scratch);
    }
  } else {
    float* scratch = thread_scratch(scratch_floats);
    for (int64_t i = 0; i < items; ++i) body(i, scratch);
  }
}

// ---------------------------------------------------------------------------
// Depthwise direct kernel.
// A plane is copied (relu applied) into a zero-padded buffer split into
// `stride_w` column phases: phase p holds padded columns p, p+s, p+2s, ...
// Then the tap (kh, kw) for output row oh reads the contiguous run
// phase[(kw*dw) % s][oh*sh + kh*dh][(kw*dw)/s + ow], ow = 0..OW-1.
// ---------------------------------------------------------------------------
struct PhaseLayout {
  int64_t Hp, Wp, Wq, s;
  PhaseLayout(int64_t rows, int64_t cols, int64_t stride)
      : Hp(rows), Wp(cols), Wq((cols + stride - 1) / stride), s(stride) {}
  explicit PhaseLayout(const ConvGeom& g)
      : PhaseLayout(g.H + g.pad_top + g.pad_bottom, g.W + g.pad_left + g.pad_right, g.stride_w) {}
  int64_t floats() const { return s * Hp * Wq; }
  // Start of the run read by tap column offset cw (= kw * dil_w) in padded row r.
  int64_t run(int64_t r, int64_t cw) const { return ((cw % s) * Hp + r) * Wq + cw / s; }
  // Phase-p entries j of padded row r holding source columns j*s + p - left in [0, n): [lo, hi).
  void valid(int64_t p, int64_t left, int64_t n, int64_t& lo, int64_t& hi) const {
    const int64_t a = left - p;  // need j*s >= a and j*s < n + a
    lo = a <= 0 ? 0 : (a + s - 1) / s;
    hi = n + a <= 0 ? 0 : std::min(Wq, (n + a + s - 1) / s);
    hi = std::max(lo, hi);
  }
};

// Copies rows x[0..rows) of width n into the phase buffer at padded (top, left), relu'd when asked.
void fill_phases(const PhaseLayout& L, const float* x, int64_t rows, int64_t n, int64_t top,
                 int64_t left, bool relu, float* buf) {
  std::fill(buf, buf + L.floats(), 0.f);
  for (int64_t i = 0; i < rows; ++i) {
    const float* __restrict xr = x + i * n;
    const int64_t r = i + top;
    if (L.s == 1) {
      float* __restrict dst = buf + r * L.Wq + left;
      if (relu)
        for (int64_t j = 0; j < n; ++j) dst[j] = std::max(xr[j], 0.f);
      else
        std::memcpy(dst, xr, static_cast<size_t>(n) * sizeof(float));
      continue;
    }
    for (int64_t p = 0; p < L.s; ++p) {
      int64_t lo, hi;
      L.valid(p, left, n, lo, hi);
      float* __restrict dst = buf + (p * L.Hp + r) * L.Wq;
      const float* src = xr + p - left;
      for (int64_t j = lo; j < hi; ++j) dst[j] = relu_if(src[j * L.s], relu);
    }
  }
}

// out[o] = sum_t w[t] * src[t][o], o < len, taps summed in order. With the tap
// count fixed at compile time the tap loop unrolls and o vectorises, so each
// output is written once instead of once per tap.
template <int T>
void taps_row(float* __restrict out, const float* const* src, const float* w, int64_t len) {
  const float* s[T];
  float wt[T];
  for (int t = 0; t < T; ++t) {
    s[t] = src[t];
    wt[t] = w[t];
  }
  for (int64_t o = 0; o < len; ++o) {
    float acc = 0.f;
#pragma GCC unroll 32
    for (int t = 0; t < T; ++t) acc += wt[t] * s[t][o];
    out[o] = acc;
  }
}

void taps_row_any(float* __restrict out, const float* const* src, const float* w, int64_t T,
                  int64_t len) {
  switch (T) {
    case 9: return taps_row<9>(out, src, w, len);
    case 25: return taps_row<25>(out, src, w, len);
    case 5: return taps_row<5>(out, src, w, len);
    default: break;
  }
  std::fill(out, out + len, 0.f);
  for (int64_t t = 0; t < T; ++t) {
    const float* __restrict st = src[t];
    const float wv = w[t];
    for (int64_t o = 0; o < len; ++o) out[o] += wv * st[o];
  }
}

// Runs body(plane, thread_buffer, thread_pointer_array) over the N*C planes.
template <typename Body>
void for_planes(const ConvGeom& g, int64_t buf_floats, Body body) {
  const int64_t planes = g.N * g.Cin;
#pragma omp parallel if (forward_flops(g) >= kParallelMinFlops)
  {
    float* buf = thread_scratch(buf_floats);  // every body fills what it reads
    std::vector<const float*> ptrs(static_cast<size_t>(g.KH * g.KW));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) body(p, buf, ptrs.data());
  }
}

void depthwise_forward(const ConvGeom& g, const float* x, const float* w, float* y) {
  const PhaseLayout L(g);
  const int64_t KK = g.KH * g.KW, HW = g.H * g.W, OHW = g.OH * g.OW;
  for_planes(g, L.floats(), [&](int64_t p, float* buf, const float** src) {
    fill_phases(L, x + p * HW, g.H, g.W, g.pad_top, g.pad_left, g.relu_input, buf);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw)
          src[kh * g.KW + kw] = buf + L.run(oh * g.stride_h + kh * g.dil_h, kw * g.dil_w);
      taps_row_any(y + p * OHW + oh * g.OW, src, w + (p % g.Cin) * KK, KK, g.OW);
    }
  });
}

void depthwise_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                             float* dx, bool accumulate) {
  const int64_t KK = g.KH * g.KW, HW = g.H * g.W, OHW = g.OH * g.OW;
  const int64_t A = (g.KH - 1) * g.dil_h, B = (g.KW - 1) * g.dil_w;  // dilated kernel extent - 1
  if (g.stride_h == 1 && g.stride_w == 1) {
    // Stride 1: dx is dy, zero-extended by (A, B) rows/columns, correlated
    // with the flipped kernel: dx[i][j] = sum wf[kh][kw] * Q[i + pt + kh*dh][j + pl + kw*dw],
    // Q[a][b] = dy[a - A][b - B]. Same row kernel as the forward.
    const PhaseLayout Q(g.H + g.pad_top + A, g.W + g.pad_left + B, 1);
    for_planes(g, Q.floats() + g.W + KK, [&](int64_t p, float* buf, const float** src) {
      float* row = buf + Q.floats();
      float* wf = row + g.W;
      const float* wc = w + (p % g.Cin) * KK;
      for (int64_t t = 0; t < KK; ++t) wf[t] = wc[KK - 1 - t];
      const int64_t rows = std::min(g.OH, Q.Hp - A), cols = std::min(g.OW, Q.Wp - B);
      std::fill(buf, buf + Q.floats(), 0.f);
      for (int64_t i = 0; i < rows; ++i)
        std::memcpy(buf + (i + A) * Q.Wq + B, dy + p * OHW + i * g.OW,
                    static_cast<size_t>(cols) * sizeof(float));
      for (int64_t ih = 0; ih < g.H; ++ih) {
        for (int64_t kh = 0; kh < g.KH; ++kh)
          for (int64_t kw = 0; kw < g.KW; ++kw)
            src[kh * g.KW + kw] = buf + (ih + g.pad_top + kh * g.dil_h) * Q.Wq + g.pad_left + kw * g.dil_w;
        taps_row_any(row, src, wf, KK, g.W);
        const int64_t off = p * HW + ih * g.W;
        write_grad(dx + off, row, g.relu_input ? x + off : nullptr, g.relu_input, accumulate, g.W);
      }
    });
    return;
  }
  // Strided: scatter dy into the padded phase-split gradient, then gather.
  const PhaseLayout L(g);
  for_planes(g, L.floats() + g.W, [&](int64_t p, float* buf, const float**) {
    const float* wc = w + (p % g.Cin) * KK;
    std::fill(buf, buf + L.floats(), 0.f);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const float* __restrict dyr = dy + p * OHW + oh * g.OW;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t r = oh * g.stride_h + kh * g.dil_h;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          float* __restrict dst = buf + L.run(r, kw * g.dil_w);
          const float wv = wc[kh * g.KW + kw];
          for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] += wv * dyr[ow];
        }
      }
    }
    float* row = buf + L.floats();
    for (int64_t ih = 0; ih < g.H; ++ih) {
      const int64_t r = ih + g.pad_top;
      for (int64_t ph = 0; ph < L.s; ++ph) {
        int64_t lo, hi;
        L.valid(ph, g.pad_left, g.W, lo, hi);
        const float* __restrict src = buf + (ph * L.Hp + r) * L.Wq;
        float* dst = row + ph - g.pad_left;
        for (int64_t j = lo; j < hi; ++j) dst[j * L.s] = src[j];
      }
      const int64_t off = p * HW + ih * g.W;
      write_grad(dx + off, row, g.relu_input ? x + off : nullptr, g.relu_input, accumulate, g.W);
    }
  });
}

void depthwise_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                               bool accumulate) {
  const PhaseLayout L(g);
  const int64_t KK = g.KH * g.KW, HW = g.H * g.W, OHW = g.OH * g.OW, C = g.Cin;
  // One partial per (sample, channel, tap), summed over samples in order below.
  std::vector<double> partial(static_cast<size_t>(g.N * C * KK));
  // Buffer: the phase-split input, then a per-column accumulator [OW].
  for_planes(g, L.floats() + g.OW, [&](int64_t p, float* buf, const float**) {
    fill_phases(L, x + p * HW, g.H, g.W, g.pad_top, g.pad_left, g.relu_input, buf);
    float* __restrict acc = buf + L.floats();
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        std::fill(acc, acc + g.OW, 0.f);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const float* __restrict dyr = dy + p * OHW + oh * g.OW;
          const float* __restrict src = buf + L.run(oh * g.stride_h + kh * g.dil_h, kw * g.dil_w);
          for (int64_t ow = 0; ow < g.OW; ++ow) acc[ow] += dyr[ow] * src[ow];
        }
        double t = 0;
        for (int64_t ow = 0; ow < g.OW; ++ow) t += acc[ow];
        partial[static_cast<size_t>(p * KK + kh * g.KW + kw)] = t;
      }
    }
  });
  for (int64_t j = 0; j < C * KK; ++j) {
    double s = 0;
    for (int64_t n = 0; n < g.N; ++n) s += partial[static_cast<size_t>(n * C * KK + j)];
    dw[j] = accumulate ? dw[j] + static_cast<float>(s) : static_cast<float>(s);
  }
}

// ---------------------------------------------------------------------------
// Dense / grouped convs: im2col + GEMM (no im2col for 1x1 stride-1 unpadded).
// ---------------------------------------------------------------------------
struct GemmShape {
  int64_t Cg, Coutg, Kg, HW, OHW;
  bool pointwise;
  explicit GemmShape(const ConvGeom& g)
      : Cg(g.Cin / g.groups),
        Coutg(g.Cout / g.groups),
        Kg(g.Cin / g.groups * g.KH * g.KW),
        HW(g.H * g.W),
        OHW(g.OH * g.OW),
        pointwise(is_pointwise(g)) {}
  // The [Kg, OHW] GEMM operand of one (sample, group): x itself for a plain
  // 1x1 conv, else a relu'd copy or im2col in buf.
  const float* operand(const ConvGeom& g, const float* xg, float* buf) const {
    if (pointwise) {
      if (!g.relu_input) return xg;
      for (int64_t i = 0; i < Cg * HW; ++i) buf[i] = std::max(xg[i], 0.f);
      return buf;
    }
    im2col(g, xg, Cg, buf);
    return buf;
  }
  int64_t operand_floats(const ConvGeom& g) const {
    return pointwise ? (g.relu_input ? Cg * HW : 0) : Kg * OHW;
  }
};

void gemm_conv_forward(const ConvGeom& g, const float* x, const float* w, float* y) {
  const GemmShape s(g);
  const int64_t G = g.groups;
  for_items(g.N * G, s.operand_floats(g), forward_flops(g) >= kParallelMinFlops,
            [&](int64_t i, float* buf) {
              const int64_t n = i / G, gi = i % G;
              const float* B = s.operand(g, x + (n * g.Cin + gi * s.Cg) * s.HW, buf);
              gemm(false, false, s.Coutg, s.OHW, s.Kg, 1.f, w + gi * s.Coutg * s.Kg, s.Kg, B, s.OHW,
                   0.f, y + (n * g.Cout + gi * s.Coutg) * s.OHW, s.OHW);
            });
}

void gemm_conv_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                             float* dx, bool accumulate) {
  const GemmShape s(g);
  const int64_t G = g.groups;
  const int64_t region = s.Cg * s.HW;  // one (sample, group) slice of dx
  // A plain 1x1 conv without relu writes straight into dx (beta folds in accumulate).
  const bool direct = s.pointwise && !g.relu_input;
  const int64_t scratch = direct ? 0 : (s.pointwise ? 0 : s.Kg * s.OHW) + region;
  for_items(g.N * G, scratch, forward_flops(g) >= kParallelMinFlops, [&](int64_t i, float* buf) {
    const int64_t n = i / G, gi = i % G;
    const float* wg = w + gi * s.Coutg * s.Kg;
    const float* dyg = dy + (n * g.Cout + gi * s.Coutg) * s.OHW;
    const int64_t xoff = (n * g.Cin + gi * s.Cg) * s.HW;
    if (direct) {
      gemm(true, false, s.Cg, s.HW, s.Coutg, 1.f, wg, s.Cg, dyg, s.OHW, accumulate ? 1.f : 0.f,
           dx + xoff, s.HW);
      return;
    }
    float* tmp = buf;  // [Cg, H, W] gradient of this slice before the relu mask
    if (s.pointwise) {
      gemm(true, false, s.Cg, s.HW, s.Coutg, 1.f, wg, s.Cg, dyg, s.OHW, 0.f, tmp, s.HW);
    } else {
      float* dcol = buf + region;
      gemm(true, false, s.Kg, s.OHW, s.Coutg, 1.f, wg, s.Kg, dyg, s.OHW, 0.f, dcol, s.OHW);
      std::fill(tmp, tmp + region, 0.f);
      col2im(g, dcol, s.Cg, tmp);
    }
    write_grad(dx + xoff, tmp, g.relu_input ? x + xoff : nullptr, g.relu_input, accumulate, region);
  });
}

void gemm_conv_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                               bool accumulate) {
  const GemmShape s(g);
  const int64_t G = g.groups, wsize = g.Cout * s.Kg;
  // Samples are split into P fixed chunks (independent of the thread count);
  // each chunk sums its samples in order into its own partial dW.
  int64_t P = std::min<int64_t>(g.N, kMaxWeightChunks);
  P = std::max<int64_t>(1, std::min<int64_t>(P, kPartialBudget / (wsize * 4)));
  // Not cleared: each chunk's first GEMM writes its partial with beta 0.
  // (Zeroing P partials cost a 2.4 MB memset per 64-channel 3x3 conv.)
  thread_local std::vector<float> partial_buf;
  if (P > 1 && static_cast<int64_t>(partial_buf.size()) < P * wsize) {
    std::vector<float>().swap(partial_buf);
    partial_buf.resize(static_cast<size_t>(P * wsize));
  }
  float* const partial = partial_buf.data();
  for_items(P * G, s.operand_floats(g), forward_flops(g) >= kParallelMinFlops,
            [&](int64_t i, float* buf) {
              const int64_t ci = i / G, gi = i % G;
              const int64_t n0 = ci * g.N / P, n1 = (ci + 1) * g.N / P;
              float* dst = (P > 1 ? partial + ci * wsize : dw) + gi * s.Coutg * s.Kg;
              float beta = (P == 1 && accumulate) ? 1.f : 0.f;
              for (int64_t n = n0; n < n1; ++n) {
                const float* B = s.operand(g, x + (n * g.Cin + gi * s.Cg) * s.HW, buf);
                gemm(false, true, s.Coutg, s.Kg, s.OHW, 1.f,
                     dy + (n * g.Cout + gi * s.Coutg) * s.OHW, s.OHW, B, s.OHW, beta, dst, s.Kg);
                beta = 1.f;
              }
            });
  if (P > 1) {
#pragma omp parallel for schedule(static) if (wsize * P >= (1 << 15))
    for (int64_t j = 0; j < wsize; ++j) {
      float t = 0.f;
      for (int64_t ci = 0; ci < P; ++ci) t += partial[ci * wsize + j];
      dw[j] = accumulate ? dw[j] + t : t;
    }
  }
}

}  // namespace

void conv2d_forward(const ConvGeom& g, const float* x, const float* w, float* y) {
  if (g.N == 0 || g.Cout == 0) return;
  if (dnnl_conv_forward(g, x, w, y)) return;
  if (is_depthwise(g))
    depthwise_forward(g, x, w, y);
  else
    gemm_conv_forward(g, x, w, y);
}

void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                          float* dx, bool accumulate) {
  if (g.N == 0 || g.Cin == 0) return;
  if (dnnl_conv_backward_data(g, dy, w, x, dx, accumulate)) return;
  if (is_depthwise(g))
    depthwise_backward_data(g, dy, w, x, dx, accumulate);
  else
    gemm_conv_backward_data(g, dy, w, x, dx, accumulate);
}

void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                            bool accumulate) {
  const int64_t wsize = g.Cout * (g.groups > 0 ? g.Cin / g.groups : 0) * g.KH * g.KW;
  if (wsize == 0) return;
  if (g.N == 0) {
    if (!accumulate) std::fill(dw, dw + wsize, 0.f);
    return;
  }
  if (dnnl_conv_backward_weight(g, x, dy, dw, accumulate)) return;
  if (is_depthwise(g))
    depthwise_backward_weight(g, x, dy, dw, accumulate);
  else
    gemm_conv_backward_weight(g, x, dy, dw, accumulate);
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
