// CUDA optimizer updates over a whole flat parameter buffer, one fused kernel
// each (PyTorch Adam / SGD semantics, see backend.h), and the gradient-clip
// scale computed on the device so a step never reads back to the host.
// Bench: benchmarks/kernel-bench (roofline = copy).
#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {
__global__ void adam_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v, int64_t n, float lr, float beta1, float beta2, float eps,
                            float weight_decay, float step, float inv_sqrt_bc2, const float* __restrict__ grad_scale) {
  const float gs = grad_scale ? grad_scale[0] : 1.f;
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
