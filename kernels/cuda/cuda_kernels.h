// The CUDA backend's kernels, one launcher per op-table kernel (semantics in
// metanas/kernels/op_table.def), grouped by the .cu file that holds them. Every launcher enqueues on ctx.stream, checks its launches, takes
// temporary memory only from ctx.alloc and never synchronises the host, so a
// whole step can later be captured as a CUDA graph.
// Private to the engine library and benchmarks/kernel-bench.cu.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>

#include "kernels/cuda/caching_allocator.h"
#include "metanas/kernels/kernel_types.h"

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

// One launcher per MN_KERNEL of the op table: the kernel's parameters after
// the context. They live in elementwise.cu (element-wise ops), reduce.cu
// (deterministic sums), gemm.cu (cuBLAS, FP32 math, row-major arguments),
// weighted_sum.cu, softmax.cu, conv.cu (dispatch: depthwise kernel / cuBLAS
// 1x1 / cuDNN), pool.cu, batch_norm.cu, layout.cu and optim.cu.
#define MN_UNPAREN(...) __VA_ARGS__
#define MN_KERNEL(name, params, args) void name(const Context& c, MN_UNPAREN params);
#include "metanas/kernels/op_table.def"
#undef MN_UNPAREN

// ---- depthwise_conv.cu (hand-written: groups == Cin == Cout, ReLU fused) ----
bool depthwise_applies(const ConvGeom& g);
void depthwise_forward(const Context& c, const ConvGeom& g, const float* x, const float* w, float* y);
void depthwise_backward_data(const Context& c, const ConvGeom& g, const float* dy, const float* w,
                             const float* x, float* dx, bool accumulate);
void depthwise_backward_weight(const Context& c, const ConvGeom& g, const float* x, const float* dy,
                               float* dw, bool accumulate);

// ---- conv.cu: cuDNN for any geometry (deterministic algorithms only); used by
// the dispatcher and by kernel-bench as the library baseline ----
void cudnn_conv_forward(const Context& c, const ConvGeom& g, const float* x, const float* w, float* y);
void cudnn_conv_backward_data(const Context& c, const ConvGeom& g, const float* dy, const float* w,
                              const float* x, float* dx, bool accumulate);
void cudnn_conv_backward_weight(const Context& c, const ConvGeom& g, const float* x, const float* dy,
                                float* dw, bool accumulate);
CudnnConvCache* conv_cache_create();
void conv_cache_destroy(CudnnConvCache* cache);

}  // namespace metanas::kernels::cuda
