// The CUDA backend's kernels, one launcher per Backend kernel (semantics in
// engine/include/metanas/engine/backend.h), grouped by the .cu file that holds
// them. Every launcher enqueues on ctx.stream, checks its launches, takes
// temporary memory only from ctx.alloc and never synchronises the host, so a
// whole step can later be captured as a CUDA graph.
// Private to the engine library and benchmarks/kernel-bench.cu.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>

#include "kernels/cuda/caching_allocator.h"
#include "metanas/engine/backend.h"

namespace metanas::kernels::cuda {

struct CudnnConvCache;  // conv.cu: cuDNN descriptors and chosen algorithms per geometry

struct Context {
  int device = 0;
  int sm_count = 1;
  cudaStream_t stream = nullptr;
  CachingAllocator* alloc = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  CudnnConvCache* conv_cache = nullptr;
};

// The context of the process-wide CUDA backend (creates it; throws when no
// GPU is usable). For benchmarks and tests that call launchers directly.
Context& backend_context();

// ---- elementwise.cu ----
void fill(const Context& c, float* y, float v, int64_t n);
void fill_i32(const Context& c, int32_t* y, int32_t v, int64_t n);
void axpby(const Context& c, float* y, const float* x, float a, float b, int64_t n);
void add(const Context& c, float* y, const float* a, const float* b, float alpha, float beta, int64_t n);
void mul(const Context& c, float* y, const float* a, const float* b, int64_t n, bool accumulate);
void affine(const Context& c, float* y, const float* x, float alpha, float beta, int64_t n);
void relu_forward(const Context& c, float* y, const float* x, int64_t n);
void relu_backward(const Context& c, float* dx, const float* dy, const float* x, int64_t n, bool accumulate);
void add_bias_rows(const Context& c, float* y, const float* b, int64_t rows, int64_t cols);

// ---- reduce.cu (deterministic) ----
void sum(const Context& c, float* out1, const float* x, int64_t n);
void sum_squares(const Context& c, float* out1, const float* x, int64_t n);
void sum_rows(const Context& c, float* y, const float* x, int64_t rows, int64_t cols, bool accumulate);

// ---- gemm.cu (cuBLAS, FP32 math, row-major arguments) ----
void gemm(const Context& c, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// ---- weighted_sum.cu (hand-written: DARTS mixed op) ----
void weighted_sum_forward(const Context& c, float* y, const float* const* xs, const float* w, int K,
                          int64_t n);
void weighted_sum_backward(const Context& c, float* const* dxs, float* dw, const float* dy,
                           const float* const* xs, const float* w, int K, int64_t n, bool accumulate_w);

// ---- softmax.cu (hand-written: softmax with temperature, fused cross-entropy) ----
void softmax_forward(const Context& c, float* y, const float* x, int64_t rows, int64_t cols, float inv_t);
void softmax_backward(const Context& c, float* dx, const float* dy, const float* y, int64_t rows,
                      int64_t cols, float inv_t, bool accumulate);
void cross_entropy_forward(const Context& c, float* loss1, float* probs, const float* logits,
                           const int32_t* labels, int64_t rows, int64_t cols);
void cross_entropy_backward(const Context& c, float* dlogits, const float* dloss1, const float* probs,
                            const int32_t* labels, int64_t rows, int64_t cols, bool accumulate);
void argmax_rows(const Context& c, int32_t* idx, const float* x, int64_t rows, int64_t cols);
void accuracy(const Context& c, float* out1, const float* logits, const int32_t* labels, int64_t rows,
              int64_t cols);

// ---- depthwise_conv.cu (hand-written: groups == Cin == Cout, ReLU fused) ----
bool depthwise_applies(const ConvGeom& g);
void depthwise_forward(const Context& c, const ConvGeom& g, const float* x, const float* w, float* y);
void depthwise_backward_data(const Context& c, const ConvGeom& g, const float* dy, const float* w,
                             const float* x, float* dx, bool accumulate);
void depthwise_backward_weight(const Context& c, const ConvGeom& g, const float* x, const float* dy,
                               float* dw, bool accumulate);

// ---- conv.cu (dispatch: depthwise kernel / cuBLAS 1x1 / cuDNN) ----
void conv2d_forward(const Context& c, const ConvGeom& g, const float* x, const float* w, float* y);
void conv2d_backward_data(const Context& c, const ConvGeom& g, const float* dy, const float* w,
                          const float* x, float* dx, bool accumulate);
void conv2d_backward_weight(const Context& c, const ConvGeom& g, const float* x, const float* dy,
                            float* dw, bool accumulate);
// cuDNN for any geometry (deterministic algorithms only); used by the
// dispatcher and by kernel-bench as the library baseline.
void cudnn_conv_forward(const Context& c, const ConvGeom& g, const float* x, const float* w, float* y);
void cudnn_conv_backward_data(const Context& c, const ConvGeom& g, const float* dy, const float* w,
                              const float* x, float* dx, bool accumulate);
void cudnn_conv_backward_weight(const Context& c, const ConvGeom& g, const float* x, const float* dy,
                                float* dw, bool accumulate);
CudnnConvCache* conv_cache_create();
void conv_cache_destroy(CudnnConvCache* cache);

// ---- pool.cu ----
void max_pool_forward(const Context& c, const PoolGeom& g, const float* x, float* y, int32_t* argmax);
void max_pool_backward(const Context& c, const PoolGeom& g, const float* dy, const int32_t* argmax,
                       float* dx, bool accumulate);
void avg_pool_forward(const Context& c, const PoolGeom& g, const float* x, float* y);
void avg_pool_backward(const Context& c, const PoolGeom& g, const float* dy, float* dx, bool accumulate);

// ---- batch_norm.cu (deterministic per-channel reductions) ----
void batch_norm_forward_train(const Context& c, const float* x, const float* gamma, const float* beta,
                              float* y, float* mean, float* invstd, float* running_mean,
                              float* running_var, int64_t N, int64_t C, int64_t HW, float eps,
                              float momentum);
void batch_norm_forward_eval(const Context& c, const float* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, float* y, int64_t N,
                             int64_t C, int64_t HW, float eps);
void batch_norm_backward(const Context& c, const float* dy, const float* x, const float* mean,
                         const float* invstd, const float* gamma, float* dx, float* dgamma,
                         float* dbeta, int64_t N, int64_t C, int64_t HW, bool accumulate);
void batch_norm_backward_eval(const Context& c, const float* dy, const float* x, const float* gamma,
                              const float* running_mean, const float* running_var, float* dx,
                              float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW, float eps,
                              bool accumulate);

// ---- layout.cu ----
void box_copy(const Context& c, const BoxCopy& b, const float* src, float* dst);
void global_avg_pool_forward(const Context& c, const float* x, float* y, int64_t NC, int64_t HW);
void global_avg_pool_backward(const Context& c, const float* dy, float* dx, int64_t NC, int64_t HW,
                              bool accumulate);
void scale_rows(const Context& c, float* y, const float* x, const float* scale, int64_t rows,
                int64_t cols, bool accumulate);

// ---- optim.cu ----
void adam_step(const Context& c, float* p, const float* g, float* m, float* v, int64_t n, float lr,
               float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2,
               const float* grad_scale);
void sgd_step(const Context& c, float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
              float weight_decay, bool first_step, const float* grad_scale);
void clip_scale(const Context& c, float* scale1, const float* sumsq1, float max_norm);

}  // namespace metanas::kernels::cuda
