// CPU max / average pooling (square window, symmetric padding), forward and
// backward. Padding never takes part: a max is over real pixels only (argmax
// is the int32 index ih * W + iw into the input plane) and an average divides
// by the number of real pixels in the window (PyTorch count_include_pad=False).
// Planes are independent, so the work is split over N*C planes and every
// result is deterministic. Windows with k >= 2*pad + 1 (the 3x3 pad-1 pools
// of the search spaces) run on flat planes (flat_plane.h): the k*k taps
// unrolled, by output rows of 8-wide vectors when rows have 8 or more outputs,
// else one long loop per plane over every output. Other windows use the
// separable form (a row pass, then a column pass).
// Bench: benchmarks/engine-bench.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/flat_plane.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

namespace {

constexpr int64_t kParallelMin = 1 << 14;  // output elements below which threads do not pay

// Real-pixel range [lo, hi) of the window of output index o along a dim of size n.
inline void window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t n, int64_t& lo,
                   int64_t& hi) {
  const int64_t start = o * stride - pad;
  lo = std::max<int64_t>(start, 0);
  hi = std::min<int64_t>(start + k, n);
}

// Runs body(plane, thread_buffer) over the N*C planes.
template <typename Body>
void for_planes(const PoolGeom& g, int64_t buf_floats, Body body) {
  const int64_t planes = g.N * g.C;
#pragma omp parallel if (planes * g.OH * g.OW >= kParallelMin)
  {
    float* buf = thread_scratch<ScratchSlot::pool>(buf_floats);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) body(p, buf);
  }
}

// Column taps: tap kw reads input column ow*stride + off (off = kw - pad) for
// ow in [lo, hi), the outputs for which that column is real. Looping taps
// outside and ow inside keeps the inner loops contiguous and branch-free.
struct ColTaps {
  std::vector<int64_t> off, lo, hi;
  explicit ColTaps(const PoolGeom& g) {
    for (int64_t kw = 0; kw < g.k; ++kw) {
      const int64_t o = kw - g.pad;
      int64_t l = o >= 0 ? 0 : (-o + g.stride - 1) / g.stride;
      int64_t h = g.W - o <= 0 ? 0 : (g.W - o + g.stride - 1) / g.stride;
      l = std::min(l, g.OW);
      h = std::max(l, std::min(h, g.OW));
      off.push_back(o);
      lo.push_back(l);
      hi.push_back(h);
    }
  }
};

// 1 / (number of real pixels) of every output window [OH, OW].
std::vector<float> inverse_counts(const PoolGeom& g) {
  std::vector<float> inv(static_cast<size_t>(g.OH * g.OW));
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    int64_t h0, h1;
    window(oh, g.stride, g.pad, g.k, g.H, h0, h1);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      int64_t w0, w1;
      window(ow, g.stride, g.pad, g.k, g.W, w0, w1);
      const int64_t cnt = (h1 - h0) * (w1 - w0);
      inv[static_cast<size_t>(oh * g.OW + ow)] = cnt > 0 ? 1.f / static_cast<float>(cnt) : 0.f;
    }
  }
  return inv;
}

// Row pass of max pooling for one tap: where x[ow*stride + off] beats the
// running maximum, take it and its column. Unconditional loads and masks keep
// the loop branch-free (it vectorises when kUnit makes the reads contiguous).
template <bool kUnit>
inline void max_row_tap(float* __restrict hm, int32_t* __restrict hc, const float* __restrict xr,
                        int64_t lo, int64_t hi, int64_t stride, int64_t off) {
  for (int64_t ow = lo; ow < hi; ++ow) {
    const int32_t iw = static_cast<int32_t>(kUnit ? ow + off : ow * stride + off);
    const float v = xr[iw], cur = hm[ow];
    const int32_t cc = hc[ow];
    const int32_t m = -static_cast<int32_t>(v > cur);  // all ones where v wins
    hm[ow] = std::max(cur, v);                          // == (v > cur ? v : cur)
    hc[ow] = (iw & m) | (cc & ~m);
  }
}

