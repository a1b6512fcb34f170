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
// Stride-1 dense convs go to the shifted-GEMM kernels first (conv_shifted.cpp;
// METANAS_CPU_SHIFTED_CONV=0 turns them off); then oneDNN, when its plugin
// loads, takes the cases it is faster on (conv_library.cpp, plugin dnnl/conv_dnnl.cpp). Bench: benchmarks/engine-bench, benchmarks/conv-lib.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv_shifted.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/flat_plane.h"
#include "kernels/cpu/scratch.h"

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

// write_grad for the 8 elements from dst (lanes below `fresh` already
// written: for_row_vectors).
inline void store_grad8(float* dst, v8 v, const float* x, bool accumulate, int64_t fresh) {
  if (x) v = load8(x) > splat(0.f) ? v : splat(0.f);
  store_or_add8(dst, v, accumulate, fresh);
}

// Runs body(item, thread_scratch) for item in [0, items): each thread takes
// whole items and every GEMM runs single-threaded (OpenBLAS is serial inside
// an OpenMP region). With fewer items than threads some threads idle: letting
// OpenBLAS thread those GEMMs instead made the bits depend on the thread count
// (its threaded SGEMM splits C differently), found at 2 samples on 3 threads.
template <typename Body>
void for_items(int64_t items, int64_t scratch_floats, bool parallel, Body body) {
  const int threads = omp_get_max_threads();
  const int team = parallel ? static_cast<int>(std::min<int64_t>(threads, items)) : 1;
#pragma omp parallel num_threads(team)
  {
    float* scratch = thread_scratch<ScratchSlot::items>(scratch_floats);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < items; ++i) body(i, scratch);
  }
}

// ---------------------------------------------------------------------------
// Depthwise direct kernels on flat planes (flat_plane.h: the layout, why, and
// the fill / gather of a plane).
// ---------------------------------------------------------------------------
// out[i] = sum_t w[t] * src[off[t] + i], i < len, taps summed in order. With the
// tap count fixed at compile time the tap loop unrolls and i vectorises.
template <int T>
void taps_flat(float* __restrict out, const float* src, const int64_t* off, const float* w, int64_t len) {
  const float* s[T];
  float wt[T];
  for (int t = 0; t < T; ++t) {
    s[t] = src + off[t];
    wt[t] = w[t];
  }
  for (int64_t i = 0; i < len; ++i) {
    float acc = 0.f;
#pragma GCC unroll 32
    for (int t = 0; t < T; ++t) acc += wt[t] * s[t][i];
    out[i] = acc;
  }
}

void taps_flat_any(float* __restrict out, const float* src, const int64_t* off, const float* w, int64_t T,
                   int64_t len) {
  switch (T) {
    case 9: return taps_flat<9>(out, src, off, w, len);
    case 25: return taps_flat<25>(out, src, off, w, len);
    case 5: return taps_flat<5>(out, src, off, w, len);
    case 3: return taps_flat<3>(out, src, off, w, len);
    default: break;
  }
  std::fill(out, out + len, 0.f);
  for (int64_t t = 0; t < T; ++t) {
    const float* __restrict st = src + off[t];
    const float wv = w[t];
    for (int64_t i = 0; i < len; ++i) out[i] += wv * st[i];
  }
}

// dst[i] += w * src[i]: the scatter of the strided backward-data pass.
void axpy_run(float* __restrict dst, const float* __restrict src, float w, int64_t len) {
  for (int64_t i = 0; i < len; ++i) dst[i] += w * src[i];
}

// out[t] = the 8 lanes of acc[t] added in double, in lane order.
template <int T>
void lane_totals(const v8* acc, double* out) {
  for (int t = 0; t < T; ++t) {
    double sum = 0;
    for (int j = 0; j < 8; ++j) sum += acc[t][j];
    out[t] = sum;
  }
}

// out[t] = sum_i a[i] * src[off[t] + i] for every tap t < T in one pass:
// a is loaded once for all taps (a separate pass per tap reloaded it and was
// load-bound: 2 loads per FMA). 8 float lanes per tap, i in
// order, lanes added in double: a fixed order whatever the thread count.
template <int T>
void dots_flat(const float* __restrict a, const float* src, const int64_t* off, int64_t len, double* out) {
  const float* s[T];
  v8 acc[T];
#pragma GCC unroll 32
  for (int t = 0; t < T; ++t) {
    s[t] = src + off[t];
    acc[t] = v8{};
  }
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    v8 av, sv;
    std::memcpy(&av, a + i, sizeof av);
#pragma GCC unroll 32
    for (int t = 0; t < T; ++t) {
      std::memcpy(&sv, s[t] + i, sizeof sv);
      acc[t] += av * sv;
    }
  }
  for (int j = 0; i < len; ++i, ++j)
    for (int t = 0; t < T; ++t) acc[t][j] += a[i] * s[t][i];
  lane_totals<T>(acc, out);
}

