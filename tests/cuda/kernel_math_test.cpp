// Host-side checks of the CUDA kernels' per-element index math
// (kernels/cuda/conv_math.cuh: each CUDA thread calls these functions for its
// element) against naive references, and of the caching allocator's size
// buckets. Tagged [host]: they run even where no GPU is visible.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "kernels/cuda/caching_allocator.h"
#include "kernels/cuda/conv_math.cuh"
#include "kernels/cuda/plane_grid.cuh"
#include "kernels/cuda/staging_plan.h"
#include "metanas/engine/extension.h"
#include "metanas/kernels/philox.h"
#include "metanas/engine/random.h"

using namespace metanas;
using namespace metanas::kernels::cuda;

namespace {

std::vector<float> randv(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.normal();
  return v;
}

int out_size(int in, int k, int s, int plo, int phi, int d) { return (in + plo + phi - d * (k - 1) - 1) / s + 1; }

struct DwCase {
  int KH, KW, s, d, pt, pb, pl, pr;
};

// Runs f<KH, KW> with the compiled sizes of depthwise_conv.cu, else the runtime window.
template <template <int, int> class F, typename... A>
void dispatch(int KH, int KW, A&&... a) {
  if (KH == 3 && KW == 3) F<3, 3>::run(a...);
  else if (KH == 5 && KW == 5) F<5, 5>::run(a...);
  else if (KH == 1 && KW == 5) F<1, 5>::run(a...);
  else if (KH == 5 && KW == 1) F<5, 1>::run(a...);
  else F<0, 0>::run(a...);
}

template <int KH, int KW>
struct Fwd {
  static void run(const std::vector<float>& x, const std::vector<float>& w, const DwGeom& d, bool relu,
                  std::vector<float>& y) {
    for (int oh = 0; oh < d.OH; ++oh)
      for (int ow = 0; ow < d.OW; ++ow)
        y[oh * d.OW + ow] = relu ? dw_forward_point<KH, KW, true>(x.data(), w.data(), d, oh, ow)
                                 : dw_forward_point<KH, KW, false>(x.data(), w.data(), d, oh, ow);
  }
};
template <int KH, int KW>
struct Bwd {
  static void run(const std::vector<float>& dy, const std::vector<float>& w, const DwGeom& d, std::vector<float>& dx) {
    for (int h = 0; h < d.H; ++h)
      for (int c = 0; c < d.W; ++c) dx[h * d.W + c] = dw_backward_data_point<KH, KW>(dy.data(), w.data(), d, h, c);
  }
};

}  // namespace