// The 2x2 stride-2 unpadded window (the 4-conv networks' pool): every window
// is real, so one pass per output row reads its two input rows directly. The
// comparisons are the separable pass's (row maxima first, ties to the first
// element, then the upper row unless the lower one is larger): same bits.
// In the 256-bit builds GCC's vectorisation of the stride-2 reads (cross-lane
// permutes) made this 1.13x slower than the 128-bit one (engine-bench), so
// there it is vectorised 128 bits wide, as in the baseline build.
#if METANAS_CPU_ISA_LEVEL >= 3
__attribute__((target("prefer-vector-width=128")))
#endif
void max_pool_2x2s2(const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, planes = g.N * g.C;
#pragma omp parallel for schedule(static) if (planes * OHW >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const float* __restrict r0 = x + p * HW + 2 * oh * g.W;
      const float* __restrict r1 = r0 + g.W;
      float* __restrict yr = y + p * OHW + oh * g.OW;
      int32_t* __restrict ar = argmax + p * OHW + oh * g.OW;
      const int32_t base = static_cast<int32_t>(2 * oh * g.W);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
        const float m0 = std::max(a, b), m1 = std::max(c, d);
        const int32_t i0 = static_cast<int32_t>(2 * ow) + static_cast<int32_t>(b > a);
        const int32_t i1 = static_cast<int32_t>(2 * ow + g.W) + static_cast<int32_t>(d > c);
        const int32_t m = -static_cast<int32_t>(m1 > m0);
        yr[ow] = std::max(m0, m1);
        ar[ow] = base + ((i1 & m) | (i0 & ~m));
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Flat-plane pools. With k >= 2*pad + 1 the window's tap (pad, pad) is a real
// pixel for every output, so padding can be a neutral value (-inf for the
// max, 0 for the sum) and the count of real pixels is a per-output constant.
// ---------------------------------------------------------------------------
// Tap weights of one (taps_rows as a plain sum), for windows up to 5x5.
constexpr float ones[25] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

bool flat_pool(const PoolGeom& g) { return g.k >= 2 * g.pad + 1 && g.k <= 5 && !(g.k == 2 && g.stride == 2 && g.pad == 0); }

struct FlatPool {
  FlatLayout L;
  int64_t len;              // OH * Wq flat outputs
  std::vector<int64_t> off;  // tap (kh, kw) -> run start
  std::vector<int32_t> delta;  // tap -> kh * W + kw (argmax offset from the window corner)
  std::vector<float> inv;      // [OH * Wq] 1 / real pixels of the window, 0 in discarded columns
  explicit FlatPool(const PoolGeom& g)
      : L(g.H + 2 * g.pad, g.W + 2 * g.pad, g.stride, g.stride), len(g.OH * L.Wq) {
    for (int64_t kh = 0; kh < g.k; ++kh)
      for (int64_t kw = 0; kw < g.k; ++kw) {
        off.push_back(L.at(kh, kw));
        delta.push_back(static_cast<int32_t>(kh * g.W + kw));
      }
    const std::vector<float> compact = inverse_counts(g);
    inv.assign(static_cast<size_t>(len), 0.f);
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow)
        inv[static_cast<size_t>(oh * L.Wq + ow)] = compact[static_cast<size_t>(oh * g.OW + ow)];
  }
};

// Running max over the taps in window order (strict >: the first maximum in
// row-major order wins); ct starts at the always-real tap (pad, pad), so a
// window of -inf pixels still points at a real one.
template <int T>
void max_taps(float* __restrict mv, int32_t* __restrict mt, const float* buf, const int64_t* off,
              const int32_t* delta, int32_t center, int64_t len) {
  const float* s[T];
  int32_t d[T];
  for (int t = 0; t < T; ++t) {
    s[t] = buf + off[t];
    d[t] = delta[t];
  }
  for (int64_t i = 0; i < len; ++i) {
    float cur = -std::numeric_limits<float>::infinity();
    int32_t ct = center;
#pragma GCC unroll 32
    for (int t = 0; t < T; ++t) {
      const float v = s[t][i];
      const bool m = v > cur;
      cur = m ? v : cur;
      ct = m ? d[t] : ct;
    }
    mv[i] = cur;
    mt[i] = ct;
  }
}

