// Stride-1 dense convolutions (groups 1, any kernel size and dilation) as
// shifted GEMMs over a padded plane: no im2col, no packing of a column matrix.
//
// One sample's input is copied into channel planes of Hp x Wp (the padding
// zeroed, ReLU applied on the way when the conv reads relu(x)). Number the
// outputs q = oh * Wp + ow over the padded width: tap (kh, kw) then reads
// input element q + kh*dh*Wp + kw*dw of each plane, for every q alike, so the
// convolution is a sum over taps of [Cout x Cin] weight slices times the
// [Cin x Q] block of the planes shifted by the tap's offset. A block of 4
// output channels x 24 outputs keeps its 12 vector accumulators in registers
// through all Cin*KH*KW terms; the Wp - OW outputs at the end of each row read
// across the row's edge and are dropped when the rows are copied out.
// Backward-data is the same kernel on dy padded by the kernel's reach minus
// the padding, with the filter flipped and transposed; backward-weight is dot
// products of dy (dropped columns zeroed) with shifted input rows, summed over
// all samples in vector lanes.
//
// Why: MetaNAS's 28-channel 1x5 / 5x1 / 3x3 / 1x1 convs on 28x28..7x7 planes
// reached ~40 GFLOP/s of a Zen 3 core's ~90 through im2col + OpenBLAS (or
// oneDNN): the column matrix is 5-9x the input and the GEMM's M = 28 is too
// small for OpenBLAS's blocking. Bench: benchmarks/engine-bench (METANAS_CPU_SHIFTED_CONV=0
// runs the old paths). Determinism: every output element is summed in one fixed
// order by one thread, whatever the thread count. AVX2 builds only (the 256-bit
// accumulators need 16 vector registers); others decline and keep the old paths.
#include "kernels/cpu/conv_shifted.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/vec8.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

#if METANAS_CPU_ISA_LEVEL >= 3
namespace {

inline float hsum(v8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

constexpr int64_t kMaxScratchFloats = 16ll << 20;  // 64 MB of planes per call at most
constexpr int64_t kParallelMinFlops = 1 << 16;

int64_t round8(int64_t v) { return (v + 7) / 8 * 8; }

// The padded planes of one conv input and the q-space of its outputs.
struct Plane {
  int64_t H = 0, W = 0, pt = 0, pl = 0;  // the unpadded plane and where it starts
  int64_t Hp = 0, Wp = 0;                // padded plane
  int64_t OH = 0, OW = 0;                // outputs
  int64_t Q = 0, Qr = 0;                 // OH * Wp outputs in q-space, rounded up to 8
  int64_t stride = 0;                    // floats from one channel plane to the next
  std::vector<int64_t> off;              // per tap (kh * KW + kw): offset of its reads

  Plane(int64_t H_, int64_t W_, int64_t pt_, int64_t pb, int64_t pl_, int64_t pr, int64_t KH,
        int64_t KW, int64_t dh, int64_t dw)
      : H(H_), W(W_), pt(pt_), pl(pl_) {
    Hp = H + pt + pb;
    Wp = W + pl + pr;
    OH = Hp - dh * (KH - 1);
    OW = Wp - dw * (KW - 1);
    Q = OH * Wp;
    Qr = round8(Q);
    // A block reads 8 floats at q <= Qr - 8 plus the largest offset: past the
    // plane by Qr - Q + dw * (KW - 1) floats, which stay zero.
    stride = round8(Hp * Wp + (Qr - Q) + dw * (KW - 1));
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw) off.push_back(kh * dh * Wp + kw * dw);
  }
  int64_t taps() const { return static_cast<int64_t>(off.size()); }

  // dst[c] = the padded plane of src[c] (relu'd when asked), c < C.
  void fill(const float* src, int64_t C, bool relu, float* dst) const {
    std::fill(dst, dst + C * stride, 0.f);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h) {
        const float* s = src + (c * H + h) * W;
        float* d = dst + c * stride + (h + pt) * Wp + pl;
        if (relu)
          for (int64_t w = 0; w < W; ++w) d[w] = std::max(s[w], 0.f);
        else
          for (int64_t w = 0; w < W; ++w) d[w] = s[w];
      }
  }
};

