// Backend: the single dispatch point between engine ops and kernels. Every op
// in ops.cpp checks shapes and devices, then calls backend(device).<kernel>.
// The CPU backend (engine/src/cpu_backend.cpp -> kernels/cpu/) always exists;
// the CUDA backend (kernels/cuda/cuda_backend.cu) registers itself when the
// build has CUDA and a GPU is visible.
//
// All pointers are device pointers of that backend. Tensors are contiguous.
// Kernels never allocate outside allocate() and never synchronise the host,
// except the explicit copy_to_host.
//
// Adding an op touches: this interface (its kernels), kernels/cpu/<family>.cpp
// and the CPU backend, kernels/cuda/<family>.cu and the CUDA backend,
// engine/src/ops/<family>.cpp (forward + backward), ops.h, the op tests in
// tests/engine/ and the parity list in tests/cuda/parity_test.cpp.
#pragma once
#include <cstddef>
#include <cstdint>

#include "metanas/engine/device.h"

namespace metanas {

// Convolution geometry, NCHW input [N, Cin, H, W], weight [Cout, Cin/groups,
// KH, KW], output [N, Cout, OH, OW]. Padding may be asymmetric (1x5 / 5x1).
struct ConvGeom {
  int64_t N = 0, Cin = 0, H = 0, W = 0;
  int64_t Cout = 0, KH = 0, KW = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  int64_t OH = 0, OW = 0;  // derived: see conv_out_size
  bool relu_input = false;  // the kernel reads max(x, 0) instead of x
};

// Pooling geometry: NCHW [N, C, H, W] -> [N, C, OH, OW], square window.
struct PoolGeom {
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t k = 3, stride = 1, pad = 1;
  int64_t OH = 0, OW = 0;
};

// A 4-D box copy: dst[n, dc0+c, dh0+h, dw0+w] (+)= src[n, sc0+c, sh0+h, sw0+w]
// for n < N, c < C, h < Hc, w < Wc. Covers concat, channel slice, spatial crop
// and their backwards (with accumulate = true).
struct BoxCopy {
  int64_t N = 0, C = 0, Hc = 0, Wc = 0;                  // box extent
  int64_t src_C = 0, src_H = 0, src_W = 0;               // source dims (N shared)
  int64_t dst_C = 0, dst_H = 0, dst_W = 0;               // destination dims
  int64_t sc0 = 0, sh0 = 0, sw0 = 0, dc0 = 0, dh0 = 0, dw0 = 0;
  bool accumulate = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // ---- memory ----
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // same device
  virtual void memset_zero(void* p, size_t bytes) = 0;
  virtual void synchronize() = 0;

  // ---- element-wise (n elements) ----
  virtual void fill(float* y, float v, int64_t n) = 0;
  virtual void fill_i32(int32_t* y, int32_t v, int64_t n) = 0;
  // y = a * x + b * y
  virtual void axpby(float* y, const float* x, float a, float b, int64_t n) = 0;
  // y = alpha * a + beta * b   (y may alias a or b)
  virtual void add(float* y, const float* a, const float* b, float alpha, float beta, int64_t n) = 0;
  // y = a * b   /   y += a * b when accumulate
  virtual void mul(float* y, const float* a, const float* b, int64_t n, bool accumulate) = 0;
  // y = alpha * x + beta   (scalar affine)
  virtual void affine(float* y, const float* x, float alpha, float beta, int64_t n) = 0;
  virtual void relu_forward(float* y, const float* x, int64_t n) = 0;
  // dx (+)= dy * (x > 0)
  virtual void relu_backward(float* dx, const float* dy, const float* x, int64_t n, bool accumulate) = 0;

  // ---- reductions (deterministic: fixed order, no order-dependent atomics) ----
  virtual void sum(float* out1, const float* x, int64_t n) = 0;          // out1[0] = sum x
  virtual void sum_squares(float* out1, const float* x, int64_t n) = 0;  // out1[0] = sum x^2
  // y[c] (+)= sum_r x[r, c] for a [rows, cols] matrix (bias gradients)
  virtual void sum_rows(float* y, const float* x, int64_t rows, int64_t cols, bool accumulate) = 0;

  // ---- GEMM: C = alpha * op(A) op(B) + beta * C, row-major ----
  virtual void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                    int64_t ldc) = 0;
  // y[r, c] += b[c] for a [rows, cols] matrix
  virtual void add_bias_rows(float* y, const float* b, int64_t rows, int64_t cols) = 0;

  // ---- DARTS mixed op: y = sum_k w[k] * xs[k] (K inputs of n elements) ----
  // xs is a host array of K device pointers; w is a device array of K floats.
  virtual void weighted_sum_forward(float* y, const float* const* xs, const float* w, int K,
                                    int64_t n) = 0;
  // dxs[k] = w[k] * dy for every k with dxs[k] != nullptr (overwritten);
  // dw[k] (+)= sum_i dy[i] * xs[k][i] (+= when accumulate_w) unless dw is null.
  virtual void weighted_sum_backward(float* const* dxs, float* dw, const float* dy,
                                     const float* const* xs, const float* w, int K, int64_t n,
                                     bool accumulate_w) = 0;