// Any tap count: groups of 9 (one 3x3's taps: 9 accumulators + a fit in 16
// vector registers), then the rest.
void dots_flat_any(const float* a, const float* src, const int64_t* off, int64_t T, int64_t len, double* out) {
  int64_t t = 0;
  for (; t + 9 <= T; t += 9) dots_flat<9>(a, src, off + t, len, out + t);
  switch (T - t) {
    case 8: return dots_flat<8>(a, src, off + t, len, out + t);
    case 7: return dots_flat<7>(a, src, off + t, len, out + t);
    case 6: return dots_flat<6>(a, src, off + t, len, out + t);
    case 5: return dots_flat<5>(a, src, off + t, len, out + t);
    case 4: return dots_flat<4>(a, src, off + t, len, out + t);
    case 3: return dots_flat<3>(a, src, off + t, len, out + t);
    case 2: return dots_flat<2>(a, src, off + t, len, out + t);
    case 1: return dots_flat<1>(a, src, off + t, len, out + t);
    default: return;
  }
}

// dots_flat by output rows (rows of OW >= 8, as taps_rows): out[t] = sum
// over oh < OH, ow < OW of dy[oh * OW + ow] * src[off[t] + oh * Wq + ow],
// dy read in place (no copy widened to Wq, no products of discarded
// columns); an overlapping last vector has its repeated lanes of dy zeroed.
template <int T>
void dots_rows(const float* dy, int64_t OH, int64_t OW, const float* src, const int64_t* off, int64_t Wq,
               double* out) {
  const float* s[T];
  v8 acc[T];
#pragma GCC unroll 32
  for (int t = 0; t < T; ++t) {
    s[t] = src + off[t];
    acc[t] = splat(0.f);
  }
  for (int64_t oh = 0; oh < OH; ++oh)
    for_row_vectors(OW, [&](int64_t ow, int64_t fresh) {
      const v8 a = keep_lanes(load8(dy + oh * OW + ow), splat(0.f), fresh);
      const int64_t i = oh * Wq + ow;
#pragma GCC unroll 32
      for (int t = 0; t < T; ++t) acc[t] += a * load8(s[t] + i);
    });
  lane_totals<T>(acc, out);
}

FlatLayout conv_layout(const ConvGeom& g) {
  return FlatLayout(g.H + g.pad_top + g.pad_bottom, g.W + g.pad_left + g.pad_right, g.stride_h, g.stride_w);
}

// The tap runs of a geometry in layout L (one per kh, kw).
std::vector<int64_t> tap_runs(const ConvGeom& g, const FlatLayout& L) {
  std::vector<int64_t> off(static_cast<size_t>(g.KH * g.KW));
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) off[static_cast<size_t>(kh * g.KW + kw)] = L.at(kh * g.dil_h, kw * g.dil_w);
  return off;
}

// Runs body(plane, thread_buffer) over the N*C planes.
template <typename Body>
void for_planes(const ConvGeom& g, int64_t buf_floats, Body body) {
  const int64_t planes = g.N * g.Cin;
#pragma omp parallel if (forward_flops(g) >= kParallelMinFlops)
  {
    float* buf = thread_scratch<ScratchSlot::items>(buf_floats);  // every body fills what it reads
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) body(p, buf);
  }
}

void depthwise_forward(const ConvGeom& g, const float* x, const float* w, float* y) {
  const FlatLayout L = conv_layout(g);
  const int64_t KK = g.KH * g.KW, HW = g.H * g.W, OHW = g.OH * g.OW, len = g.OH * L.Wq;
  const std::vector<int64_t> off = tap_runs(g, L);
  for_planes(g, L.floats() + std::max(len, fill_scratch(L)), [&](int64_t p, float* buf) {
    float* out = buf + L.floats();  // after the fill (fill_flat's scratch is there too)
    fill_flat(L, x + p * HW, g.H, g.W, g.pad_top, g.pad_left, g.relu_input, buf);
    float* yp = y + p * OHW;
    const float* wc = w + (p % g.Cin) * KK;
    if (taps_rows_any(buf, off.data(), wc, KK, g.OH, g.OW, L.Wq,
                      [yp, OW = g.OW](int64_t oh, int64_t ow, int64_t, v8 v) { store8(yp + oh * OW + ow, v); }))
      return;
    taps_flat_any(out, buf, off.data(), wc, KK, len);
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) yp[oh * g.OW + ow] = out[oh * L.Wq + ow];
  });
}