// y[m][q0 + i] = sum_t sum_c w[m][t][c] * x[c * cs + off[t] + q0 + i], m < MB, i < 8 * NV.
template <int MB, int NV>
inline void out_block(int64_t T, int64_t C, const int64_t* off, const float* w, int64_t ldw,
                      const float* x, int64_t cs, float* y, int64_t ldy, int64_t q0) {
  v8 acc[MB][NV];
  for (int m = 0; m < MB; ++m)
    for (int v = 0; v < NV; ++v) acc[m][v] = splat(0.f);
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + off[t] + q0;
    const float* wt = w + t * C;
    for (int64_t c = 0; c < C; ++c) {
      const float* xr = xt + c * cs;
      v8 xv[NV];
      for (int v = 0; v < NV; ++v) xv[v] = load8(xr + 8 * v);
      for (int m = 0; m < MB; ++m) {
        const v8 wv = splat(wt[m * ldw + c]);
        for (int v = 0; v < NV; ++v) acc[m][v] += wv * xv[v];
      }
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int v = 0; v < NV; ++v) store8(y + m * ldy + q0 + 8 * v, acc[m][v]);
}

template <int NV>
void out_rows(int64_t M, int64_t T, int64_t C, const int64_t* off, const float* w, const float* x,
              int64_t cs, float* y, int64_t ldy, int64_t q0) {
  const int64_t ldw = T * C;
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) out_block<4, NV>(T, C, off, w + m * ldw, ldw, x, cs, y + m * ldy, ldy, q0);
  for (; m < M; ++m) out_block<1, NV>(T, C, off, w + m * ldw, ldw, x, cs, y + m * ldy, ldy, q0);
}

// y [M, p.Qr] = the shifted GEMM of packed weights w [M][T][C] with planes x.
void shifted_gemm(const Plane& p, int64_t M, int64_t C, const float* w, const float* x, float* y) {
  const int64_t T = p.taps();
  int64_t q = 0;
  for (; q + 24 <= p.Qr; q += 24) out_rows<3>(M, T, C, p.off.data(), w, x, p.stride, y, p.Qr, q);
  for (; q < p.Qr; q += 8) out_rows<1>(M, T, C, p.off.data(), w, x, p.stride, y, p.Qr, q);
}

int64_t flops(const ConvGeom& g) { return 2 * g.N * g.Cout * g.OH * g.OW * g.Cin * g.KH * g.KW; }

// body(n, scratch) for every sample, over threads when worth it. Static: each
// thread takes the same run of samples as the plane-parallel kernels around
// it (depthwise convs, batch norms, pools, the mixed op: static over N x C
// planes), so a sample's activations are used on the core whose cache holds them.
template <typename Body>
void for_samples(const ConvGeom& g, int64_t scratch_floats, Body body) {
  const bool parallel = g.N > 1 && flops(g) >= kParallelMinFlops && omp_get_max_threads() > 1;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t n = 0; n < g.N; ++n) body(n, thread_scratch<ScratchSlot::items>(scratch_floats));
}

Plane forward_plane(const ConvGeom& g) {
  return Plane(g.H, g.W, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right, g.KH, g.KW, g.dil_h, g.dil_w);
}

// dy's planes for backward-data: padded by the kernel's reach minus the padding.
Plane backward_plane(const ConvGeom& g) {
  const int64_t rh = g.dil_h * (g.KH - 1), rw = g.dil_w * (g.KW - 1);
  return Plane(g.OH, g.OW, rh - g.pad_top, rh - g.pad_bottom, rw - g.pad_left, rw - g.pad_right, g.KH,
               g.KW, g.dil_h, g.dil_w);
}

// Adds one sample's terms to the lane sums of a block of MB output x NB input
// channels, all taps: acc[t][i][j][lane] += sum over q = lane (mod 8) of
// D[co+i][q] * X[ci+j][q + off[t]]. acc is plain floats kept in memory between
// samples (a std::vector of 32-byte vectors would not be 32-byte aligned).
template <int MB, int NB>
void weight_block(const Plane& p, const float* D, const float* X, int64_t co, int64_t ci, float* acc) {
  const int64_t T = p.taps();
  const float* d = D + co * p.Qr;
  const float* x = X + ci * p.stride;
  for (int64_t t = 0; t < T; ++t) {
    v8 a[MB][NB];
    float* at = acc + t * MB * NB * 8;
    for (int i = 0; i < MB; ++i)
      for (int j = 0; j < NB; ++j) a[i][j] = load8(at + (i * NB + j) * 8);
    const float* xt = x + p.off[static_cast<size_t>(t)];
    for (int64_t q = 0; q < p.Qr; q += 8) {
      v8 xv[NB];
      for (int j = 0; j < NB; ++j) xv[j] = load8(xt + j * p.stride + q);
      for (int i = 0; i < MB; ++i) {
        const v8 dv = load8(d + i * p.Qr + q);
        for (int j = 0; j < NB; ++j) a[i][j] += dv * xv[j];
      }
    }
    for (int i = 0; i < MB; ++i)
      for (int j = 0; j < NB; ++j) store8(at + (i * NB + j) * 8, a[i][j]);
  }
}