TEST_CASE("depthwise index math matches a naive scatter reference", "[host][depthwise]") {
  const std::vector<DwCase> cases = {
      {3, 3, 1, 1, 1, 1, 1, 1}, {3, 3, 2, 1, 1, 1, 1, 1}, {3, 3, 1, 2, 2, 2, 2, 2}, {3, 3, 2, 2, 2, 2, 2, 2},
      {5, 5, 1, 1, 2, 2, 2, 2}, {5, 5, 2, 2, 4, 4, 4, 4}, {1, 5, 1, 1, 0, 0, 2, 2}, {1, 5, 2, 1, 0, 0, 2, 2},
      {5, 1, 1, 1, 2, 2, 0, 0}, {5, 1, 2, 1, 2, 2, 0, 0}, {3, 3, 1, 1, 0, 2, 2, 0}, {7, 7, 1, 1, 3, 3, 3, 3},
      {3, 3, 2, 1, 0, 1, 0, 1}, {2, 3, 2, 1, 1, 0, 1, 1}};
  Rng rng(7);
  for (const auto& cs : cases) {
    for (int H : {7, 10}) {
      const int W = H + 1;
      DwGeom d{1, H, W, out_size(H, cs.KH, cs.s, cs.pt, cs.pb, cs.d), out_size(W, cs.KW, cs.s, cs.pl, cs.pr, cs.d),
               cs.KH, cs.KW, cs.s, cs.s, cs.pt, cs.pl, cs.d, cs.d};
      INFO("KH " << cs.KH << " KW " << cs.KW << " stride " << cs.s << " dil " << cs.d << " pads " << cs.pt << "/"
                 << cs.pb << "/" << cs.pl << "/" << cs.pr << " H " << H);
      const auto x = randv(static_cast<size_t>(H * W), rng), w = randv(static_cast<size_t>(cs.KH * cs.KW), rng);
      const auto dy = randv(static_cast<size_t>(d.OH * d.OW), rng);
      // Naive references by scattering over every (output, tap).
      std::vector<double> y_ref(static_cast<size_t>(d.OH * d.OW), 0.0), yr_ref = y_ref;
      std::vector<double> dx_ref(static_cast<size_t>(H * W), 0.0), dw_ref(static_cast<size_t>(cs.KH * cs.KW), 0.0),
          dwr_ref = dw_ref;
      for (int oh = 0; oh < d.OH; ++oh)
        for (int ow = 0; ow < d.OW; ++ow)
          for (int kh = 0; kh < cs.KH; ++kh)
            for (int kw = 0; kw < cs.KW; ++kw) {
              const int ih = oh * cs.s - cs.pt + kh * cs.d, iw = ow * cs.s - cs.pl + kw * cs.d;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const double xv = x[ih * W + iw], wv = w[kh * cs.KW + kw], g = dy[oh * d.OW + ow];
              y_ref[oh * d.OW + ow] += wv * xv;
              yr_ref[oh * d.OW + ow] += wv * std::max(xv, 0.0);
              dx_ref[ih * W + iw] += wv * g;
              dw_ref[kh * cs.KW + kw] += g * xv;
              dwr_ref[kh * cs.KW + kw] += g * std::max(xv, 0.0);
            }
      std::vector<float> y(y_ref.size()), yr(y_ref.size()), dx(dx_ref.size());
      dispatch<Fwd>(cs.KH, cs.KW, x, w, d, false, y);
      dispatch<Fwd>(cs.KH, cs.KW, x, w, d, true, yr);
      dispatch<Bwd>(cs.KH, cs.KW, dy, w, d, dx);
      for (size_t i = 0; i < y.size(); ++i) {
        REQUIRE(y[i] == Approx(y_ref[i]).margin(1e-5));
        REQUIRE(yr[i] == Approx(yr_ref[i]).margin(1e-5));
      }
      for (size_t i = 0; i < dx.size(); ++i) REQUIRE(dx[i] == Approx(dx_ref[i]).margin(1e-5));
      // Weight gradient as the kernel forms it: per output, every tap's input.
      for (int kh = 0; kh < cs.KH; ++kh)
        for (int kw = 0; kw < cs.KW; ++kw) {
          double s = 0, sr = 0;
          for (int oh = 0; oh < d.OH; ++oh)
            for (int ow = 0; ow < d.OW; ++ow) {
              s += dy[oh * d.OW + ow] * dw_tap_input(x.data(), d, oh, ow, kh, kw, false);
              sr += dy[oh * d.OW + ow] * dw_tap_input(x.data(), d, oh, ow, kh, kw, true);
            }
          REQUIRE(s == Approx(dw_ref[kh * cs.KW + kw]).margin(1e-5));
          REQUIRE(sr == Approx(dwr_ref[kh * cs.KW + kw]).margin(1e-5));
        }
    }
  }
}

