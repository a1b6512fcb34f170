// CPU max / average pooling (square window, symmetric padding), forward and
// backward. Padding never takes part: a max is over real pixels only (argmax
// is the int32 index ih * W + iw into the input plane) and an average divides
// by the number of real pixels in the window (PyTorch count_include_pad=False).
// Planes are independent, so the work is split over N*C planes and every
// result is deterministic. Average pooling is done separably (rows, then
// columns) so the inner loops run over contiguous output rows.
// Bench: benchmarks/engine-bench.
#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {

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
    std::vector<float> buf(static_cast<size_t>(buf_floats));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) body(p, buf.data());
  }
}

}  // namespace

void max_pool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  for_planes(g, 0, [&](int64_t p, float*) {
    const float* xp = x + p * HW;
    float* yp = y + p * OHW;
    int32_t* ap = argmax + p * OHW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0, h1;
      window(oh, g.stride, g.pad, g.k, g.H, h0, h1);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t w0, w1;
        window(ow, g.stride, g.pad, g.k, g.W, w0, w1);
        // First maximum in scan order wins ties; an empty window (impossible
        // when pad <= k/2, which the op checks) gives 0 and index -1.
        float best = 0.f;
        int64_t bi = -1;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const float v = xp[ih * g.W + iw];
            if (bi < 0 || v > best) {
              best = v;
              bi = ih * g.W + iw;
            }
          }
        yp[oh * g.OW + ow] = best;
        ap[oh * g.OW + ow] = static_cast<int32_t>(bi);
      }
    }
  });
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
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  // Column windows and their reciprocal real-pixel counts, shared by all planes.
  std::vector<int64_t> wlo(static_cast<size_t>(g.OW)), whi(static_cast<size_t>(g.OW));
  for (int64_t ow = 0; ow < g.OW; ++ow) window(ow, g.stride, g.pad, g.k, g.W, wlo[ow], whi[ow]);
  // Buffer: horizontal window sums [H, OW].
  for_planes(g, g.H * g.OW, [&](int64_t p, float* hs) {
    const float* xp = x + p * HW;
    for (int64_t ih = 0; ih < g.H; ++ih) {
      const float* xr = xp + ih * g.W;
      float* hr = hs + ih * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        float s = 0.f;
        for (int64_t iw = wlo[ow]; iw < whi[ow]; ++iw) s += xr[iw];
        hr[ow] = s;
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
      const int64_t rows = h1 - h0;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t cnt = rows * (whi[ow] - wlo[ow]);
        yr[ow] = cnt > 0 ? yr[ow] / static_cast<float>(cnt) : 0.f;
      }
    }
  });
}

void avg_pool_backward(const PoolGeom& g, const float* dy, float* dx, bool accumulate) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  std::vector<int64_t> wlo(static_cast<size_t>(g.OW)), whi(static_cast<size_t>(g.OW));
  for (int64_t ow = 0; ow < g.OW; ++ow) window(ow, g.stride, g.pad, g.k, g.W, wlo[ow], whi[ow]);
  // Buffer: the scaled gradient scattered over rows [H, OW], then one dx row [W].
  for_planes(g, g.H * g.OW + g.W, [&](int64_t p, float* buf) {
    float* vs = buf;
    float* row = buf + g.H * g.OW;
    std::fill(vs, vs + g.H * g.OW, 0.f);
    const float* gp = dy + p * OHW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0, h1;
      window(oh, g.stride, g.pad, g.k, g.H, h0, h1);
      const float* __restrict gr = gp + oh * g.OW;
      for (int64_t ih = h0; ih < h1; ++ih) {
        float* __restrict vr = vs + ih * g.OW;
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t cnt = (h1 - h0) * (whi[ow] - wlo[ow]);
          vr[ow] += cnt > 0 ? gr[ow] / static_cast<float>(cnt) : 0.f;
        }
      }
    }
    float* dp = dx + p * HW;
    for (int64_t ih = 0; ih < g.H; ++ih) {
      std::fill(row, row + g.W, 0.f);
      const float* vr = vs + ih * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow)
        for (int64_t iw = wlo[ow]; iw < whi[ow]; ++iw) row[iw] += vr[ow];
      float* dr = dp + ih * g.W;
      if (accumulate)
        for (int64_t iw = 0; iw < g.W; ++iw) dr[iw] += row[iw];
      else
        std::copy(row, row + g.W, dr);
    }
  });
}

}  // namespace metanas::kernels::cpu