// ---- 1x1 stride-1 unpadded convs: the same register blocks with one tap,
// straight on the NCHW planes (no copies): relu applied on load, dx's relu
// mask and accumulation in the store, the last HW % 8 outputs of a plane one
// by one. OpenBLAS reached ~50 GFLOP/s on these 28-channel GEMMs.
inline bool is_pointwise(const ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.pad_top == 0 && g.pad_bottom == 0 && g.pad_left == 0 && g.pad_right == 0;
}

inline v8 relu8(v8 v) { return v > splat(0.f) ? v : splat(0.f); }

// Stores acc into y (overwriting or adding), zeroing lanes where mask <= 0.
inline void store_out(float* y, v8 acc, const float* mask, bool accumulate) {
  if (mask) acc = load8(mask) > splat(0.f) ? acc : splat(0.f);
  if (accumulate) acc += load8(y);
  store8(y, acc);
}
inline void store_out1(float* y, float v, const float* mask, bool accumulate) {
  if (mask && !(*mask > 0.f)) v = 0.f;
  *y = accumulate ? *y + v : v;
}

// y[m][q0 + i] (=|+=) sum_c w[m * ldw + c] * f(x[c * HW + q0 + i]), i < 8 * NV;
// f = relu when RELU; mask (x of dx) as store_out.
template <int MB, int NV, bool RELU>
inline void pw_block(int64_t C, const float* w, int64_t ldw, const float* x, int64_t HW, float* y,
                     int64_t q0, const float* mask, bool accumulate) {
  v8 acc[MB][NV];
  for (int m = 0; m < MB; ++m)
    for (int v = 0; v < NV; ++v) acc[m][v] = splat(0.f);
  for (int64_t c = 0; c < C; ++c) {
    const float* xr = x + c * HW + q0;
    v8 xv[NV];
    for (int v = 0; v < NV; ++v) xv[v] = RELU ? relu8(load8(xr + 8 * v)) : load8(xr + 8 * v);
    for (int m = 0; m < MB; ++m) {
      const v8 wv = splat(w[m * ldw + c]);
      for (int v = 0; v < NV; ++v) acc[m][v] += wv * xv[v];
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int v = 0; v < NV; ++v)
      store_out(y + m * HW + q0 + 8 * v, acc[m][v], mask ? mask + m * HW + q0 + 8 * v : nullptr, accumulate);
}

template <int NV, bool RELU>
void pw_rows(int64_t M, int64_t C, const float* w, const float* x, int64_t HW, float* y, int64_t q0,
             const float* mask, bool accumulate) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4)
    pw_block<4, NV, RELU>(C, w + m * C, C, x, HW, y + m * HW, q0, mask ? mask + m * HW : nullptr, accumulate);
  for (; m < M; ++m)
    pw_block<1, NV, RELU>(C, w + m * C, C, x, HW, y + m * HW, q0, mask ? mask + m * HW : nullptr, accumulate);
}

// The last HW % 8 outputs of rows m < MB: one block of 8 ending at HW (it
// overlaps the previous block; only its last `tail` lanes are stored).
template <int MB, bool RELU>
void pw_tail_block(int64_t C, const float* w, int64_t ldw, const float* x, int64_t HW, float* y, int64_t tail,
                   const float* mask, bool accumulate) {
  const int64_t q0 = HW - 8;
  v8 acc[MB];
  for (int m = 0; m < MB; ++m) acc[m] = splat(0.f);
  for (int64_t c = 0; c < C; ++c) {
    const v8 xv = RELU ? relu8(load8(x + c * HW + q0)) : load8(x + c * HW + q0);
    for (int m = 0; m < MB; ++m) acc[m] += splat(w[m * ldw + c]) * xv;
  }
  for (int m = 0; m < MB; ++m)
    for (int64_t l = 8 - tail; l < 8; ++l)
      store_out1(y + m * HW + q0 + l, acc[m][l], mask ? mask + m * HW + q0 + l : nullptr, accumulate);
}