  // ---- softmax over the last dim of [rows, cols] of x / T ----
  virtual void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, float inv_t) = 0;
  // dx (+)= inv_t * y * (dy - sum(dy * y))
  virtual void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows,
                                int64_t cols, float inv_t, bool accumulate) = 0;
  // Fused log-softmax + NLL, mean over rows: loss1[0] = mean_r -log softmax(x_r)[label_r];
  // probs receives the softmax (saved for backward).
  virtual void cross_entropy_forward(float* loss1, float* probs, const float* logits,
                                     const int32_t* labels, int64_t rows, int64_t cols) = 0;
  // dlogits (+)= dloss1[0] / rows * (probs - onehot(label))
  virtual void cross_entropy_backward(float* dlogits, const float* dloss1, const float* probs,
                                      const int32_t* labels, int64_t rows, int64_t cols,
                                      bool accumulate) = 0;
  // idx[r] = argmax_c x[r, c] (first max on ties)
  virtual void argmax_rows(int32_t* idx, const float* x, int64_t rows, int64_t cols) = 0;
  // out1[0] = fraction of rows with argmax == label
  virtual void accuracy(float* out1, const float* logits, const int32_t* labels, int64_t rows,
                        int64_t cols) = 0;

  // ---- convolution ----
  virtual void conv2d_forward(const ConvGeom& g, const float* x, const float* w, float* y) = 0;
  // dx (+)= conv^T(dy, w)   (times (x > 0) when g.relu_input; x may be null otherwise)
  virtual void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w,
                                    const float* x, float* dx, bool accumulate) = 0;
  // dw (+)= correlation of (relu) x with dy
  virtual void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy,
                                      float* dw, bool accumulate) = 0;

  // ---- pooling (padding never wins a max; average counts only real pixels) ----
  virtual void max_pool_forward(const PoolGeom& g, const float* x, float* y, int32_t* argmax) = 0;
  virtual void max_pool_backward(const PoolGeom& g, const float* dy, const int32_t* argmax,
                                 float* dx, bool accumulate) = 0;
  virtual void avg_pool_forward(const PoolGeom& g, const float* x, float* y) = 0;
  virtual void avg_pool_backward(const PoolGeom& g, const float* dy, float* dx, bool accumulate) = 0;

  // ---- batch norm over [N, C, HW] ----
  // Training: batch statistics. mean/invstd [C] are written (saved for
  // backward); gamma/beta may be null (non-affine). When running_mean/var are
  // non-null they are updated with momentum (unbiased variance, as PyTorch).
  virtual void batch_norm_forward_train(const float* x, const float* gamma, const float* beta,
                                        float* y, float* mean, float* invstd, float* running_mean,
                                        float* running_var, int64_t N, int64_t C, int64_t HW,
                                        float eps, float momentum) = 0;
  // Evaluation with running statistics.
  virtual void batch_norm_forward_eval(const float* x, const float* gamma, const float* beta,
                                       const float* running_mean, const float* running_var,
                                       float* y, int64_t N, int64_t C, int64_t HW, float eps) = 0;
  // Training-mode backward. dx (+)=; dgamma/dbeta (+)= when non-null.
  virtual void batch_norm_backward(const float* dy, const float* x, const float* mean,
                                   const float* invstd, const float* gamma, float* dx,
                                   float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW,
                                   bool accumulate) = 0;
  // Eval-mode backward (running statistics are constants): dx (+)= dy*gamma*invstd_running
  virtual void batch_norm_backward_eval(const float* dy, const float* x, const float* gamma,
                                        const float* running_mean, const float* running_var,
                                        float* dx, float* dgamma, float* dbeta, int64_t N,
                                        int64_t C, int64_t HW, float eps, bool accumulate) = 0;

  // ---- layout ----
  virtual void box_copy(const BoxCopy& b, const float* src, float* dst) = 0;
  // Global average pool [NC, HW] -> [NC]
  virtual void global_avg_pool_forward(const float* x, float* y, int64_t NC, int64_t HW) = 0;
  virtual void global_avg_pool_backward(const float* dy, float* dx, int64_t NC, int64_t HW,
                                        bool accumulate) = 0;
  // y[n, i] = x[n, i] * scale[n]   (drop-path: scale = mask / keep_prob)
  virtual void scale_rows(float* y, const float* x, const float* scale, int64_t rows,
                          int64_t cols, bool accumulate) = 0;

  // ---- optimizers (one fused loop over a whole parameter set) ----
  // PyTorch Adam with L2 weight decay: g' = g + wd * p; m = b1 m + (1-b1) g';
  // v = b2 v + (1-b2) g'^2; p -= lr * (m / bc1) / (sqrt(v / bc2) + eps),
  // bc1 = 1 - b1^t, bc2 = 1 - b2^t. grad_scale multiplies g first (clipping).
  virtual void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, float bc1,
                         float bc2, const float* grad_scale) = 0;
  // PyTorch SGD: g' = g*scale + wd p; buf = mom buf + g' (buf = g' at first step); p -= lr buf
  virtual void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
                        float weight_decay, bool first_step, const float* grad_scale) = 0;
  // scale1[0] = min(1, max_norm / (sqrt(sumsq1[0]) + 1e-6))
  virtual void clip_scale(float* scale1, const float* sumsq1, float max_norm) = 0;
};

// The backend of a device. Throws metanas::Error if that device is not
// available in this build / on this machine.
Backend& backend(Device d);

// Registration hook used by the CUDA backend's translation unit.
void register_backend(Device d, Backend* b);

}  // namespace metanas
