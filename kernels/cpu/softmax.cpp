// PLACEHOLDER: softmax kernels not written yet (each throws). Replace this file.
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/error.h"

namespace metanas::kernels::cpu {

void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, float inv_t) { MN_THROW("cpu kernel softmax_forward is not implemented yet"); }
void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, float inv_t, bool accumulate) { MN_THROW("cpu kernel softmax_backward is not implemented yet"); }
void cross_entropy_forward(float* loss1, float* probs, const float* logits, const int32_t* labels, int64_t rows, int64_t cols) { MN_THROW("cpu kernel cross_entropy_forward is not implemented yet"); }
void cross_entropy_backward(float* dlogits, const float* dloss1, const float* probs, const int32_t* labels, int64_t rows, int64_t cols, bool accumulate) { MN_THROW("cpu kernel cross_entropy_backward is not implemented yet"); }
void argmax_rows(int32_t* idx, const float* x, int64_t rows, int64_t cols) { MN_THROW("cpu kernel argmax_rows is not implemented yet"); }
void accuracy(float* out1, const float* logits, const int32_t* labels, int64_t rows, int64_t cols) { MN_THROW("cpu kernel accuracy is not implemented yet"); }

}  // namespace metanas::kernels::cpu