// One sample: y [M, HW] (=|+=) w [M, C] times f(x [C, HW]).
template <bool RELU>
void pw_gemm(int64_t M, int64_t C, int64_t HW, const float* w, const float* x, float* y, const float* mask,
             bool accumulate) {
  int64_t q = 0;
  for (; q + 24 <= HW; q += 24) pw_rows<3, RELU>(M, C, w, x, HW, y, q, mask, accumulate);
  for (; q + 8 <= HW; q += 8) pw_rows<1, RELU>(M, C, w, x, HW, y, q, mask, accumulate);
  if (q < HW && HW >= 8) {
    int64_t m = 0;
    for (; m + 4 <= M; m += 4)
      pw_tail_block<4, RELU>(C, w + m * C, C, x, HW, y + m * HW, HW - q, mask ? mask + m * HW : nullptr, accumulate);
    for (; m < M; ++m)
      pw_tail_block<1, RELU>(C, w + m * C, C, x, HW, y + m * HW, HW - q, mask ? mask + m * HW : nullptr, accumulate);
    return;
  }
  for (; q < HW; ++q)
    for (int64_t m = 0; m < M; ++m) {
      float s = 0.f;
      for (int64_t c = 0; c < C; ++c) s += w[m * C + c] * (RELU ? std::max(x[c * HW + q], 0.f) : x[c * HW + q]);
      store_out1(y + m * HW + q, s, mask ? mask + m * HW + q : nullptr, accumulate);
    }
}

// One sample's terms of a 1x1 weight gradient, added to the lane sums of a
// block of MB x NB channels: acc[i][j][lane] += sum over q = lane (mod 8) of
// dy[co+i][q] * f(x[ci+j][q]) (the last HW % 8 terms into lanes 0..).
template <int MB, int NB, bool RELU>
void pw_weight_block(int64_t HW, const float* dy, const float* x, int64_t co, int64_t ci, float* acc) {
  const float* d = dy + co * HW;
  const float* xr = x + ci * HW;
  v8 a[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) a[i][j] = load8(acc + (i * NB + j) * 8);
  int64_t q = 0;
  for (; q + 8 <= HW; q += 8) {
    v8 xv[NB];
    for (int j = 0; j < NB; ++j) xv[j] = RELU ? relu8(load8(xr + j * HW + q)) : load8(xr + j * HW + q);
    for (int i = 0; i < MB; ++i) {
      const v8 dv = load8(d + i * HW + q);
      for (int j = 0; j < NB; ++j) a[i][j] += dv * xv[j];
    }
  }
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) store8(acc + (i * NB + j) * 8, a[i][j]);
  for (int64_t l = 0; q < HW; ++q, ++l)
    for (int i = 0; i < MB; ++i)
      for (int j = 0; j < NB; ++j) {
        const float xv = RELU ? std::max(xr[j * HW + q], 0.f) : xr[j * HW + q];
        acc[(i * NB + j) * 8 + l] += d[i * HW + q] * xv;
      }
}

