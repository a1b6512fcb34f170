// PLACEHOLDER: batch_norm kernels not written yet (each throws). Replace this file.
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/error.h"

namespace metanas::kernels::cpu {

void batch_norm_forward_train(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* invstd, float* running_mean, float* running_var, int64_t N, int64_t C, int64_t HW, float eps, float momentum) { MN_THROW("cpu kernel batch_norm_forward_train is not implemented yet"); }
void batch_norm_forward_eval(const float* x, const float* gamma, const float* beta, const float* running_mean, const float* running_var, float* y, int64_t N, int64_t C, int64_t HW, float eps) { MN_THROW("cpu kernel batch_norm_forward_eval is not implemented yet"); }
void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* invstd, const float* gamma, float* dx, float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW, bool accumulate) { MN_THROW("cpu kernel batch_norm_backward is not implemented yet"); }
void batch_norm_backward_eval(const float* dy, const float* x, const float* gamma, const float* running_mean, const float* running_var, float* dx, float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW, float eps, bool accumulate) { MN_THROW("cpu kernel batch_norm_backward_eval is not implemented yet"); }

}  // namespace metanas::kernels::cpu
