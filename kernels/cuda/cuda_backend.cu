// The CUDA backend: implements every metanas::Backend kernel on one GPU by
// forwarding to the launchers of kernels/cuda/*.cu, owns the stream, the
// cuBLAS/cuDNN handles and the caching allocator, and provides
// cuda_backend_create(), which the engine calls once on first use of
// Device::CUDA (returning nullptr and a reason when no driver or GPU is usable).
// All kernels run in order on one non-blocking stream; only copy_to_host,
// copy_from_host and synchronize() wait for the device.
#include <cstdio>
#include <string>

#include "kernels/cuda/cuda_common.cuh"
#include "metanas/engine/backend.h"

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
    MN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx_.stream));
    // The caller may free or reuse src as soon as we return.
    MN_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
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
  void synchronize() override { MN_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream)); }

  // ---- element-wise ----
  void fill(float* y, float v, int64_t n) override { cuda::fill(ctx_, y, v, n); }
  void fill_i32(int32_t* y, int32_t v, int64_t n) override { cuda::fill_i32(ctx_, y, v, n); }
  void axpby(float* y, const float* x, float a, float b, int64_t n) override { cuda::axpby(ctx_, y, x, a, b, n); }
  void add(float* y, const float* a, const float* b, float alpha, float beta, int64_t n) override {
    cuda::add(ctx_, y, a, b, alpha, beta, n);
  }
  void mul(float* y, const float* a, const float* b, int64_t n, bool accumulate) override {
    cuda::mul(ctx_, y, a, b, n, accumulate);
  }
  void affine(float* y, const float* x, float alpha, float beta, int64_t n) override {
    cuda::affine(ctx_, y, x, alpha, beta, n);
  }
  void relu_forward(float* y, const float* x, int64_t n) override { cuda::relu_forward(ctx_, y, x, n); }
  void relu_backward(float* dx, const float* dy, const float* x, int64_t n, bool accumulate) override {
    cuda::relu_backward(ctx_, dx, dy, x, n, accumulate);
  }

  // ---- reductions ----
  void sum(float* out1, const float* x, int64_t n) override { cuda::sum(ctx_, out1, x, n); }
  void sum_squares(float* out1, const float* x, int64_t n) override { cuda::sum_squares(ctx_, out1, x, n); }
  void sum_rows(float* y, const float* x, int64_t rows, int64_t cols, bool accumulate) override {
    cuda::sum_rows(ctx_, y, x, rows, cols, accumulate);
  }

  // ---- GEMM ----
  void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
            const float* B, int64_t ldb, float beta, float* C, int64_t ldc) override {
    cuda::gemm(ctx_, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void add_bias_rows(float* y, const float* b, int64_t rows, int64_t cols) override {
    cuda::add_bias_rows(ctx_, y, b, rows, cols);
  }

  // ---- mixed op ----
  void weighted_sum_forward(float* y, const float* const* xs, const float* w, int K, int64_t n) override {
    cuda::weighted_sum_forward(ctx_, y, xs, w, K, n);
  }
  void weighted_sum_backward(float* const* dxs, float* dw, const float* dy, const float* const* xs, const float* w,
                             int K, int64_t n, bool accumulate_w) override {
    cuda::weighted_sum_backward(ctx_, dxs, dw, dy, xs, w, K, n, accumulate_w);
  }

  // ---- softmax / classifier ----
  void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, float inv_t) override {
    cuda::softmax_forward(ctx_, y, x, rows, cols, inv_t);
  }
  void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, float inv_t,
                        bool accumulate) override {
    cuda::softmax_backward(ctx_, dx, dy, y, rows, cols, inv_t, accumulate);
  }
  void cross_entropy_forward(float* loss1, float* probs, const float* logits, const int32_t* labels, int64_t rows,
                             int64_t cols) override {
    cuda::cross_entropy_forward(ctx_, loss1, probs, logits, labels, rows, cols);
  }
  void cross_entropy_backward(float* dlogits, const float* dloss1, const float* probs, const int32_t* labels,
                              int64_t rows, int64_t cols, bool accumulate) override {
    cuda::cross_entropy_backward(ctx_, dlogits, dloss1, probs, labels, rows, cols, accumulate);
  }
  void argmax_rows(int32_t* idx, const float* x, int64_t rows, int64_t cols) override {
    cuda::argmax_rows(ctx_, idx, x, rows, cols);
  }
  void accuracy(float* out1, const float* logits, const int32_t* labels, int64_t rows, int64_t cols) override {
    cuda::accuracy(ctx_, out1, logits, labels, rows, cols);
  }

  // ---- convolution ----
  void conv2d_forward(const ConvGeom& g, const float* x, const float* w, float* y) override {
    cuda::conv2d_forward(ctx_, g, x, w, y);
  }
  void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x, float* dx,
                            bool accumulate) override {
    cuda::conv2d_backward_data(ctx_, g, dy, w, x, dx, accumulate);
  }
  void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                              bool accumulate) override {
    cuda::conv2d_backward_weight(ctx_, g, x, dy, dw, accumulate);
  }

  // ---- pooling ----
  void max_pool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) override {
    cuda::max_pool_forward(ctx_, g, x, y, argmax);
  }
  void max_pool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax, float* dx,
                         bool accumulate) override {
    cuda::max_pool_backward(ctx_, g, dy, argmax, dx, accumulate);
  }
  void avg_pool_forward(const PoolGeom& g, const float* x, float* y) override { cuda::avg_pool_forward(ctx_, g, x, y); }
  void avg_pool_backward(const PoolGeom& g, const float* dy, float* dx, bool accumulate) override {
    cuda::avg_pool_backward(ctx_, g, dy, dx, accumulate);
  }

  // ---- batch norm ----
  void batch_norm_forward_train(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                                float* invstd, float* running_mean, float* running_var, int64_t N, int64_t C,
                                int64_t HW, float eps, float momentum) override {
    cuda::batch_norm_forward_train(ctx_, x, gamma, beta, y, mean, invstd, running_mean, running_var, N, C, HW, eps,
                                   momentum);
  }
  void batch_norm_forward_eval(const float* x, const float* gamma, const float* beta, const float* running_mean,
                               const float* running_var, float* y, int64_t N, int64_t C, int64_t HW,
                               float eps) override {
    cuda::batch_norm_forward_eval(ctx_, x, gamma, beta, running_mean, running_var, y, N, C, HW, eps);
  }
  void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* invstd,
                           const float* gamma, float* dx, float* dgamma, float* dbeta, int64_t N, int64_t C,
                           int64_t HW, bool accumulate) override {
    cuda::batch_norm_backward(ctx_, dy, x, mean, invstd, gamma, dx, dgamma, dbeta, N, C, HW, accumulate);
  }
  void batch_norm_backward_eval(const float* dy, const float* x, const float* gamma, const float* running_mean,
                                const float* running_var, float* dx, float* dgamma, float* dbeta, int64_t N,
                                int64_t C, int64_t HW, float eps, bool accumulate) override {
    cuda::batch_norm_backward_eval(ctx_, dy, x, gamma, running_mean, running_var, dx, dgamma, dbeta, N, C, HW, eps,
                                   accumulate);
  }

  // ---- layout ----
  void box_copy(const BoxCopy& b, const float* src, float* dst) override { cuda::box_copy(ctx_, b, src, dst); }
  void global_avg_pool_forward(const float* x, float* y, int64_t NC, int64_t HW) override {
    cuda::global_avg_pool_forward(ctx_, x, y, NC, HW);
  }
  void global_avg_pool_backward(const float* dy, float* dx, int64_t NC, int64_t HW, bool accumulate) override {
    cuda::global_avg_pool_backward(ctx_, dy, dx, NC, HW, accumulate);
  }
  void scale_rows(float* y, const float* x, const float* scale, int64_t rows, int64_t cols,
                  bool accumulate) override {
    cuda::scale_rows(ctx_, y, x, scale, rows, cols, accumulate);
  }

  // ---- optimizers ----
  void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                 float eps, float weight_decay, float bc1, float bc2, const float* grad_scale) override {
    cuda::adam_step(ctx_, p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2, grad_scale);
  }
  void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weight_decay,
                bool first_step, const float* grad_scale) override {
    cuda::sgd_step(ctx_, p, g, buf, n, lr, momentum, weight_decay, first_step, grad_scale);
  }
  void clip_scale(float* scale1, const float* sumsq1, float max_norm) override {
    cuda::clip_scale(ctx_, scale1, sumsq1, max_norm);
  }

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
  }

  void release() {
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
Backend* cuda_backend_create(std::string* why) {
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
      reason = str_cat("cudaGetDeviceCount failed: ", cudaGetErrorString(e));
  } else if (count <= 0) {
    reason = "no GPU visible";
  } else {
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
