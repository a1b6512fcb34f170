// The DARTS mixed op over batch-normalised inputs on the GPU (op table:
// normalized_sum_forward / normalized_sum_backward; the CPU kernels in
// kernels/cpu/normalized_sum.cpp hold the math and why it is fused there).
//   forward : y[i] = sum_k a_k(i) * invstd_k[c] * (xs[k][i] - mean_k[c]), one pass (K
//             pointers by value, up to kMaxK per launch, later chunks add in).
//   backward: composed of the tested kernels: each normalised input's normalised
//             values and its upstream share g_k are staged in scratch, then
//             weighted_sum_backward (g_k, plain inputs' dx and dw) and
//             batch_norm_backward (dx of the normalised inputs). The GPU has the
//             bandwidth the CPU lacks; a single fused backward kernel is left to do.
// Determinism: every reduction is that of the composed kernels (fixed order).
// Bench: build/bin/kernel-bench; parity: tests/cuda (the op table's spec).
#include <vector>

#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {
constexpr int kMaxK = 8;

struct Inputs {
  const float* p[kMaxK];
};

template <bool Acc>
__global__ void forward_kernel(float* __restrict__ y, Inputs xs, const float* __restrict__ w,
                               const float* __restrict__ rs, const float* __restrict__ mean,
                               const float* __restrict__ invstd, int K, int64_t N, int64_t C, int64_t HW) {
  const int64_t n_all = N * C * HW;
  MN_GRID_STRIDE(i, n_all) {
    const int64_t plane = i / HW, n = plane / C, c = plane % C;
    float s = Acc ? y[i] : 0.f;
#pragma unroll
    for (int k = 0; k < kMaxK; ++k)
      if (k < K) {
        const float a = w[k] * (rs ? __ldg(rs + k * N + n) : 1.f) * __ldg(invstd + k * C + c);
        s = fmaf(a, __ldg(xs.p[k] + i) - __ldg(mean + k * C + c), s);
      }
    y[i] = s;
  }
}

// out = (x - mean[c]) * invstd[c]
__global__ void normalize_kernel(float* __restrict__ out, const float* __restrict__ x, const float* __restrict__ mean,
                                 const float* __restrict__ invstd, int64_t C, int64_t HW, int64_t n) {
  MN_GRID_STRIDE(i, n) {
    const int64_t c = (i / HW) % C;
    out[i] = (x[i] - mean[c]) * invstd[c];
  }
}
}  // namespace

void normalized_sum_forward(const Context& c, float* y, const float* const* xs, const float* w, const float* rs,
                            const float* mean, const float* invstd, int K, int64_t N, int64_t C, int64_t HW) {
  const int64_t n = N * C * HW;
  if (n <= 0) return;
  if (K <= 0) {
    fill(c, y, 0.f, n);
    return;
  }
  for (int k0 = 0; k0 < K; k0 += kMaxK) {
    const int kc = std::min(kMaxK, K - k0);
    Inputs in{};
    for (int k = 0; k < kc; ++k) in.p[k] = xs[k0 + k];
    const float* r = rs ? rs + static_cast<int64_t>(k0) * N : nullptr;
    const int64_t o = static_cast<int64_t>(k0) * C;
    if (k0 > 0)
      forward_kernel<true><<<grid_for(c, n), kThreads, 0, c.stream>>>(y, in, w + k0, r, mean + o, invstd + o, kc, N,
                                                                       C, HW);
    else
      forward_kernel<false><<<grid_for(c, n), kThreads, 0, c.stream>>>(y, in, w + k0, r, mean + o, invstd + o, kc, N,
                                                                        C, HW);
    MN_CUDA_LAUNCH_CHECK();
  }
}

void normalized_sum_backward(const Context& c, float* const* dxs, float* dw, const float* dy, const float* const* xs,
                             const float* w, const float* rs, const float* mean, const float* invstd,
                             const int* normalized, const int* accumulate_x, int K, int64_t N, int64_t C, int64_t HW,
                             bool accumulate_w) {
  if (K <= 0) return;
  const int64_t n = N * C * HW;
  auto acc = [&](int k) { return accumulate_x && accumulate_x[k] && dxs[k]; };
  int staged = 0, added = 0;
  for (int k = 0; k < K; ++k) {
    staged += normalized[k] ? 1 : 0;
    added += !normalized[k] && acc(k) ? 1 : 0;
  }
  // Plain inputs that accumulate: weighted_sum_backward's g_k staged, then added.
  ScratchBuffer plain(*c.alloc, sizeof(float) * static_cast<size_t>(added) * static_cast<size_t>(n));
  float* next_plain = plain.as<float>();
  // Per normalised input: its normalised values (for dw) and g_k (for its batch-norm backward).
  ScratchBuffer scratch(*c.alloc, sizeof(float) * 2 * static_cast<size_t>(staged) * static_cast<size_t>(n));
  std::vector<const float*> ins(static_cast<size_t>(K));
  std::vector<float*> outs(static_cast<size_t>(K));
  float* next = scratch.as<float>();
  for (int k = 0; k < K; ++k) {
    ins[static_cast<size_t>(k)] = xs[k];
    outs[static_cast<size_t>(k)] = dxs[k];
    if (!normalized[k]) {
      if (acc(k)) {
        outs[static_cast<size_t>(k)] = next_plain;
        next_plain += n;
      }
      continue;
    }
    float* xn = next;
    float* g = next + n;
    next += 2 * n;
    if (n > 0) {
      normalize_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(xn, xs[k], mean + static_cast<int64_t>(k) * C,
                                                                  invstd + static_cast<int64_t>(k) * C, C, HW, n);
      MN_CUDA_LAUNCH_CHECK();
    }
    ins[static_cast<size_t>(k)] = xn;
    outs[static_cast<size_t>(k)] = dxs[k] ? g : nullptr;
  }
  weighted_sum_backward(c, outs.data(), dw, dy, ins.data(), w, rs, N, K, n, accumulate_w);
  for (int k = 0; k < K; ++k) {
    if (!dxs[k]) continue;
    if (!normalized[k]) {
      if (acc(k) && n > 0) axpby(c, dxs[k], outs[static_cast<size_t>(k)], 1.f, 1.f, n);
      continue;
    }
    batch_norm_backward(c, outs[static_cast<size_t>(k)], xs[k], mean + static_cast<int64_t>(k) * C,
                        invstd + static_cast<int64_t>(k) * C, nullptr, dxs[k], nullptr, nullptr, N, C, HW, acc(k));
  }
}

}  // namespace metanas::kernels::cuda
