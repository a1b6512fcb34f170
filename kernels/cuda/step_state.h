// Launchers of the device-resident step-state kernels (Backend's "device-
// resident step state" section, backend.h): Adam's step count and bias
// corrections, the Adam update reading them, and drop-path scales whose key's
// seed and task are device words. Outside the op table (they belong to no
// op), so only the files that define or forward them include this header.
// Defined in optim.cu and random.cu.
#pragma once
#include <cstdint>

#include "kernels/cuda/cuda_kernels.h"

namespace metanas::kernels::cuda {

void adam_count(const Context& c, int32_t* step2, float beta1, float beta2, float* bias2);
void adam_step_biased(const Context& c, float* p, const float* g, float* m, float* v, int64_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, const float* bias2,
                      const float* grad_scale);
void drop_path_scales_at(const Context& c, const int32_t* key3, uint32_t step, uint32_t op, float p, float* scale,
                         int64_t n);

}  // namespace metanas::kernels::cuda