// The weight gradients' work split. Items are blocks of 4 output x 3 input
// channels (tails of 1), each with lane sums for T taps (full blocks
// [t][i][j], tail channels [i * 3 + j][t], 8 lanes each). The samples are cut
// into P = min(N, kWeightChunks) fixed chunks (not depending on the thread
// count); one thread sums a chunk's samples in order into the chunk's own lane
// sums: prepare(n, buf) readies a sample's data in the thread's buffer, then
// block(buf, n, co0, ci0, full, sums) runs every item on it from cache. Last,
// each weight is its lanes summed chunk by chunk in chunk order.
// (Samples outermost over all threads instead, with a one-thread prepare and
// two barriers per sample, ran 1.15-1.3x faster on 2 threads than on 1.)
constexpr int64_t kWeightChunks = 8;
template <typename Prepare, typename Block>
void weight_items(const ConvGeom& g, int64_t T, int64_t buf_floats, bool parallel, Prepare prepare, Block block,
                  float* dw, bool accumulate) {
  const int64_t Cin = g.Cin, Cout = g.Cout;
  const int64_t cib = (Cin + 2) / 3, items = (Cout + 3) / 4 * cib, item_floats = T * 12 * 8;
  const int64_t chunk_floats = items * item_floats;
  const int64_t P = std::max<int64_t>(1, std::min<int64_t>(g.N, kWeightChunks));
  float* acc = thread_scratch<ScratchSlot::sums>(P * chunk_floats);
#pragma omp parallel if (parallel && P > 1)
  {
    float* buf = thread_scratch<ScratchSlot::items>(buf_floats);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < P; ++c) {
      float* a = acc + c * chunk_floats;
      std::fill(a, a + chunk_floats, 0.f);
      for (int64_t n = c * g.N / P; n < (c + 1) * g.N / P; ++n) {
        prepare(n, buf);
        for (int64_t item = 0; item < items; ++item) {
          const int64_t co0 = item / cib * 4, ci0 = item % cib * 3;
          const bool full = co0 + 4 <= Cout && ci0 + 3 <= Cin;
          block(buf, n, co0, ci0, full, a + item * item_floats);
        }
      }
    }
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t co0 = item / cib * 4, ci0 = item % cib * 3;
      const int64_t co1 = std::min(co0 + 4, Cout), ci1 = std::min(ci0 + 3, Cin);
      const bool full = co1 - co0 == 4 && ci1 - ci0 == 3;
      const float* a = acc + item * item_floats;
      for (int64_t co = co0; co < co1; ++co)
        for (int64_t ci = ci0; ci < ci1; ++ci)
          for (int64_t t = 0; t < T; ++t) {
            const int64_t i = co - co0, j = ci - ci0;
            const float* l = full ? a + ((t * 4 + i) * 3 + j) * 8 : a + ((i * 3 + j) * T + t) * 8;
            float v = 0.f;
            for (int64_t c = 0; c < P; ++c) v += hsum(load8(l + c * chunk_floats));
            float& dst = dw[(co * Cin + ci) * T + t];
            dst = accumulate ? dst + v : v;
          }
    }
  }
}

// dw [Cout, Cin] (+)= sum_n dy_n [Cout, HW] times f(x_n)^T, straight on the planes.
template <bool RELU>
void pointwise_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw, bool accumulate) {
  const int64_t Cin = g.Cin, Cout = g.Cout, HW = g.H * g.W;
  const bool parallel = flops(g) >= kParallelMinFlops && omp_get_max_threads() > 1;
  weight_items(
      g, 1, 0, parallel, [](int64_t, float*) {},
      [&](const float*, int64_t n, int64_t co0, int64_t ci0, bool full, float* a) {
        const float* xn = x + n * Cin * HW;
        const float* dn = dy + n * Cout * HW;
        if (full) {
          pw_weight_block<4, 3, RELU>(HW, dn, xn, co0, ci0, a);
          return;
        }
        for (int64_t co = co0; co < std::min(co0 + 4, Cout); ++co)
          for (int64_t ci = ci0; ci < std::min(ci0 + 3, Cin); ++ci)
            pw_weight_block<1, 1, RELU>(HW, dn, xn, co, ci, a + ((co - co0) * 3 + (ci - ci0)) * 8);
      },
      dw, accumulate);
}

}  // namespace

bool shifted_conv_handles(const ConvGeom& g) {
  if (!shifted_conv_enabled()) return false;
  if (g.groups != 1 || g.stride_h != 1 || g.stride_w != 1 || g.dil_h < 1 || g.dil_w < 1) return false;
  if (g.N < 1 || g.Cin < 1 || g.Cout < 1 || g.KH < 1 || g.KW < 1) return false;
  if (g.KH * g.KW == 1)  // padded 1x1s (rare) keep the old path
    return is_pointwise(g) && g.Cin <= 32 && g.Cout <= 32;
  // Wide convs (64 -> 64 channels: REPTILE's 4-conv) overflow L1 with one
  // block's input rows and weights; there oneDNN / im2col + OpenBLAS are faster
  // (measured: docs/results.md "CPU speed, part 6").
  if (std::min(g.Cin, g.Cout) > 32 || std::max(g.Cin, g.Cout) > 64) return false;
  // 3x3 and larger on planes under 64 outputs (7x7): too few outputs per
  // block row for the taps' loads; oneDNN was faster there (engine-bench).
  if (g.KH * g.KW >= 9 && g.OH * g.OW < 64) return false;
  const int64_t rh = g.dil_h * (g.KH - 1), rw = g.dil_w * (g.KW - 1);
  // Padding beyond the kernel's reach would make backward-data's padding negative.
  for (int64_t v : {g.pad_top, g.pad_bottom})
    if (v < 0 || v > rh) return false;
  for (int64_t v : {g.pad_left, g.pad_right})
    if (v < 0 || v > rw) return false;
  const Plane p = forward_plane(g);
  if (p.OH != g.OH || p.OW != g.OW || p.OH < 1 || p.OW < 1) return false;
  const Plane b = backward_plane(g);
  return std::max(g.Cin * p.stride + g.Cout * p.Qr, g.Cout * b.stride + g.Cin * b.Qr) <= kMaxScratchFloats;
}