void depthwise_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                             float* dx, bool accumulate) {
  const int64_t KK = g.KH * g.KW, HW = g.H * g.W, OHW = g.OH * g.OW;
  const int64_t A = (g.KH - 1) * g.dil_h, B = (g.KW - 1) * g.dil_w;  // dilated kernel extent - 1
  if (g.stride_h == 1 && g.stride_w == 1) {
    // Stride 1: dx is dy, zero-extended by (A, B) rows/columns, correlated
    // with the flipped kernel: dx[i][j] = sum wf[kh][kw] * Q[i + pt + kh*dh][j + pl + kw*dw],
    // Q[a][b] = dy[a - A][b - B]. Same flat tap kernel as the forward.
    const FlatLayout Q(g.H + g.pad_top + A, g.W + g.pad_left + B, 1, 1);
    const int64_t len = g.H * Q.Wq;
    std::vector<int64_t> off(static_cast<size_t>(KK));
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw)
        off[static_cast<size_t>(kh * g.KW + kw)] = Q.at(g.pad_top + kh * g.dil_h, g.pad_left + kw * g.dil_w);
    for_planes(g, Q.floats() + len + KK, [&](int64_t p, float* buf) {
      float* out = buf + Q.floats();
      float* wf = out + len;
      const float* wc = w + (p % g.Cin) * KK;
      for (int64_t t = 0; t < KK; ++t) wf[t] = wc[KK - 1 - t];
      const int64_t rows = std::min(g.OH, Q.Hq - A), cols = std::min(g.OW, Q.Wq - B);
      fill_flat_unit(Q, dy + p * OHW, rows, cols, g.OW, A, B, false, buf);
      float* dp = dx + p * HW;
      const float* xp = g.relu_input ? x + p * HW : nullptr;
      if (taps_rows_any(buf, off.data(), wf, KK, g.H, g.W, Q.Wq,
                        [dp, xp, W = g.W, accumulate](int64_t ih, int64_t iw, int64_t fresh, v8 v) {
                          store_grad8(dp + ih * W + iw, v, xp ? xp + ih * W + iw : nullptr, accumulate, fresh);
                        }))
        return;
      taps_flat_any(out, buf, off.data(), wf, KK, len);
      for (int64_t ih = 0; ih < g.H; ++ih) {
        const int64_t o = p * HW + ih * g.W;
        write_grad(dx + o, out + ih * Q.Wq, g.relu_input ? x + o : nullptr, g.relu_input, accumulate, g.W);
      }
    });
    return;
  }
  // Strided: scatter dy (widened to row stride Wq, zeros in the discarded
  // columns) into the padded phase-split gradient, one run per tap, then gather.
  const FlatLayout L = conv_layout(g);
  const int64_t len = g.OH * L.Wq;
  const std::vector<int64_t> off = tap_runs(g, L);
  for_planes(g, L.floats() + len + g.W, [&](int64_t p, float* buf) {
    float* dyq = buf + L.floats();
    float* row = dyq + len;
    const float* wc = w + (p % g.Cin) * KK;
    std::fill(buf, buf + L.floats(), 0.f);
    widen_rows(dy + p * OHW, g.OH, g.OW, L.Wq, dyq);
    for (int64_t t = 0; t < KK; ++t) axpy_run(buf + off[static_cast<size_t>(t)], dyq, wc[t], len);
    for (int64_t ih = 0; ih < g.H; ++ih) {
      gather_row(L, buf, ih + g.pad_top, g.pad_left, g.W, row);
      const int64_t o = p * HW + ih * g.W;
      write_grad(dx + o, row, g.relu_input ? x + o : nullptr, g.relu_input, accumulate, g.W);
    }
  });
}

void depthwise_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                               bool accumulate) {
  const FlatLayout L = conv_layout(g);
  const int64_t KK = g.KH * g.KW, HW = g.H * g.W, OHW = g.OH * g.OW, C = g.Cin, len = g.OH * L.Wq;
  const std::vector<int64_t> off = tap_runs(g, L);
  // One partial per (sample, channel, tap), summed over samples in order below.
  std::vector<double> partial(static_cast<size_t>(g.N * C * KK));
  // Buffer: the phase-split input, then dy widened to row stride Wq (zeros in
  // the discarded columns, so the flat dot products count only real outputs).
  for_planes(g, L.floats() + std::max(len, fill_scratch(L)), [&](int64_t p, float* buf) {
    float* dyq = buf + L.floats();  // written after the fill, whose scratch it reuses
    fill_flat(L, x + p * HW, g.H, g.W, g.pad_top, g.pad_left, g.relu_input, buf);
    // By rows for 3x3 (9 lane sums + dy fit in registers); other kernels keep the widened flat run.
    if (KK == 9 && g.OW >= 8) return dots_rows<9>(dy + p * OHW, g.OH, g.OW, buf, off.data(), L.Wq, partial.data() + p * KK);
    widen_rows(dy + p * OHW, g.OH, g.OW, L.Wq, dyq);
    dots_flat_any(dyq, buf, off.data(), KK, len, partial.data() + p * KK);
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
  float* const partial = P > 1 ? thread_scratch<ScratchSlot::partials>(P * wsize) : nullptr;
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
  if (shifted_conv_forward(g, x, w, y)) return;
  if (dnnl_conv_forward(g, x, w, y)) return;
  if (is_depthwise(g))
    depthwise_forward(g, x, w, y);
  else
    gemm_conv_forward(g, x, w, y);
}

void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                          float* dx, bool accumulate) {
  if (g.N == 0 || g.Cin == 0) return;
  if (shifted_conv_backward_data(g, dy, w, x, dx, accumulate)) return;
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
  if (shifted_conv_backward_weight(g, x, dy, dw, accumulate)) return;
  if (dnnl_conv_backward_weight(g, x, dy, dw, accumulate)) return;
  if (is_depthwise(g))
    depthwise_backward_weight(g, x, dy, dw, accumulate);
  else
    gemm_conv_backward_weight(g, x, dy, dw, accumulate);
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
