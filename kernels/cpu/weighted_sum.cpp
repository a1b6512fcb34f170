// PLACEHOLDER: weighted_sum kernels not written yet (each throws). Replace this file.
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/error.h"

namespace metanas::kernels::cpu {

void weighted_sum_forward(float* y, const float* const* xs, const float* w, int K, int64_t n) { MN_THROW("cpu kernel weighted_sum_forward is not implemented yet"); }
void weighted_sum_backward(float* const* dxs, float* dw, const float* dy, const float* const* xs, const float* w, int K, int64_t n, bool accumulate_w) { MN_THROW("cpu kernel weighted_sum_backward is not implemented yet"); }

}  // namespace metanas::kernels::cpu
