// Differentiable ops. Each checks its inputs (shapes, dtypes, devices: a
// mismatch throws metanas::Error naming the op and the shapes), runs the
// kernel of the inputs' device through backend(), and records its backward.
// Forward and backward of each op live together in engine/src/ops/<family>.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "metanas/engine/tensor.h"
#include "metanas/kernels/kernel_types.h"  // PhiloxKey

namespace metanas {

class Rng;

// ---- element-wise (same shapes) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& x, float s);
Tensor mul_scalar(const Tensor& x, float s);
Tensor relu(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& x, float s);
Tensor operator*(float s, const Tensor& x);
// Sum / mean of all elements -> scalar tensor (shape []).
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
// Sum of squares of all elements -> scalar.
Tensor sum_squares(const Tensor& x);

// ---- DARTS mixed op ----
// y = sum_k w[k] * xs[k]; xs all of one shape; w of shape [K] (a row of
// normalised architecture weights; may be a view into a larger tensor via
// select_row). Gradients for every xs[k] and for w.
Tensor weighted_sum(const std::vector<Tensor>& xs, const Tensor& w);
// The same with constant row scales [K, N] (N = xs[k].dim(0)):
// y[n] = sum_k w[k] * row_scales[k, n] * xs[k][n]. It is weighted_sum of the
// drop-path'd inputs without materialising them (drop_path_scales gives the
// masks); row_scales get no gradient.
Tensor weighted_sum(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& row_scales);
// weighted_sum (row_scales [K, N] or undefined) of the inputs with every
// xs[k] with normalize[k] first put through an affine-free training-mode
// batch_norm (batch statistics, eps; no running statistics): DARTS's search
// ops end in such a batch norm, and folded in here their normalised outputs
// are never materialised. xs are [N, C, H, W] or [N, C]. The same values and
// gradients as batch_norm then weighted_sum, up to rounding.
Tensor normalized_weighted_sum(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& row_scales,
                               const std::vector<bool>& normalize, float eps = 1e-5f);

// ---- softmax with temperature over the last dim: softmax(a / T) ----
Tensor softmax(const Tensor& a, float temperature = 1.f);
// Row r of a 2-D tensor as a 1-D tensor [cols] (differentiable view-copy).
Tensor select_row(const Tensor& a, int64_t row);

// ---- convolution ----
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  bool relu_input = false;  // computes conv(relu(x)) without materialising relu(x)
  // Convenience: square kernel settings.
  static Conv2dOptions same(int64_t stride, int64_t pad, int64_t dilation = 1, int64_t groups = 1) {
    Conv2dOptions o;
    o.stride_h = o.stride_w = stride;
    o.pad_top = o.pad_bottom = o.pad_left = o.pad_right = pad;
    o.dil_h = o.dil_w = dilation;
    o.groups = groups;
    return o;
  }
};
// x [N, Cin, H, W], w [Cout, Cin/groups, KH, KW] -> [N, Cout, OH, OW]. No bias.
Tensor conv2d(const Tensor& x, const Tensor& w, const Conv2dOptions& opt = {});
// Output size of one spatial dim; throws if it would be < 1.
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                      int64_t dilation);

// ---- pooling: square window k, stride, symmetric padding ----
Tensor max_pool2d(const Tensor& x, int64_t k = 3, int64_t stride = 1, int64_t pad = 1);
// Average over the real (non-padding) pixels of each window.
Tensor avg_pool2d(const Tensor& x, int64_t k = 3, int64_t stride = 1, int64_t pad = 1);
// [N, C, H, W] -> [N, C]
Tensor global_avg_pool(const Tensor& x);

// ---- batch norm over [N, C, H, W] (or [N, C]) ----
struct BatchNormOptions {
  bool training = true;  // batch statistics; else running statistics
  float eps = 1e-5f;
  float momentum = 0.1f;  // running = (1 - momentum) * running + momentum * batch
};
// gamma/beta: [C] or undefined (non-affine). running_mean/var: [C] or
// undefined; updated in place (no autograd) during training when defined.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean,
                  Tensor running_var, const BatchNormOptions& opt = {});

// ---- layout ----
// Concatenate along channels (dim 1) of 4-D tensors with equal N, H, W.
Tensor concat_channels(const std::vector<Tensor>& xs);
// Channels [c0, c0 + count) of a 4-D tensor.
Tensor slice_channels(const Tensor& x, int64_t c0, int64_t count);
// Spatial window [h0, h0 + h) x [w0, w0 + w) of a 4-D tensor.
Tensor crop2d(const Tensor& x, int64_t h0, int64_t w0, int64_t h, int64_t w);
// Reshape to [N, rest].
Tensor flatten(const Tensor& x);

// ---- classifier ----
// x [N, in], w [out, in], b [out] or undefined -> [N, out]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
// Fused log-softmax + NLL; mean over the batch. logits [N, C], labels int32 [N].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);
// int32 [N] of row arg-maxes (no gradient).
Tensor argmax(const Tensor& logits);
// Fraction of correct rows, as a scalar tensor on the logits' device (no gradient).
Tensor accuracy(const Tensor& logits, const Tensor& labels);

// ---- activations and policy-gradient ops (GRU cells, PPO losses) ----
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor exp(const Tensor& x);
// Row-wise log-softmax of logits [N, C]. With a mask (int32 [N, C], non-zero =
// allowed) the softmax runs over the allowed entries only; masked entries get
// kMaskedLogProb (-1e30: finite, so exp() is 0 and 0 * log p stays 0) and no
// gradient. Every row needs an allowed entry.
Tensor log_softmax(const Tensor& logits, const Tensor& mask = Tensor());
// y[r] = x[r, idx[r]] for x [N, C], idx int32 [N] (the log-probability of each row's action).
Tensor gather_cols(const Tensor& x, const Tensor& idx);
// min(max(x, lo), hi); gradient 1 where lo <= x <= hi (PyTorch's convention).
Tensor clamp(const Tensor& x, float lo, float hi);
// Element-wise min(a, b); on ties each input gets half the gradient (PyTorch's convention).
Tensor minimum(const Tensor& a, const Tensor& b);

// ---- regularisation ----
// Zeroes each sample (dim 0) with probability p and scales kept samples by
// 1 / (1 - p). Identity when p == 0. The mask of sample i is drawn on the
// tensor's device from the counter-based stream `key` (Philox4x32-10: the
// same key gives the same mask on the CPU and the GPU; nothing is uploaded).
Tensor drop_path(const Tensor& x, float p, const PhiloxKey& key);
// The same with the key's seed and task read on the device from key_words
// (int32 [3] on x's device: seed low, seed high, task; key.seed and key.task
// are ignored): a CUDA graph of the step replays with the words' current
// values (Backend::drop_path_scales_at). Same masks as the key it holds.
Tensor drop_path(const Tensor& x, float p, const PhiloxKey& key, const Tensor& key_words);
// The same with the key's seed drawn from rng (one next_u64() per call when
// p > 0, none when p == 0).
Tensor drop_path(const Tensor& x, float p, Rng& rng);
// The row scales drop_path applies, for weighted_sum's row_scales: [ops.size(), n]
// on `device`, row r the scales of drop_path(x, p, key') on n samples with
// key'.op = key.op + ops[r], or ones where ops[r] < 0 (an input not dropped).
// key_words as in drop_path (null: the key's own seed and task).
Tensor drop_path_scales(int64_t n, float p, const PhiloxKey& key, const std::vector<int64_t>& ops, Device device,
                        const Tensor* key_words = nullptr);

}  // namespace metanas