// max_taps straight into the output rows (OW >= 8; see taps_rows): the
// maximum to y, its index in the input plane to argmax.
template <int T>
void max_taps_rows(float* y, int32_t* argmax, const float* buf, const int64_t* off, const int32_t* delta,
                   int32_t center, const PoolGeom& g, int64_t Wq) {
  typedef int32_t v8i __attribute__((vector_size(32)));
  const float* s[T];
  v8i d[T];
  for (int t = 0; t < T; ++t) {
    s[t] = buf + off[t];
    d[t] = v8i{} + delta[t];
  }
  const v8i lane = v8i{0, 1, 2, 3, 4, 5, 6, 7} * static_cast<int32_t>(g.stride);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int32_t row0 = static_cast<int32_t>((oh * g.stride - g.pad) * g.W - g.pad);
    for_row_vectors(g.OW, [&](int64_t ow, int64_t) {
      const int64_t i = oh * Wq + ow;
      v8 cur = splat(-std::numeric_limits<float>::infinity());
      v8i ct = v8i{} + center;
#pragma GCC unroll 32
      for (int t = 0; t < T; ++t) {
        const v8 v = load8(s[t] + i);
        const v8i m = v > cur;
        cur = m ? v : cur;
        ct = m ? d[t] : ct;
      }
      store8(y + oh * g.OW + ow, cur);
      const v8i a = ct + lane + (row0 + static_cast<int32_t>(ow * g.stride));
      std::memcpy(argmax + oh * g.OW + ow, &a, sizeof a);
    });
  }
}

bool max_taps_rows_any(float* y, int32_t* argmax, const float* buf, const int64_t* off, const int32_t* delta,
                       int32_t center, int64_t T, const PoolGeom& g, int64_t Wq) {
  if (g.OW < 8) return false;
  switch (T) {
    case 9: max_taps_rows<9>(y, argmax, buf, off, delta, center, g, Wq); return true;
    case 25: max_taps_rows<25>(y, argmax, buf, off, delta, center, g, Wq); return true;
    default: return false;
  }
}

void max_taps_any(float* mv, int32_t* mt, const float* buf, const int64_t* off, const int32_t* delta,
                  int32_t center, int64_t T, int64_t len) {
  switch (T) {
    case 9: return max_taps<9>(mv, mt, buf, off, delta, center, len);
    case 4: return max_taps<4>(mv, mt, buf, off, delta, center, len);
    case 16: return max_taps<16>(mv, mt, buf, off, delta, center, len);
    case 25: return max_taps<25>(mv, mt, buf, off, delta, center, len);
    default: break;
  }
  for (int64_t i = 0; i < len; ++i) {
    mv[i] = -std::numeric_limits<float>::infinity();
    mt[i] = center;
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < len; ++i) {
      const float v = buf[off[t] + i];
      const bool m = v > mv[i];
      mv[i] = m ? v : mv[i];
      mt[i] = m ? delta[t] : mt[i];
    }
}

// out[i] = (sum of the taps) * inv[i], or the plain sum when inv is null.
template <int T, bool kScale>
void sum_taps(float* __restrict out, const float* buf, const int64_t* off, const float* __restrict inv, int64_t len) {
  const float* s[T];
  for (int t = 0; t < T; ++t) s[t] = buf + off[t];
  for (int64_t i = 0; i < len; ++i) {
    float acc = 0.f;
#pragma GCC unroll 32
    for (int t = 0; t < T; ++t) acc += s[t][i];
    out[i] = kScale ? acc * inv[i] : acc;
  }
}

template <int T>
void sum_taps_t(float* out, const float* buf, const int64_t* off, const float* inv, int64_t len) {
  if (inv)
    sum_taps<T, true>(out, buf, off, inv, len);
  else
    sum_taps<T, false>(out, buf, off, inv, len);
}

void sum_taps_any(float* out, const float* buf, const int64_t* off, const float* inv, int64_t T, int64_t len) {
  switch (T) {
    case 9: return sum_taps_t<9>(out, buf, off, inv, len);
    case 4: return sum_taps_t<4>(out, buf, off, inv, len);
    case 16: return sum_taps_t<16>(out, buf, off, inv, len);
    case 25: return sum_taps_t<25>(out, buf, off, inv, len);
    default: break;
  }
  std::fill(out, out + len, 0.f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < len; ++i) out[i] += buf[off[t] + i];
  if (inv)
    for (int64_t i = 0; i < len; ++i) out[i] *= inv[i];
}

