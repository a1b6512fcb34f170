// The DARTS mixed op y = sum_k w[k] * xs[k], forward and backward, optionally
// with constant per-sample scales of every input (the drop-path masks of the
// op outputs: folding them in saves a read and a write of every output and of
// its gradient). One kernel pass each way: the backward writes every needed
// dx_k and dw together. normalized_weighted_sum folds each input's last,
// affine-free batch norm in as well (kernels/cpu/normalized_sum.cpp: the math).
#include <string>

#include "ops/op_util.h"

namespace metanas {

using namespace detail;

namespace {

// The checks both forms share; returns the rows of rs (0 when undefined).
int64_t check_mixed_inputs(const char* op, const std::vector<Tensor>& xs, const Tensor& w, const Tensor& rs) {
  MN_CHECK(!xs.empty(), op, ": needs at least one input");
  for (size_t k = 0; k < xs.size(); ++k) {
    const std::string what = str_cat("xs[", k, "]");
    check_f32(op, xs[k], what.c_str());
    MN_CHECK(xs[k].shape() == xs[0].shape(), op, ": inputs must share one shape: xs[0] is ",
             xs[0].describe(), " but xs[", k, "] is ", xs[k].describe());
  }
  check_f32(op, w, "w");
  const int K = static_cast<int>(xs.size());
  MN_CHECK(w.ndim() == 1 && w.dim(0) == K, op, ": w must be 1-D [", K, "] (one weight per input), got ",
           w.describe());
  int64_t rows = 0;
  if (rs.defined()) {
    check_f32(op, rs, "row_scales");
    MN_CHECK(xs[0].ndim() >= 1, op, ": row scales need a batch dimension, got ", xs[0].describe());
    rows = xs[0].dim(0);
    MN_CHECK(rs.ndim() == 2 && rs.dim(0) == K && rs.dim(1) == rows, op, ": row_scales must be [", K, ", ", rows,
             "] (one scale per input and sample), got ", rs.describe());
    MN_CHECK(!rs.requires_grad(), op, ": row_scales are constants (drop-path masks) and get no gradient");
    MN_CHECK(rs.device() == w.device(), op, ": row_scales on ", device_name(rs.device()), " but w on ",
             device_name(w.device()));
  }
  return rows;
}

// rs: [K, N] row scales or undefined.
Tensor weighted_sum_impl(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& rs) {
  const char* op = "weighted_sum";
  const int64_t rows = check_mixed_inputs(op, xs, w, rs);
  const int K = static_cast<int>(xs.size());
  std::vector<Tensor> all(xs);
  all.push_back(w);
  const Device dev = common_device(op, all);

  const int64_t n = xs[0].numel();
  const bool scaled = rs.defined() && n > 0;
  Tensor y = Tensor::empty(xs[0].shape(), DType::F32, dev);
  std::vector<const float*> ptrs(static_cast<size_t>(K));
  for (int k = 0; k < K; ++k) ptrs[static_cast<size_t>(k)] = xs[static_cast<size_t>(k)].data();
  backend(dev).weighted_sum_forward(y.data(), ptrs.data(), w.data(), scaled ? rs.data() : nullptr, rows, K, n);

  if (!any_requires_grad(all)) return y;
  // Which inputs want a gradient is fixed now. The inputs themselves are saved
  // only when dw is needed; w (K floats) always, as the kernel reads it.
  std::vector<bool> need_x(static_cast<size_t>(K));
  for (int k = 0; k < K; ++k) need_x[static_cast<size_t>(k)] = xs[static_cast<size_t>(k)].requires_grad();
  const bool need_w = w.requires_grad();
  std::vector<Tensor> saved_xs = need_w ? xs : std::vector<Tensor>();
  Tensor saved_w = w;
  Tensor saved_rs = scaled ? rs : Tensor();
  record(y, op, all, [saved_xs, saved_w, saved_rs, rows, need_x, need_w, K](const Tensor& g) -> std::vector<Tensor> {
    const Device d = g.device();
    const int64_t n = g.numel();
    std::vector<Tensor> grads(static_cast<size_t>(K) + 1);
    std::vector<float*> dxs(static_cast<size_t>(K), nullptr);
    for (int k = 0; k < K; ++k) {
      if (!need_x[static_cast<size_t>(k)]) continue;
      grads[static_cast<size_t>(k)] = Tensor::empty(g.shape(), DType::F32, d);
      dxs[static_cast<size_t>(k)] = grads[static_cast<size_t>(k)].data();
    }
    std::vector<const float*> xp(static_cast<size_t>(K), nullptr);
    float* dw = nullptr;
    if (need_w) {
      grads[static_cast<size_t>(K)] = Tensor::empty(Shape{K}, DType::F32, d);
      dw = grads[static_cast<size_t>(K)].data();
      for (int k = 0; k < K; ++k) xp[static_cast<size_t>(k)] = saved_xs[static_cast<size_t>(k)].data();
    }
    backend(d).weighted_sum_backward(dxs.data(), dw, g.data(), xp.data(), saved_w.data(),
                                     saved_rs.defined() ? saved_rs.data() : nullptr, rows, K, n, false);
    return grads;
  });
  return y;
}

}  // namespace

Tensor weighted_sum(const std::vector<Tensor>& xs, const Tensor& w) { return weighted_sum_impl(xs, w, Tensor()); }

Tensor normalized_weighted_sum(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& rs,
                               const std::vector<bool>& normalize, float eps) {
  const char* op = "normalized_weighted_sum";
  check_mixed_inputs(op, xs, w, rs);
  const int K = static_cast<int>(xs.size());
  MN_CHECK(static_cast<int>(normalize.size()) == K, op, ": normalize has ", normalize.size(), " flags for ", K,
           " inputs");
  MN_CHECK(xs[0].ndim() == 4 || xs[0].ndim() == 2, op, ": inputs must be [N, C, H, W] or [N, C], got ",
           xs[0].describe());
  MN_CHECK(eps > 0.f, op, ": eps must be > 0, got ", eps);
  const int64_t N = xs[0].dim(0), C = xs[0].dim(1), HW = xs[0].ndim() == 4 ? xs[0].dim(2) * xs[0].dim(3) : 1;
  bool any_norm = false;
  for (bool b : normalize) any_norm = any_norm || b;
  MN_CHECK(!any_norm || N * HW > 1, op, ": batch statistics need more than one value per channel, got ",
           xs[0].describe());
  std::vector<Tensor> all(xs);
  all.push_back(w);
  const Device dev = common_device(op, all);
  Backend& be = backend(dev);

  // Statistics [K, C]: rows of plain inputs are mean 0, invstd 1 (exact no-ops).
  Tensor mean = Tensor::zeros(Shape{K, C}, DType::F32, dev);
  Tensor invstd = Tensor::empty(Shape{K, C}, DType::F32, dev);
  be.fill(invstd.data(), 1.f, K * C);
  std::vector<const float*> ptrs(static_cast<size_t>(K));
  std::vector<int> flags(static_cast<size_t>(K));
  for (int k = 0; k < K; ++k) {
    ptrs[static_cast<size_t>(k)] = xs[static_cast<size_t>(k)].data();
    flags[static_cast<size_t>(k)] = normalize[static_cast<size_t>(k)] ? 1 : 0;
    if (flags[static_cast<size_t>(k)])
      be.batch_norm_statistics(ptrs[static_cast<size_t>(k)], mean.data() + k * C, invstd.data() + k * C, N, C, HW,
                               eps);
  }
  const Tensor srs = rs.defined() && xs[0].numel() > 0 ? rs : Tensor();
  Tensor y = Tensor::empty(xs[0].shape(), DType::F32, dev);
  be.normalized_sum_forward(y.data(), ptrs.data(), w.data(), srs.defined() ? srs.data() : nullptr, mean.data(),
                            invstd.data(), K, N, C, HW);

  if (!any_requires_grad(all)) return y;
  std::vector<bool> need_x(static_cast<size_t>(K));
  for (int k = 0; k < K; ++k) need_x[static_cast<size_t>(k)] = xs[static_cast<size_t>(k)].requires_grad();
  const bool need_w = w.requires_grad();
  // Every input is saved: the normalised ones for their own gradient, all for dw.
  // Accumulate-into form: a gradient goes into the engine's buffer for that
  // input where it offers one (a skip connection's input, a MetaNAS state
  // read by every op of its edges), else into a fresh tensor it adopts.
  record_into(y, op, all,
              [xs, w, srs, mean, invstd, flags, need_x, need_w, K, N, C, HW](
                  const Tensor& g, const std::vector<Tensor>& into) -> std::vector<Tensor> {
                const Device d = g.device();
                std::vector<Tensor> grads(static_cast<size_t>(K) + 1);
                std::vector<float*> dxs(static_cast<size_t>(K), nullptr);
                std::vector<const float*> xp(static_cast<size_t>(K));
                std::vector<int> acc(static_cast<size_t>(K), 0);
                for (int k = 0; k < K; ++k) {
                  const size_t i = static_cast<size_t>(k);
                  xp[i] = xs[i].data();
                  if (!need_x[i]) continue;
                  bool a = false;
                  grads[i] = grad_target(into, i, g.shape(), d, a);
                  acc[i] = a ? 1 : 0;
                  dxs[i] = grads[i].data();
                }
                float* dw = nullptr;
                bool acc_w = false;
                if (need_w) {
                  grads[static_cast<size_t>(K)] = grad_target(into, static_cast<size_t>(K), Shape{K}, d, acc_w);
                  dw = grads[static_cast<size_t>(K)].data();
                }
                backend(d).normalized_sum_backward(dxs.data(), dw, g.data(), xp.data(), w.data(),
                                                   srs.defined() ? srs.data() : nullptr, mean.data(), invstd.data(),
                                                   flags.data(), acc.data(), K, N, C, HW, acc_w);
                return grads;
              });
  return y;
}

Tensor weighted_sum(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& row_scales) {
  MN_CHECK(row_scales.defined(), "weighted_sum: row_scales undefined (use the two-argument overload)");
  return weighted_sum_impl(xs, w, row_scales);
}

}  // namespace metanas
