// The CUDA backend: implements every metanas::Backend kernel on one GPU by
// forwarding to the launchers of kernels/cuda/*.cu (forwarders generated from
// the op table, beside the CPU ones in kernels/cpu/cpu_backend.cpp), owns the stream, the
// cuBLAS/cuDNN handles and the caching allocator, and provides
// cuda_backend_create(), which the engine calls once on first use of
// Device::CUDA (returning nullptr and a reason when no driver or GPU is usable).
// All kernels run in order on one non-blocking stream; uploads go through a
// pinned staging ring (staging_ring.h) and return at once, so only
// copy_to_host, synchronize() and an upload that finds the ring busy (or is
// larger than it) wait for the device; each such wait is counted
// (Backend::host_syncs).
#include <unistd.h>

#include <cstdio>
#include <string>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/staging_ring.h"
#include "metanas/engine/backend.h"
#include "metanas/engine/error.h"

namespace metanas {

namespace kernels::cuda {
namespace {

__global__ void probe_kernel(int* p) { *p = 42; }

constexpr size_t kCublasWorkspace = size_t(32) << 20;  // fixed workspace: reproducible, capturable

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int dev) {
    try {
      init(dev);
    } catch (...) {
      release();
      throw;
    }
  }
  // The registry keeps the backend for the whole process and never deletes
  // it: at exit the CUDA runtime may already be torn down.
  ~CudaBackend() override { release(); }

  Context& context() { return ctx_; }
  Device device() const override { return Device::CUDA; }

  // ---- memory ----
  void* allocate(size_t bytes) override { return alloc_.allocate(bytes); }
  void deallocate(void* p, size_t) override { alloc_.deallocate(p); }
  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
    // The ring copies src before returning, so the caller may reuse it.
    if (staging_.upload(dst, src, bytes, ctx_.stream)) count_sync();
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
    count_sync();
    MN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx_.stream));
    MN_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (!bytes || dst == src) return;
    MN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_.stream));
  }
  void memset_zero(void* p, size_t bytes) override {
    if (!bytes) return;
    MN_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ctx_.stream));
  }
  void synchronize() override {
    count_sync();
    MN_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }

  // ---- compute kernels: generated from the op table ----
#define MN_UNPAREN(...) __VA_ARGS__
#define MN_KERNEL(name, params, args) \
  void name params override { cuda::name(ctx_, MN_UNPAREN args); }
#include "metanas/kernels/op_table.def"
#undef MN_UNPAREN

 private:
  void init(int dev) {
    ctx_.device = dev;
    MN_CUDA_CHECK(cudaSetDevice(dev));
    int major = 0, minor = 0;
    MN_CUDA_CHECK(cudaDeviceGetAttribute(&ctx_.sm_count, cudaDevAttrMultiProcessorCount, dev));
    MN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    MN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    MN_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking));
    ctx_.alloc = &alloc_;

    // A kernel of this build must run on this GPU (catches a missing sm_XX).
    int* probe = static_cast<int*>(alloc_.allocate(sizeof(int)));
    probe_kernel<<<1, 1, 0, ctx_.stream>>>(probe);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaStreamSynchronize(ctx_.stream);
    alloc_.deallocate(probe);
    if (e != cudaSuccess)
      MN_THROW("a test kernel does not run on GPU ", dev, " (compute capability ", major, ".", minor, "): ",
               cudaGetErrorString(e), "; rebuild with -DCMAKE_CUDA_ARCHITECTURES=", major, minor);

    MN_CUBLAS_CHECK(cublasCreate(&ctx_.cublas));
    MN_CUBLAS_CHECK(cublasSetStream(ctx_.cublas, ctx_.stream));
    MN_CUBLAS_CHECK(cublasSetPointerMode(ctx_.cublas, CUBLAS_POINTER_MODE_HOST));
    MN_CUBLAS_CHECK(cublasSetMathMode(ctx_.cublas, CUBLAS_DEFAULT_MATH));  // FP32, no TF32
    cublas_ws_ = alloc_.allocate(kCublasWorkspace);
    MN_CUBLAS_CHECK(cublasSetWorkspace(ctx_.cublas, cublas_ws_, kCublasWorkspace));

    MN_CUDNN_CHECK(cudnnCreate(&ctx_.cudnn));
    MN_CUDNN_CHECK(cudnnSetStream(ctx_.cudnn, ctx_.stream));
    ctx_.conv_cache = conv_cache_create();
    staging_.init(kUploadStagingBytes);
  }

  void release() {
    staging_.release();
    if (ctx_.conv_cache) conv_cache_destroy(ctx_.conv_cache);
    if (ctx_.cudnn) cudnnDestroy(ctx_.cudnn);
    if (ctx_.cublas) cublasDestroy(ctx_.cublas);
    if (cublas_ws_) {
      try {
        alloc_.deallocate(cublas_ws_);
      } catch (...) {
      }
    }
    if (ctx_.stream) cudaStreamDestroy(ctx_.stream);
    ctx_ = Context{};
    cublas_ws_ = nullptr;
  }

  CachingAllocator alloc_;
  StagingRing staging_;
  Context ctx_;
  void* cublas_ws_ = nullptr;
};

}  // namespace

Context& backend_context() {
  auto* b = dynamic_cast<CudaBackend*>(&metanas::backend(Device::CUDA));
  MN_CHECK(b, "the registered CUDA backend is not metanas's own CudaBackend");
  return b->context();
}

}  // namespace kernels::cuda

// Called once by the backend registry (engine/src/backend.cpp).
Backend* cuda_backend_create(std::string* why, bool* gpu_visible) {
  std::string reason;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (e == cudaErrorInsufficientDriver)
      reason = "no CUDA driver (or one too old for this build's CUDA runtime)";
    else if (e == cudaErrorNoDevice)
      reason = "no GPU visible";
    else
      reason = str_cat("cudaGetDeviceCount failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
    // A driver that is too old or broken still leaves the GPU's device node:
    // that GPU is there and the backend failed on it (a harness must fail,
    // not skip).
    if (e != cudaErrorNoDevice && gpu_visible && access("/dev/nvidia0", F_OK) == 0) *gpu_visible = true;
  } else if (count <= 0) {
    reason = "no GPU visible";
  } else {
    if (gpu_visible) *gpu_visible = true;
    try {
      return new kernels::cuda::CudaBackend(0);
    } catch (const std::exception& ex) {
      reason = str_cat("CUDA backend initialisation failed: ", ex.what());
    }
  }
  if (why) *why = reason;
  return nullptr;
}

}  // namespace metanas
