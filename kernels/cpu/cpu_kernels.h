// CPU kernels: the arithmetic behind every engine op on the CPU. Signatures
// mirror metanas::Backend (engine/include/metanas/engine/backend.h), whose
// comments define the semantics. Threads: OpenMP; GEMM: OpenBLAS (OpenMP
// build, so it shares our thread pool and runs serially inside our regions).
// One file per op family: elementwise.cpp, gemm.cpp, optim.cpp,
// weighted_sum.cpp, softmax.cpp, conv.cpp, pool.cpp, batch_norm.cpp.
#pragma once
#include <cstdint>

#include "metanas/engine/backend.h"

namespace metanas::kernels::cpu {

// elementwise.cpp
void fill(float* y, float v, int64_t n);
void fill_i32(int32_t* y, int32_t v, int64_t n);
void axpby(float* y, const float* x, float a, float b, int64_t n);
void add(float* y, const float* a, const float* b, float alpha, float beta, int64_t n);
void mul(float* y, const float* a, const float* b, int64_t n, bool accumulate);
void affine(float* y, const float* x, float alpha, float beta, int64_t n);
void relu_forward(float* y, const float* x, int64_t n);
void relu_backward(float* dx, const float* dy, const float* x, int64_t n, bool accumulate);
void sum(float* out1, const float* x, int64_t n);
void sum_squares(float* out1, const float* x, int64_t n);
void sum_rows(float* y, const float* x, int64_t rows, int64_t cols, bool accumulate);
void add_bias_rows(float* y, const float* b, int64_t rows, int64_t cols);
void box_copy(const BoxCopy& b, const float* src, float* dst);
void global_avg_pool_forward(const float* x, float* y, int64_t NC, int64_t HW);
void global_avg_pool_backward(const float* dy, float* dx, int64_t NC, int64_t HW, bool accumulate);
void scale_rows(float* y, const float* x, const float* scale, int64_t rows, int64_t cols,
                bool accumulate);

// gemm.cpp (row-major)
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// optim.cpp
void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
               float beta2, float eps, float weight_decay, float bc1, float bc2,
               const float* grad_scale);
void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
              float weight_decay, bool first_step, const float* grad_scale);
void clip_scale(float* scale1, const float* sumsq1, float max_norm);

// weighted_sum.cpp
void weighted_sum_forward(float* y, const float* const* xs, const float* w, int K, int64_t n);
void weighted_sum_backward(float* const* dxs, float* dw, const float* dy, const float* const* xs,
                           const float* w, int K, int64_t n, bool accumulate_w);

// softmax.cpp
void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, float inv_t);
void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols,
                      float inv_t, bool accumulate);
void cross_entropy_forward(float* loss1, float* probs, const float* logits, const int32_t* labels,
                           int64_t rows, int64_t cols);
void cross_entropy_backward(float* dlogits, const float* dloss1, const float* probs,
                            const int32_t* labels, int64_t rows, int64_t cols, bool accumulate);
void argmax_rows(int32_t* idx, const float* x, int64_t rows, int64_t cols);
void accuracy(float* out1, const float* logits, const int32_t* labels, int64_t rows, int64_t cols);

// conv.cpp
void conv2d_forward(const ConvGeom& g, const float* x, const float* w, float* y);
void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                          float* dx, bool accumulate);
void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                            bool accumulate);

// pool.cpp
void max_pool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax);
void max_pool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax, float* dx,
                       bool accumulate);
void avg_pool_forward(const PoolGeom& g, const float* x, float* y);
void avg_pool_backward(const PoolGeom& g, const float* dy, float* dx, bool accumulate);

// batch_norm.cpp
void batch_norm_forward_train(const float* x, const float* gamma, const float* beta, float* y,
                              float* mean, float* invstd, float* running_mean, float* running_var,
                              int64_t N, int64_t C, int64_t HW, float eps, float momentum);
void batch_norm_forward_eval(const float* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, float* y,
                             int64_t N, int64_t C, int64_t HW, float eps);
void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* invstd,
                         const float* gamma, float* dx, float* dgamma, float* dbeta, int64_t N,
                         int64_t C, int64_t HW, bool accumulate);
void batch_norm_backward_eval(const float* dy, const float* x, const float* gamma,
                              const float* running_mean, const float* running_var, float* dx,
                              float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW,
                              float eps, bool accumulate);

}  // namespace metanas::kernels::cpu