bool shifted_conv_forward(const ConvGeom& g, const float* x, const float* w, float* y) {
  if (!shifted_conv_handles(g)) return false;
  count_shifted_conv_call();
  if (is_pointwise(g)) {
    const int64_t HW = g.H * g.W;
    for_samples(g, 0, [&](int64_t n, float*) {
      const float* xn = x + n * g.Cin * HW;
      float* yn = y + n * g.Cout * HW;
      if (g.relu_input)
        pw_gemm<true>(g.Cout, g.Cin, HW, w, xn, yn, nullptr, false);
      else
        pw_gemm<false>(g.Cout, g.Cin, HW, w, xn, yn, nullptr, false);
    });
    return true;
  }
  const Plane p = forward_plane(g);
  const int64_t T = p.taps(), Cin = g.Cin, Cout = g.Cout;
  std::vector<float> wp(static_cast<size_t>(Cout * T * Cin));  // [co][t][ci]
  for (int64_t co = 0; co < Cout; ++co)
    for (int64_t ci = 0; ci < Cin; ++ci)
      for (int64_t t = 0; t < T; ++t) wp[static_cast<size_t>((co * T + t) * Cin + ci)] = w[(co * Cin + ci) * T + t];
  for_samples(g, Cin * p.stride + Cout * p.Qr, [&](int64_t n, float* buf) {
    float* planes = buf;
    float* out = buf + Cin * p.stride;
    p.fill(x + n * Cin * g.H * g.W, Cin, g.relu_input, planes);
    shifted_gemm(p, Cout, Cin, wp.data(), planes, out);
    float* yn = y + n * Cout * g.OH * g.OW;
    for (int64_t co = 0; co < Cout; ++co)
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const float* s = out + co * p.Qr + oh * p.Wp;
        float* d = yn + (co * g.OH + oh) * g.OW;
        for (int64_t ow = 0; ow < g.OW; ++ow) d[ow] = s[ow];
      }
  });
  return true;
}