void max_pool_flat(const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
  const FlatPool F(g);
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, T = g.k * g.k;
  const int32_t center = F.delta[static_cast<size_t>(g.pad * g.k + g.pad)];
  // Buffer: the -inf padded plane (+ fill scratch), flat maxima, flat argmax offsets.
  const int64_t head = F.L.floats() + fill_scratch(F.L);
  for_planes(g, head + 2 * F.len, [&](int64_t p, float* buf) {
    float* mv = buf + head;
    int32_t* mt = reinterpret_cast<int32_t*>(mv + F.len);
    fill_flat(F.L, x + p * HW, g.H, g.W, g.pad, g.pad, false, buf, -std::numeric_limits<float>::infinity());
    float* yp = y + p * OHW;
    int32_t* ap = argmax + p * OHW;
    if (max_taps_rows_any(yp, ap, buf, F.off.data(), F.delta.data(), center, T, g, F.L.Wq)) return;
    max_taps_any(mv, mt, buf, F.off.data(), F.delta.data(), center, T, F.len);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const int32_t row0 = static_cast<int32_t>((oh * g.stride - g.pad) * g.W - g.pad);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        yp[oh * g.OW + ow] = mv[oh * F.L.Wq + ow];
        ap[oh * g.OW + ow] = row0 + static_cast<int32_t>(ow * g.stride) + mt[oh * F.L.Wq + ow];
      }
    }
  });
}

void avg_pool_flat_forward(const PoolGeom& g, const float* x, float* y) {
  const FlatPool F(g);
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, T = g.k * g.k;
  const int64_t head = F.L.floats() + fill_scratch(F.L);
  for_planes(g, head + F.len, [&](int64_t p, float* buf) {
    float* out = buf + head;
    fill_flat(F.L, x + p * HW, g.H, g.W, g.pad, g.pad, false, buf);
    float* yp = y + p * OHW;
    const float* inv = F.inv.data();
    if (taps_rows_any(buf, F.off.data(), ones, T, g.OH, g.OW, F.L.Wq,
                      [yp, inv, OW = g.OW, Wq = F.L.Wq](int64_t oh, int64_t ow, int64_t, v8 v) {
                        store8(yp + oh * OW + ow, v * load8(inv + oh * Wq + ow));
                      }))
      return;
    sum_taps_any(out, buf, F.off.data(), F.inv.data(), T, F.len);
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) yp[oh * g.OW + ow] = out[oh * F.L.Wq + ow];
  });
}

// Stride 1: dx is the correlation of dy / count, zero-extended by k - 1 rows
// and columns, with a k x k window of ones (as the depthwise backward-data
// pass): each dx element sums its k*k windows in registers, written once.
// (Scattering k*k runs into the plane instead was slower than the separable form.)
void avg_pool_flat_backward_s1(const PoolGeom& g, const float* dy, float* dx, bool accumulate) {
  const int64_t A = g.k - 1, HW = g.H * g.W, OHW = g.OH * g.OW, T = g.k * g.k;
  const FlatLayout Q(g.H + g.pad + A, g.W + g.pad + A, 1, 1);
  const int64_t len = g.H * Q.Wq;
  std::vector<int64_t> off;
  for (int64_t kh = 0; kh < g.k; ++kh)
    for (int64_t kw = 0; kw < g.k; ++kw) off.push_back(Q.at(g.pad + kh, g.pad + kw));
  const std::vector<float> inv = inverse_counts(g);
  const int64_t rows = std::min(g.OH, Q.Hq - A), cols = std::min(g.OW, Q.Wq - A);
  for_planes(g, Q.floats() + len, [&](int64_t p, float* buf) {
    float* out = buf + Q.floats();
    std::fill(buf, buf + Q.floats(), 0.f);
    const float* gp = dy + p * OHW;
    for (int64_t i = 0; i < rows; ++i) {
      float* __restrict q = buf + (i + A) * Q.Wq + A;
      for (int64_t j = 0; j < cols; ++j) q[j] = gp[i * g.OW + j] * inv[static_cast<size_t>(i * g.OW + j)];
    }
    float* dp = dx + p * HW;
    if (taps_rows_any(buf, off.data(), ones, T, g.H, g.W, Q.Wq,
                      [dp, W = g.W, accumulate](int64_t ih, int64_t iw, int64_t fresh, v8 v) {
                        store_or_add8(dp + ih * W + iw, v, accumulate, fresh);
                      }))
      return;
    sum_taps_any(out, buf, off.data(), nullptr, T, len);  // a window of ones
    for (int64_t ih = 0; ih < g.H; ++ih) {
      const float* __restrict o = out + ih * Q.Wq;
      float* __restrict dr = dp + ih * g.W;
      if (accumulate)
        for (int64_t j = 0; j < g.W; ++j) dr[j] += o[j];
      else
        for (int64_t j = 0; j < g.W; ++j) dr[j] = o[j];
    }
  });
}

}  // namespace

