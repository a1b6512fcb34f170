// PLACEHOLDER: conv kernels not written yet (each throws). Replace this file.
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/error.h"

namespace metanas::kernels::cpu {

void conv2d_forward(const ConvGeom& g, const float* x, const float* w, float* y) { MN_THROW("cpu kernel conv2d_forward is not implemented yet"); }
void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x, float* dx, bool accumulate) { MN_THROW("cpu kernel conv2d_backward_data is not implemented yet"); }
void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw, bool accumulate) { MN_THROW("cpu kernel conv2d_backward_weight is not implemented yet"); }

}  // namespace metanas::kernels::cpu