TEST_CASE("pooling index math matches naive references", "[host][pool]") {
  Rng rng(11);
  struct P {
    int k, s, pad;
  };
  for (const P pc : {P{3, 1, 1}, P{3, 2, 1}, P{2, 2, 0}, P{3, 3, 0}, P{5, 2, 2}, P{1, 1, 0}}) {
    for (int H : {5, 8, 9}) {
      const int W = H + 2;
      const PoolDims p{H, W, (H + 2 * pc.pad - pc.k) / pc.s + 1, (W + 2 * pc.pad - pc.k) / pc.s + 1, pc.k, pc.s, pc.pad};
      INFO("k " << pc.k << " stride " << pc.s << " pad " << pc.pad << " H " << H);
      auto x = randv(static_cast<size_t>(H * W), rng);
      x[3] = x[4];  // a tie: the first maximum in window order must win
      const auto dy = randv(static_cast<size_t>(p.OH * p.OW), rng);
      std::vector<int32_t> arg(static_cast<size_t>(p.OH * p.OW));
      std::vector<double> dx_max(static_cast<size_t>(H * W), 0.0), dx_avg = dx_max;
      for (int oh = 0; oh < p.OH; ++oh)
        for (int ow = 0; ow < p.OW; ++ow) {
          // Reference: scan the window, skipping padding.
          double best = 0, sum = 0;
          int bi = -1, cnt = 0;
          for (int kh = 0; kh < pc.k; ++kh)
            for (int kw = 0; kw < pc.k; ++kw) {
              const int h = oh * pc.s - pc.pad + kh, w = ow * pc.s - pc.pad + kw;
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              const double v = x[h * W + w];
              if (bi < 0 || v > best) {
                best = v;
                bi = h * W + w;
              }
              sum += v;
              ++cnt;
            }
          int a = -2;
          const float m = max_pool_point(x.data(), p, oh, ow, &a);
          REQUIRE(a == bi);
          REQUIRE(m == static_cast<float>(best));
          arg[oh * p.OW + ow] = a;
          REQUIRE(pool_count(p, oh, ow) == cnt);
          REQUIRE(avg_pool_point(x.data(), p, oh, ow) == Approx(sum / cnt).margin(1e-6));
          dx_max[bi] += dy[oh * p.OW + ow];
          for (int kh = 0; kh < pc.k; ++kh)
            for (int kw = 0; kw < pc.k; ++kw) {
              const int h = oh * pc.s - pc.pad + kh, w = ow * pc.s - pc.pad + kw;
              if (h >= 0 && h < H && w >= 0 && w < W) dx_avg[h * W + w] += dy[oh * p.OW + ow] / cnt;
            }
        }
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w) {
          REQUIRE(max_pool_backward_point(dy.data(), arg.data(), p, h, w) == Approx(dx_max[h * W + w]).margin(1e-5));
          REQUIRE(avg_pool_backward_point(dy.data(), p, h, w) == Approx(dx_avg[h * W + w]).margin(1e-5));
        }
    }
  }
}

TEST_CASE("caching allocator buckets waste under 25% and are monotone", "[host][allocator]") {
  REQUIRE(CachingAllocator::bucket_size(1) == 512);
  REQUIRE(CachingAllocator::bucket_size(512) == 512);
  REQUIRE(CachingAllocator::bucket_size(513) == 640);
  REQUIRE(CachingAllocator::bucket_size(1024) == 1024);
  size_t prev = 0;
  for (size_t b = 1; b < (size_t(1) << 26); b = b * 5 / 4 + 1) {
    const size_t k = CachingAllocator::bucket_size(b);
    REQUIRE(k >= b);
    REQUIRE(k >= prev);
    if (b > 512) REQUIRE(static_cast<double>(k - b) < 0.25 * static_cast<double>(b));
    REQUIRE(CachingAllocator::bucket_size(k) == k);  // a bucket size is its own bucket
    prev = k;
  }
}

