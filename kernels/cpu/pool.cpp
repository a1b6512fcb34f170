// PLACEHOLDER: pool kernels not written yet (each throws). Replace this file.
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/error.h"

namespace metanas::kernels::cpu {

void max_pool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) { MN_THROW("cpu kernel max_pool_forward is not implemented yet"); }
void max_pool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax, float* dx, bool accumulate) { MN_THROW("cpu kernel max_pool_backward is not implemented yet"); }
void avg_pool_forward(const PoolGeom& g, const float* x, float* y) { MN_THROW("cpu kernel avg_pool_forward is not implemented yet"); }
void avg_pool_backward(const PoolGeom& g, const float* dy, float* dx, bool accumulate) { MN_THROW("cpu kernel avg_pool_backward is not implemented yet"); }

}  // namespace metanas::kernels::cpu