// Separable: a row pass keeps, per input row and output column, the row
// maximum and its column (first on ties); a column pass then keeps the first
// row holding the window maximum, i.e. the first maximum in row-major order.
void max_pool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
  if (g.k == 2 && g.stride == 2 && g.pad == 0) return max_pool_2x2s2(g, x, y, argmax);
  if (flat_pool(g)) return max_pool_flat(g, x, y, argmax);
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, planes = g.N * g.C;
  const ColTaps T(g);
  std::vector<int64_t> first(static_cast<size_t>(g.OW));  // first real column of each window
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    int64_t w0, w1;
    window(ow, g.stride, g.pad, g.k, g.W, w0, w1);
    first[static_cast<size_t>(ow)] = std::min(w0, g.W - 1);
  }
#pragma omp parallel if (planes * OHW >= kParallelMin)
  {
    std::vector<float> hmax(static_cast<size_t>(g.H * g.OW));
    std::vector<int32_t> hcol(static_cast<size_t>(g.H * g.OW));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const float* xp = x + p * HW;
      for (int64_t ih = 0; ih < g.H; ++ih) {
        const float* xr = xp + ih * g.W;
        float* __restrict hm = hmax.data() + ih * g.OW;
        int32_t* __restrict hc = hcol.data() + ih * g.OW;
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          hm[ow] = xr[first[static_cast<size_t>(ow)]];
          hc[ow] = static_cast<int32_t>(first[static_cast<size_t>(ow)]);
        }
        for (int64_t kw = 0; kw < g.k; ++kw) {
          const int64_t off = T.off[static_cast<size_t>(kw)];
          const int64_t lo = T.lo[static_cast<size_t>(kw)], hi = T.hi[static_cast<size_t>(kw)];
          if (g.stride == 1)
            max_row_tap<true>(hm, hc, xr, lo, hi, 1, off);
          else
            max_row_tap<false>(hm, hc, xr, lo, hi, g.stride, off);
        }
      }
      float* yp = y + p * OHW;
      int32_t* ap = argmax + p * OHW;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        int64_t h0, h1;
        window(oh, g.stride, g.pad, g.k, g.H, h0, h1);
        float* __restrict yr = yp + oh * g.OW;
        int32_t* __restrict ar = ap + oh * g.OW;
        if (h1 <= h0) {  // empty window: impossible when pad <= k/2 (the op checks)
          std::fill(yr, yr + g.OW, 0.f);
          std::fill(ar, ar + g.OW, -1);
          continue;
        }
        {
          const float* hm = hmax.data() + h0 * g.OW;
          const int32_t* hc = hcol.data() + h0 * g.OW;
          const int32_t base = static_cast<int32_t>(h0 * g.W);
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            yr[ow] = hm[ow];
            ar[ow] = base + hc[ow];
          }
        }
        for (int64_t ih = h0 + 1; ih < h1; ++ih) {
          const float* __restrict hm = hmax.data() + ih * g.OW;
          const int32_t* __restrict hc = hcol.data() + ih * g.OW;
          const int32_t base = static_cast<int32_t>(ih * g.W);
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            const float v = hm[ow], cur = yr[ow];
            const int32_t cand = base + hc[ow], ca = ar[ow];
            const int32_t m = -static_cast<int32_t>(v > cur);
            yr[ow] = std::max(cur, v);
            ar[ow] = (cand & m) | (ca & ~m);
          }
        }
      }
    }
  }
}

