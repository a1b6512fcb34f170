// CUDA optimizer updates over a whole flat parameter buffer, one fused kernel
// each (PyTorch Adam / SGD semantics, see backend.h), and the gradient-clip
// scale computed on the device so a step never reads back to the host.
// Bench: benchmarks/kernel-bench (roofline = copy).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/step_state.h"

namespace metanas::kernels::cuda {

namespace {
__global__ void adam_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v, int64_t n, float lr, float beta1, float beta2, float eps,
                            float weight_decay, float step, float inv_sqrt_bc2, const float* __restrict__ grad_scale,
                            const float* __restrict__ bias2 = nullptr) {
  const float gs = grad_scale ? grad_scale[0] : 1.f;
  if (bias2) {
    // Bias corrections from the device (adam_count): the host launcher's
    // factoring, with IEEE division and sqrt, so the same bits.
    step = lr / bias2[0];
    inv_sqrt_bc2 = 1.f / sqrtf(bias2[1]);
  }
  MN_GRID_STRIDE(i, n) {
    const float pi = p[i];
    const float gi = g[i] * gs + weight_decay * pi;
    const float mi = beta1 * m[i] + (1.f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

// One thread: the step count t (two uint32 words) advances by one and the
// bias corrections 1 - beta^t are computed in double, as Adam::step did on
// the host; a replayed graph thus advances the count itself.
__global__ void adam_count_kernel(int32_t* step2, float beta1, float beta2, float* bias2) {
  const uint64_t t = (static_cast<uint64_t>(static_cast<uint32_t>(step2[0])) |
                      static_cast<uint64_t>(static_cast<uint32_t>(step2[1])) << 32) + 1;
  step2[0] = static_cast<int32_t>(static_cast<uint32_t>(t));
  step2[1] = static_cast<int32_t>(static_cast<uint32_t>(t >> 32));
  const double td = static_cast<double>(t);
  bias2[0] = static_cast<float>(1.0 - pow(static_cast<double>(beta1), td));
  bias2[1] = static_cast<float>(1.0 - pow(static_cast<double>(beta2), td));
}

__global__ void sgd_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf, int64_t n,
                           float lr, float momentum, float weight_decay, bool first_step,
                           const float* __restrict__ grad_scale) {
  const float gs = grad_scale ? grad_scale[0] : 1.f;
  MN_GRID_STRIDE(i, n) {
    const float pi = p[i];
    float d = g[i] * gs + weight_decay * pi;
    if (buf) {
      d = first_step ? d : momentum * buf[i] + d;
      buf[i] = d;
    }
    p[i] = pi - lr * d;
  }
}

__global__ void clip_scale_kernel(float* scale1, const float* sumsq1, float max_norm) {
  const float norm = sqrtf(sumsq1[0]);
  const float s = max_norm / (norm + 1e-6f);
  scale1[0] = s < 1.f ? s : 1.f;
}
}  // namespace

void adam_step(const Context& c, float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
               float beta2, float eps, float weight_decay, float bc1, float bc2, const float* grad_scale) {
  if (n <= 0) return;
  // Same factoring as the CPU kernel: p -= (lr/bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
  const float step = lr / bc1;
  const float inv_sqrt_bc2 = 1.f / std::sqrt(bc2);
  adam_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, step,
                                                         inv_sqrt_bc2, grad_scale);
  MN_CUDA_LAUNCH_CHECK();
}

void adam_count(const Context& c, int32_t* step2, float beta1, float beta2, float* bias2) {
  adam_count_kernel<<<1, 1, 0, c.stream>>>(step2, beta1, beta2, bias2);
  MN_CUDA_LAUNCH_CHECK();
}

void adam_step_biased(const Context& c, float* p, const float* g, float* m, float* v, int64_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, const float* bias2,
                      const float* grad_scale) {
  if (n <= 0) return;
  adam_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, 0.f,
                                                         0.f, grad_scale, bias2);
  MN_CUDA_LAUNCH_CHECK();
}

void sgd_step(const Context& c, float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
              float weight_decay, bool first_step, const float* grad_scale) {
  if (n <= 0) return;
  sgd_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(p, g, buf, n, lr, momentum, weight_decay, first_step,
                                                        grad_scale);
  MN_CUDA_LAUNCH_CHECK();
}

void clip_scale(const Context& c, float* scale1, const float* sumsq1, float max_norm) {
  clip_scale_kernel<<<1, 1, 0, c.stream>>>(scale1, sumsq1, max_norm);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
