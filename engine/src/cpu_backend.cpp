// CPU backend: forwards every Backend kernel to kernels/cpu/ and owns host memory.
#include <cstdlib>
#include <cstring>
#include <new>

#include "host_allocator.h"
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/backend.h"
#include "metanas/engine/error.h"

namespace metanas {

namespace {
namespace k = kernels::cpu;

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::CPU; }
  void* allocate(size_t bytes) override { return alloc_.allocate(bytes); }
  void deallocate(void* p, size_t bytes) override { alloc_.deallocate(p, bytes); }
  void copy_from_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { if (dst != src) std::memmove(dst, src, bytes); }
  void memset_zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void synchronize() override {}

  void fill(float* y, float v, int64_t n) override { k::fill(y, v, n); }
  void fill_i32(int32_t* y, int32_t v, int64_t n) override { k::fill_i32(y, v, n); }
  void axpby(float* y, const float* x, float a, float b, int64_t n) override { k::axpby(y, x, a, b, n); }
  void add(float* y, const float* a, const float* b, float alpha, float beta, int64_t n) override { k::add(y, a, b, alpha, beta, n); }
  void mul(float* y, const float* a, const float* b, int64_t n, bool accumulate) override { k::mul(y, a, b, n, accumulate); }
  void affine(float* y, const float* x, float alpha, float beta, int64_t n) override { k::affine(y, x, alpha, beta, n); }
  void relu_forward(float* y, const float* x, int64_t n) override { k::relu_forward(y, x, n); }
  void relu_backward(float* dx, const float* dy, const float* x, int64_t n, bool accumulate) override { k::relu_backward(dx, dy, x, n, accumulate); }
  void sum(float* out1, const float* x, int64_t n) override { k::sum(out1, x, n); }
  void sum_squares(float* out1, const float* x, int64_t n) override { k::sum_squares(out1, x, n); }
  void sum_rows(float* y, const float* x, int64_t rows, int64_t cols, bool accumulate) override { k::sum_rows(y, x, rows, cols, accumulate); }
  void add_bias_rows(float* y, const float* b, int64_t rows, int64_t cols) override { k::add_bias_rows(y, b, rows, cols); }
  void box_copy(const BoxCopy& b, const float* src, float* dst) override { k::box_copy(b, src, dst); }
  void global_avg_pool_forward(const float* x, float* y, int64_t NC, int64_t HW) override { k::global_avg_pool_forward(x, y, NC, HW); }
  void global_avg_pool_backward(const float* dy, float* dx, int64_t NC, int64_t HW, bool accumulate) override { k::global_avg_pool_backward(dy, dx, NC, HW, accumulate); }
  void scale_rows(float* y, const float* x, const float* scale, int64_t rows, int64_t cols, bool accumulate) override { k::scale_rows(y, x, scale, rows, cols, accumulate); }
  void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) override { k::gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); }
  void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2, const float* grad_scale) override { k::adam_step(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2, grad_scale); }
  void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weight_decay, bool first_step, const float* grad_scale) override { k::sgd_step(p, g, buf, n, lr, momentum, weight_decay, first_step, grad_scale); }
  void clip_scale(float* scale1, const float* sumsq1, float max_norm) override { k::clip_scale(scale1, sumsq1, max_norm); }
  void weighted_sum_forward(float* y, const float* const* xs, const float* w, int K, int64_t n) override { k::weighted_sum_forward(y, xs, w, K, n); }
  void weighted_sum_backward(float* const* dxs, float* dw, const float* dy, const float* const* xs, const float* w, int K, int64_t n, bool accumulate_w) override { k::weighted_sum_backward(dxs, dw, dy, xs, w, K, n, accumulate_w); }
  void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, float inv_t) override { k::softmax_forward(y, x, rows, cols, inv_t); }
  void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, float inv_t, bool accumulate) override { k::softmax_backward(dx, dy, y, rows, cols, inv_t, accumulate); }
  void cross_entropy_forward(float* loss1, float* probs, const float* logits, const int32_t* labels, int64_t rows, int64_t cols) override { k::cross_entropy_forward(loss1, probs, logits, labels, rows, cols); }
  void cross_entropy_backward(float* dlogits, const float* dloss1, const float* probs, const int32_t* labels, int64_t rows, int64_t cols, bool accumulate) override { k::cross_entropy_backward(dlogits, dloss1, probs, labels, rows, cols, accumulate); }
  void argmax_rows(int32_t* idx, const float* x, int64_t rows, int64_t cols) override { k::argmax_rows(idx, x, rows, cols); }
  void accuracy(float* out1, const float* logits, const int32_t* labels, int64_t rows, int64_t cols) override { k::accuracy(out1, logits, labels, rows, cols); }
  void conv2d_forward(const ConvGeom& g, const float* x, const float* w, float* y) override { k::conv2d_forward(g, x, w, y); }
  void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x, float* dx, bool accumulate) override { k::conv2d_backward_data(g, dy, w, x, dx, accumulate); }
  void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw, bool accumulate) override { k::conv2d_backward_weight(g, x, dy, dw, accumulate); }
  void max_pool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) override { k::max_pool_forward(g, x, y, argmax); }
  void max_pool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax, float* dx, bool accumulate) override { k::max_pool_backward(g, dy, argmax, dx, accumulate); }
  void avg_pool_forward(const PoolGeom& g, const float* x, float* y) override { k::avg_pool_forward(g, x, y); }
  void avg_pool_backward(const PoolGeom& g, const float* dy, float* dx, bool accumulate) override { k::avg_pool_backward(g, dy, dx, accumulate); }
  void batch_norm_forward_train(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* invstd, float* running_mean, float* running_var, int64_t N, int64_t C, int64_t HW, float eps, float momentum) override { k::batch_norm_forward_train(x, gamma, beta, y, mean, invstd, running_mean, running_var, N, C, HW, eps, momentum); }
  void batch_norm_forward_eval(const float* x, const float* gamma, const float* beta, const float* running_mean, const float* running_var, float* y, int64_t N, int64_t C, int64_t HW, float eps) override { k::batch_norm_forward_eval(x, gamma, beta, running_mean, running_var, y, N, C, HW, eps); }
  void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* invstd, const float* gamma, float* dx, float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW, bool accumulate) override { k::batch_norm_backward(dy, x, mean, invstd, gamma, dx, dgamma, dbeta, N, C, HW, accumulate); }
  void batch_norm_backward_eval(const float* dy, const float* x, const float* gamma, const float* running_mean, const float* running_var, float* dx, float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW, float eps, bool accumulate) override { k::batch_norm_backward_eval(dy, x, gamma, running_mean, running_var, dx, dgamma, dbeta, N, C, HW, eps, accumulate); }

 private:
  HostAllocator alloc_;
};
}  // namespace

Backend* cpu_backend_instance() {
  // Never destroyed: tensors in other static objects may outlive any
  // destruction order we could pick.
  static CpuBackend* instance = new CpuBackend;
  return instance;
}

}  // namespace metanas
