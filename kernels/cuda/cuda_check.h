// Error checking for every CUDA runtime, cuBLAS and cuDNN call: a failure
// becomes a metanas::Error naming the file, line, the failed expression and
// the library's own error string. MN_CUDA_LAUNCH_CHECK() follows every kernel
// launch (launch-configuration errors surface at once; with the environment
// variable METANAS_CUDA_SYNC_CHECK=1 it also synchronises so that an
// asynchronous fault is reported at the launch that caused it).
// Private to the engine library (never included by a public header).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "metanas/kernels/kernel_types.h"

namespace metanas::kernels::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* expr, const char* file, int line) {
  MN_KTHROW("CUDA error at ", file, ":", line, ": ", expr, " failed: ", cudaGetErrorName(e), " (",
           cudaGetErrorString(e), ")");
}
[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* expr, const char* file, int line) {
  MN_KTHROW("cuBLAS error at ", file, ":", line, ": ", expr, " failed: ", cublasGetStatusName(s), " (",
           cublasGetStatusString(s), ")");
}
[[noreturn]] inline void throw_cudnn(cudnnStatus_t s, const char* expr, const char* file, int line) {
  MN_KTHROW("cuDNN error at ", file, ":", line, ": ", expr, " failed: ", cudnnGetErrorString(s));
}

// True when METANAS_CUDA_SYNC_CHECK is set to a non-zero value (read once).
bool sync_check_enabled();
// Called by MN_CUDA_LAUNCH_CHECK: reports launch errors (and, in sync-check
// mode, errors of the kernel itself).
void launch_check(const char* file, int line);

}  // namespace metanas::kernels::cuda

#define MN_CUDA_CHECK(expr)                                                        \
  do {                                                                             \
    const cudaError_t mn_e_ = (expr);                                              \
    if (mn_e_ != cudaSuccess) ::metanas::kernels::cuda::throw_cuda(mn_e_, #expr, __FILE__, __LINE__); \
  } while (0)

#define MN_CUBLAS_CHECK(expr)                                                      \
  do {                                                                             \
    const cublasStatus_t mn_s_ = (expr);                                           \
    if (mn_s_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::metanas::kernels::cuda::throw_cublas(mn_s_, #expr, __FILE__, __LINE__);     \
  } while (0)

#define MN_CUDNN_CHECK(expr)                                                       \
  do {                                                                             \
    const cudnnStatus_t mn_s_ = (expr);                                            \
    if (mn_s_ != CUDNN_STATUS_SUCCESS)                                             \
      ::metanas::kernels::cuda::throw_cudnn(mn_s_, #expr, __FILE__, __LINE__);      \
  } while (0)

#define MN_CUDA_LAUNCH_CHECK() ::metanas::kernels::cuda::launch_check(__FILE__, __LINE__)
