// Fused optimizer updates over a whole parameter set (PyTorch semantics).
#include <cmath>

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
               float beta2, float eps, float weight_decay, float bc1, float bc2,
               const float* grad_scale) {
  const float gs = grad_scale ? grad_scale[0] : 1.f;
  const float step = lr / bc1;
  const float inv_sqrt_bc2 = 1.f / std::sqrt(bc2);
#pragma omp parallel for simd schedule(static) if (n >= (1 << 14))
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * gs + weight_decay * p[i];
    m[i] = beta1 * m[i] + (1.f - beta1) * gi;
    v[i] = beta2 * v[i] + (1.f - beta2) * gi * gi;
    p[i] -= step * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
  }
}

void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
              float weight_decay, bool first_step, const float* grad_scale) {
  const float gs = grad_scale ? grad_scale[0] : 1.f;
#pragma omp parallel for simd schedule(static) if (n >= (1 << 14))
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i] * gs + weight_decay * p[i];
    if (buf) {
      buf[i] = first_step ? d : momentum * buf[i] + d;
      d = buf[i];
    }
    p[i] -= lr * d;
  }
}

void clip_scale(float* scale1, const float* sumsq1, float max_norm) {
  const float norm = std::sqrt(sumsq1[0]);
  const float s = max_norm / (norm + 1e-6f);
  scale1[0] = s < 1.f ? s : 1.f;
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
