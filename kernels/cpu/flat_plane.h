// Flat planes: the layout the depthwise convolutions and the 3x3 poolings
// compute on (kernels/cpu/conv.cpp, pool.cpp).
// A plane is copied (relu applied when asked) into a padded buffer split into
// stride phases in both dimensions: phase (a, b) is the grid of padded
// elements (r*sh + a, c*sw + b), Hq x Wq, row-major. The tap (kh, kw) of
// output (oh, ow) then reads phase ((kh*dh) % sh, (kw*dw) % sw) at row
// oh + (kh*dh)/sh, column ow + (kw*dw)/sw: for every output of the plane at
// once, laid out with row stride Wq, one contiguous run per tap. So each pass
// is a single long vectorised loop per plane (OH*Wq outputs, of which the
// columns ow >= OW are discarded) instead of a short loop per row: rows here
// are 7..28 floats, and the per-row setup and vector remainders cost more
// than the arithmetic. Rows of 8 or more outputs are now computed by
// taps_rows (below): whole 8-wide vectors straight into the output, the last
// one overlapping, which skips the discarded columns and the copy out. A
// slack of Wq padding floats after the phases keeps the discarded columns'
// reads inside the buffer.
// Compiled into each ISA variant of the files that include it (MN_CPU_ISA_BEGIN).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/vec8.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

struct FlatLayout {
  int64_t sh, sw, Hq, Wq, block;
  FlatLayout(int64_t rows, int64_t cols, int64_t stride_h, int64_t stride_w)
      : sh(stride_h),
        sw(stride_w),
        Hq((rows + stride_h - 1) / stride_h),
        Wq((cols + stride_w - 1) / stride_w),
        block(Hq * Wq) {}
  int64_t floats() const { return sh * sw * block + Wq; }
  // Offset of padded element (r, c); for tap offsets (r, c) = (kh*dh, kw*dw),
  // the start of the run that tap reads for output (0, 0).
  // r, c >= 0. Strides 1 and 2 (all the ops use) by shifts: an idiv per call
  // was most of a strided plane's fill and gather.
  int64_t at(int64_t r, int64_t c) const {
    return (phase(r, sh) * sw + phase(c, sw)) * block + quot(r, sh) * Wq + quot(c, sw);
  }
  static int64_t phase(int64_t v, int64_t s) { return s == 1 ? 0 : s == 2 ? (v & 1) : v % s; }
  static int64_t quot(int64_t v, int64_t s) { return s == 1 ? v : s == 2 ? (v >> 1) : v / s; }
};

// Unit strides: each padded row written once (fill, the data, fill), rows
// x[i * ld .. i * ld + n) to padded (top + i, left). Writing the whole buffer
// first and then the data wrote most of it twice, the larger part of a
// depthwise conv's time at 28x28.
inline void fill_flat_unit(const FlatLayout& L, const float* x, int64_t rows, int64_t n, int64_t ld, int64_t top,
                           int64_t left, bool relu, float* buf, float fill = 0.f) {
  const int64_t Wq = L.Wq;
  std::fill(buf, buf + top * Wq, fill);
  for (int64_t i = 0; i < rows; ++i) {
    const float* __restrict xr = x + i * ld;
    float* __restrict d = buf + (top + i) * Wq;
    for (int64_t c = 0; c < left; ++c) d[c] = fill;
    if (relu)
      for (int64_t j = 0; j < n; ++j) d[left + j] = std::max(xr[j], 0.f);
    else
      std::memcpy(d + left, xr, static_cast<size_t>(n) * sizeof(float));
    for (int64_t c = left + n; c < Wq; ++c) d[c] = fill;
  }
  std::fill(buf + (top + rows) * Wq, buf + L.floats(), fill);
}

// Sets the buffer to `fill` (the padding: 0, or -inf for max pooling) and
// copies rows x[0..rows) of width n to padded (top, left), relu'd when asked.
// Needs fill_scratch(L) floats after L.floats().
inline void fill_flat(const FlatLayout& L, const float* x, int64_t rows, int64_t n, int64_t top, int64_t left,
                      bool relu, float* buf, float fill = 0.f) {
  if (L.sh == 1 && L.sw == 1 && top + rows <= L.Hq && left + n <= L.Wq)
    return fill_flat_unit(L, x, rows, n, n, top, left, relu, buf, fill);
  std::fill(buf, buf + L.floats(), fill);
  for (int64_t i = 0; i < rows; ++i) {
    const float* __restrict xr = x + i * n;
    const int64_t r = i + top;
    if (L.sw == 1) {
      float* __restrict dst = buf + L.at(r, left);
      if (relu)
        for (int64_t j = 0; j < n; ++j) dst[j] = std::max(xr[j], 0.f);
      else
        std::memcpy(dst, xr, static_cast<size_t>(n) * sizeof(float));
      continue;
    }
    if (L.sw == 2) {
      // Pad the row into `wide` (2*Wq floats), then split even / odd columns:
      // constant-stride loops that vectorise (a gather per element does not).
      float* __restrict wide = buf + L.floats();
      for (int64_t c = 0; c < left; ++c) wide[c] = fill;
      if (relu)
        for (int64_t j = 0; j < n; ++j) wide[left + j] = std::max(xr[j], 0.f);
      else
        for (int64_t j = 0; j < n; ++j) wide[left + j] = xr[j];
      for (int64_t c = left + n; c < 2 * L.Wq; ++c) wide[c] = fill;
      float* __restrict e = buf + L.at(r, 0);
      float* __restrict o = buf + L.at(r, 1);
      for (int64_t k = 0; k < L.Wq; ++k) {
        e[k] = wide[2 * k];
        o[k] = wide[2 * k + 1];
      }
      continue;
    }
    for (int64_t b = 0; b < L.sw; ++b) {
      // source columns j with (j + left) % sw == b
      const int64_t j0 = ((b - left) % L.sw + L.sw) % L.sw;
      if (j0 >= n) continue;
      float* __restrict dst = buf + L.at(r, j0 + left);
      const int64_t cnt = (n - j0 + L.sw - 1) / L.sw;
      for (int64_t k = 0; k < cnt; ++k) dst[k] = relu ? std::max(xr[j0 + k * L.sw], 0.f) : xr[j0 + k * L.sw];
    }
  }
}