void max_pool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax, float* dx,
                       bool accumulate) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  for_planes(g, 0, [&](int64_t p, float*) {
    float* dp = dx + p * HW;
    if (!accumulate) std::fill(dp, dp + HW, 0.f);
    const float* gp = dy + p * OHW;
    const int32_t* ap = argmax + p * OHW;
    for (int64_t o = 0; o < OHW; ++o)
      if (ap[o] >= 0) dp[ap[o]] += gp[o];
  });
}

void avg_pool_forward(const PoolGeom& g, const float* x, float* y) {
  if (flat_pool(g)) return avg_pool_flat_forward(g, x, y);
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  const ColTaps T(g);
  const std::vector<float> inv = inverse_counts(g);
  // Buffer: horizontal window sums [H, OW].
  for_planes(g, g.H * g.OW, [&](int64_t p, float* hs) {
    const float* xp = x + p * HW;
    for (int64_t ih = 0; ih < g.H; ++ih) {
      const float* __restrict xr = xp + ih * g.W;
      float* __restrict hr = hs + ih * g.OW;
      std::fill(hr, hr + g.OW, 0.f);
      for (int64_t kw = 0; kw < g.k; ++kw) {
        const int64_t off = T.off[static_cast<size_t>(kw)];
        for (int64_t ow = T.lo[static_cast<size_t>(kw)]; ow < T.hi[static_cast<size_t>(kw)]; ++ow)
          hr[ow] += xr[ow * g.stride + off];
      }
    }
    float* yp = y + p * OHW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0, h1;
      window(oh, g.stride, g.pad, g.k, g.H, h0, h1);
      float* __restrict yr = yp + oh * g.OW;
      std::fill(yr, yr + g.OW, 0.f);
      for (int64_t ih = h0; ih < h1; ++ih) {
        const float* __restrict hr = hs + ih * g.OW;
        for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow] += hr[ow];
      }
      const float* __restrict ir = inv.data() + oh * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow] *= ir[ow];
    }
  });
}

void avg_pool_backward(const PoolGeom& g, const float* dy, float* dx, bool accumulate) {
  if (flat_pool(g) && g.stride == 1) return avg_pool_flat_backward_s1(g, dy, dx, accumulate);
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  const ColTaps T(g);
  const std::vector<float> inv = inverse_counts(g);
  // Buffer: dy / count [OH, OW], then its scatter over input rows [H, OW].
  for_planes(g, OHW + g.H * g.OW, [&](int64_t p, float* buf) {
    float* __restrict gs = buf;
    float* __restrict vs = buf + OHW;
    const float* gp = dy + p * OHW;
    for (int64_t o = 0; o < OHW; ++o) gs[o] = gp[o] * inv[static_cast<size_t>(o)];
    std::fill(vs, vs + g.H * g.OW, 0.f);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0, h1;
      window(oh, g.stride, g.pad, g.k, g.H, h0, h1);
      const float* __restrict gr = gs + oh * g.OW;
      for (int64_t ih = h0; ih < h1; ++ih) {
        float* __restrict vr = vs + ih * g.OW;
        for (int64_t ow = 0; ow < g.OW; ++ow) vr[ow] += gr[ow];
      }
    }
    float* dp = dx + p * HW;
    if (!accumulate) std::fill(dp, dp + HW, 0.f);
    for (int64_t ih = 0; ih < g.H; ++ih) {
      const float* __restrict vr = vs + ih * g.OW;
      float* __restrict dr = dp + ih * g.W;
      for (int64_t kw = 0; kw < g.k; ++kw) {
        const int64_t off = T.off[static_cast<size_t>(kw)];
        for (int64_t ow = T.lo[static_cast<size_t>(kw)]; ow < T.hi[static_cast<size_t>(kw)]; ++ow)
          dr[ow * g.stride + off] += vr[ow];
      }
    }
  });
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