// The packed plane grid (kernels/cuda/plane_grid.cuh) must visit every
// (plane, element) of small planes exactly once, and no lane twice.
TEST_CASE("packed plane grid covers each plane element once", "[host]") {
  for (int64_t elems : {1, 2, 3, 7, 31, 32, 33, 49, 64, 100, 128}) {
    const int shift = plane_pack_shift(elems);
    REQUIRE(shift >= 0);
    REQUIRE((int64_t{1} << shift) >= elems);
    for (int64_t planes : {1, 2, 5, 37, 300}) {
      std::vector<int> seen(static_cast<size_t>(planes * elems), 0);
      const int64_t blocks = packed_blocks(planes, shift);
      for (int64_t b = 0; b < blocks; ++b)
        for (unsigned t = 0; t < static_cast<unsigned>(kPlaneThreads); ++t) {
          int64_t plane;
          int q;
          if (plane_slot(shift, planes, static_cast<int>(elems), static_cast<unsigned>(b), t, &plane, &q))
            ++seen[static_cast<size_t>(plane * elems + q)];
        }
      for (size_t i = 0; i < seen.size(); ++i) REQUIRE(seen[i] == 1);
    }
  }
  REQUIRE(plane_pack_shift(129) == -1);  // large planes are tiled
  REQUIRE(plane_pack_shift(14 * 14) == -1);
}

// The upload ring's bookkeeping against a brute-force model: a new chunk must
// wait exactly for the newest in-flight chunk whose bytes it overlaps, and
// never overlap a chunk it did not wait for.
TEST_CASE("staging ring waits only for overlapping in-flight chunks", "[host]") {
  constexpr size_t kCap = 4096;
  StagingPlan plan(kCap);
  struct Live {
    size_t b, e;
    uint64_t id;
  };
  std::vector<Live> live;  // the model
  Rng rng(7);
  uint64_t waits = 0;
  for (uint64_t id = 0; id < 2000; ++id) {
    // The device finishes some of the oldest chunks (in order).
    const size_t done = static_cast<size_t>(rng.uniform() * 3.f);
    for (size_t k = 0; k < done && !live.empty(); ++k) {
      plan.retire_through(live.front().id);
      live.erase(live.begin());
    }
    const size_t bytes = 1 + static_cast<size_t>(rng.uniform() * 1500.f);
    REQUIRE(plan.fits(bytes));
    uint64_t wait_for = 0;
    const size_t off = plan.take(bytes, id, &wait_for);
    const size_t n = (bytes + 255) / 256 * 256;
    REQUIRE(off + n <= kCap);
    uint64_t expect = StagingPlan::kNone;
    for (const Live& l : live)
      if (l.b < off + n && off < l.e) expect = l.id;
    REQUIRE(wait_for == expect);
    if (wait_for != StagingPlan::kNone) {
      ++waits;
      plan.retire_through(wait_for);
      while (!live.empty() && live.front().id <= wait_for) live.erase(live.begin());
    }
    for (const Live& l : live) REQUIRE(!(l.b < off + n && off < l.e));
    plan.commit();
    live.push_back({off, off + n, id});
    REQUIRE(plan.in_flight() == live.size());
  }
  REQUIRE(waits > 0);  // the ring did fill up in this run
  REQUIRE_FALSE(plan.fits(kCap + 1));
}

// The CUDA drop-path kernel's per-row function (kernels/cuda/random.cu calls
// drop_path_scale for row i) against the CPU backend's kernel: the same bits,
// so CPU and GPU runs draw the same masks.
TEST_CASE("CUDA drop-path row function equals the CPU drop_path_scales kernel", "[host]") {
  for (const PhiloxKey key : {PhiloxKey{1, 0, 0, 0}, PhiloxKey{0xfeedfacecafebeefull, 9, 4, 123}}) {
    const int64_t n = 777;
    std::vector<float> cpu(static_cast<size_t>(n));
    backend(Device::CPU).drop_path_scales(key, 0.2f, cpu.data(), n);
    for (int64_t i = 0; i < n; ++i)
      REQUIRE(kernels::drop_path_scale(key, 0.2f, static_cast<uint32_t>(i)) == cpu[static_cast<size_t>(i)]);
  }
}