bool shifted_conv_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                                float* dx, bool accumulate) {
  // A 1x1's backward-data sums over Cout: wide inputs (MetaNAS's 3C -> C
  // preprocessing) are fine here, where their forward (a sum over Cin) was slower.
  const bool pw_data = shifted_conv_enabled() && g.groups == 1 && g.stride_h == 1 && g.stride_w == 1 &&
                       is_pointwise(g) && g.N >= 1 && g.Cout >= 1 && g.Cout <= 32 && g.Cin >= 1 && g.Cin <= 128;
  if (!pw_data && !shifted_conv_handles(g)) return false;
  count_shifted_conv_call();
  if (is_pointwise(g)) {
    const int64_t HW = g.H * g.W;
    std::vector<float> wt(static_cast<size_t>(g.Cin * g.Cout));  // [ci][co]
    for (int64_t co = 0; co < g.Cout; ++co)
      for (int64_t ci = 0; ci < g.Cin; ++ci) wt[static_cast<size_t>(ci * g.Cout + co)] = w[co * g.Cin + ci];
    for_samples(g, 0, [&](int64_t n, float*) {
      const int64_t o = n * g.Cin * HW;
      pw_gemm<false>(g.Cin, g.Cout, HW, wt.data(), dy + n * g.Cout * HW, dx + o,
                     g.relu_input ? x + o : nullptr, accumulate);
    });
    return true;
  }
  const Plane p = backward_plane(g);  // outputs: H x W
  const int64_t T = p.taps(), Cin = g.Cin, Cout = g.Cout, KH = g.KH, KW = g.KW;
  // [ci][t'][co] with t' the flipped tap: dx = the forward kernel on padded dy.
  std::vector<float> wq(static_cast<size_t>(Cin * T * Cout));
  for (int64_t co = 0; co < Cout; ++co)
    for (int64_t ci = 0; ci < Cin; ++ci)
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw) {
          const int64_t tf = (KH - 1 - kh) * KW + (KW - 1 - kw);
          wq[static_cast<size_t>((ci * T + tf) * Cout + co)] = w[((co * Cin + ci) * KH + kh) * KW + kw];
        }
  const bool relu = g.relu_input;
  for_samples(g, Cout * p.stride + Cin * p.Qr, [&](int64_t n, float* buf) {
    float* planes = buf;
    float* out = buf + Cout * p.stride;
    p.fill(dy + n * Cout * g.OH * g.OW, Cout, false, planes);
    shifted_gemm(p, Cin, Cout, wq.data(), planes, out);
    const int64_t base = n * Cin * g.H * g.W;
    for (int64_t ci = 0; ci < Cin; ++ci)
      for (int64_t ih = 0; ih < g.H; ++ih) {
        const float* s = out + ci * p.Qr + ih * p.Wp;
        const int64_t o = base + (ci * g.H + ih) * g.W;
        float* d = dx + o;
        const float* xr = x + o;
        for (int64_t iw = 0; iw < g.W; ++iw) {
          const float v = relu && !(xr[iw] > 0.f) ? 0.f : s[iw];
          d[iw] = accumulate ? d[iw] + v : v;
        }
      }
  });
  return true;
}

bool shifted_conv_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                                  bool accumulate) {
  if (!shifted_conv_handles(g)) return false;
  if (is_pointwise(g)) {
    // Under 64 outputs a plane the per-sample lane sums cost more than they save.
    if (g.H * g.W < 64) return false;
    count_shifted_conv_call();
    if (g.relu_input)
      pointwise_backward_weight<true>(g, x, dy, dw, accumulate);
    else
      pointwise_backward_weight<false>(g, x, dy, dw, accumulate);
    return true;
  }
  count_shifted_conv_call();
  const Plane p = forward_plane(g);
  const int64_t Cin = g.Cin, Cout = g.Cout, T = p.taps();
  const int64_t xn = Cin * p.stride, dn = Cout * p.Qr;
  const bool parallel = flops(g) >= kParallelMinFlops && omp_get_max_threads() > 1;
  // A thread's buffer: one sample's planes X, then its q-space dy D.
  weight_items(
      g, T, xn + dn, parallel,
      [&](int64_t n, float* buf) {
        float* X = buf;
        float* D = buf + xn;
        p.fill(x + n * Cin * g.H * g.W, Cin, g.relu_input, X);
        std::fill(D, D + dn, 0.f);  // dropped columns and the tail stay zero
        for (int64_t co = 0; co < Cout; ++co)
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            const float* s = dy + ((n * Cout + co) * g.OH + oh) * g.OW;
            float* r = D + co * p.Qr + oh * p.Wp;
            for (int64_t ow = 0; ow < g.OW; ++ow) r[ow] = s[ow];
          }
      },
      [&](const float* buf, int64_t, int64_t co0, int64_t ci0, bool full, float* a) {
        const float* X = buf;
        const float* D = buf + xn;
        if (full) {
          weight_block<4, 3>(p, D, X, co0, ci0, a);
          return;
        }
        for (int64_t co = co0; co < std::min(co0 + 4, Cout); ++co)
          for (int64_t ci = ci0; ci < std::min(ci0 + 3, Cin); ++ci)
            weight_block<1, 1>(p, D, X, co, ci, a + ((co - co0) * 3 + (ci - ci0)) * T * 8);
      },
      dw, accumulate);
  return true;
}

#else  // the baseline variant (SSE2: too few vector registers) declines every case

bool shifted_conv_handles(const ConvGeom&) { return false; }
bool shifted_conv_forward(const ConvGeom&, const float*, const float*, float*) { return false; }
bool shifted_conv_backward_data(const ConvGeom&, const float*, const float*, const float*, float*, bool) {
  return false;
}
bool shifted_conv_backward_weight(const ConvGeom&, const float*, const float*, float*, bool) { return false; }

#endif

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