// The scratch fill_flat needs after the layout's floats.
inline int64_t fill_scratch(const FlatLayout& L) { return L.sw == 2 ? 2 * L.Wq : 0; }

// row[j] = padded element (r, j + left) for j < n: the gather of fill_flat's layout.
inline void gather_row(const FlatLayout& L, const float* buf, int64_t r, int64_t left, int64_t n, float* row) {
  if (L.sw == 1) {
    const float* __restrict src = buf + L.at(r, left);
    for (int64_t j = 0; j < n; ++j) row[j] = src[j];
    return;
  }
  if (L.sw == 2) {  // even j from the phase of column left, odd j from that of left + 1
    const float* __restrict p0 = buf + L.at(r, left);
    const float* __restrict p1 = buf + L.at(r, left + 1);
    int64_t k = 0;
    for (; 2 * k + 1 < n; ++k) {
      row[2 * k] = p0[k];
      row[2 * k + 1] = p1[k];
    }
    if (2 * k < n) row[2 * k] = p0[k];
    return;
  }
  for (int64_t b = 0; b < L.sw; ++b) {
    const int64_t j0 = ((b - left) % L.sw + L.sw) % L.sw;
    if (j0 >= n) continue;
    const float* __restrict src = buf + L.at(r, j0 + left);
    const int64_t cnt = (n - j0 + L.sw - 1) / L.sw;
    for (int64_t k = 0; k < cnt; ++k) row[j0 + k * L.sw] = src[k];
  }
}

// Copies an [rows, cols] plane into row stride Wq with zeros in columns >= cols.
inline void widen_rows(const float* src, int64_t rows, int64_t cols, int64_t Wq, float* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict d = dst + r * Wq;
    const float* __restrict s = src + r * cols;
    for (int64_t c = 0; c < cols; ++c) d[c] = s[c];
    for (int64_t c = cols; c < Wq; ++c) d[c] = 0.f;
  }
}

// Tap sums of a flat plane straight into output rows: out(oh, ow) = sum_t
// w[t] * src[off[t] + oh * Wq + ow] (taps in order) for rows oh < OH of
// OW >= 8 outputs; store(oh, ow, fresh, v) gets the 8 sums from ow
// (for_row_vectors: the last vector may overlap). Against one flat run over
// OH * Wq outputs and a copy of the kept columns out of it, this skips the
// discarded columns and the copy (the depthwise convs, the average pools:
// weights of one, whose products are exact, so the sums are the plain sums).
template <int T, typename Store>
void taps_rows(const float* src, const int64_t* off, const float* w, int64_t OH, int64_t OW, int64_t Wq,
               Store store) {
  const float* s[T];
  v8 wt[T];
  for (int t = 0; t < T; ++t) {
    s[t] = src + off[t];
    wt[t] = splat(w[t]);
  }
  for (int64_t oh = 0; oh < OH; ++oh)
    for_row_vectors(OW, [&](int64_t ow, int64_t fresh) {
      const int64_t i = oh * Wq + ow;
      v8 acc = splat(0.f);
#pragma GCC unroll 32
      for (int t = 0; t < T; ++t) acc += wt[t] * load8(s[t] + i);
      store(oh, ow, fresh, acc);
    });
}

// taps_rows for the tap counts of the search spaces' 3x3 and 5x5 windows;
// false (nothing done) for others and for rows under 8 outputs.
template <typename Store>
bool taps_rows_any(const float* src, const int64_t* off, const float* w, int64_t T, int64_t OH, int64_t OW,
                   int64_t Wq, Store store) {
  if (OW < 8) return false;
  switch (T) {
    case 9: taps_rows<9>(src, off, w, OH, OW, Wq, store); return true;
    case 25: taps_rows<25>(src, off, w, OH, OW, Wq, store); return true;
    default: return false;
  }
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
