// Activations and policy-gradient ops, forward and backward side by side:
// sigmoid, tanh, exp, masked log-softmax, per-row gather, clamp, minimum.
// They are what the meta-RL agent's GRU cell and PPO loss are built from.
//
// Index and mask validation: as for cross_entropy's labels, gather_cols checks
// its indices on the host for CPU tensors; on a device the check would cost a
// sync per call, so the kernel never reads out of range instead (NaN output).
#include <cmath>

#include "ops/op_util.h"

namespace metanas {

using namespace detail;

namespace {
using Fwd = void (Backend::*)(float*, const float*, int64_t);
using Bwd = void (Backend::*)(float*, const float*, const float*, int64_t, bool);

// y = f(x) whose backward needs only y (sigmoid, tanh).
Tensor from_output(const char* op, const Tensor& x, Fwd fwd, Bwd bwd) {
  check_f32(op, x, "x");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  (backend(x.device()).*fwd)(y.data(), x.data(), x.numel());
  const Tensor saved = y.detach();
  record(y, op, {x}, [saved, bwd](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::F32, g.device());
    (backend(g.device()).*bwd)(dx.data(), g.data(), saved.data(), g.numel(), false);
    return {dx};
  });
  return y;
}
}  // namespace

Tensor sigmoid(const Tensor& x) {
  return from_output("sigmoid", x, &Backend::sigmoid_forward, &Backend::sigmoid_backward);
}

Tensor tanh(const Tensor& x) { return from_output("tanh", x, &Backend::tanh_forward, &Backend::tanh_backward); }

Tensor exp(const Tensor& x) {
  check_f32("exp", x, "x");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  backend(x.device()).exp_forward(y.data(), x.data(), x.numel());
  const Tensor saved = y.detach();
  record(y, "exp", {x}, [saved](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::F32, g.device());
    backend(g.device()).mul(dx.data(), g.data(), saved.data(), g.numel(), false);
    return {dx};
  });
  return y;
}

Tensor log_softmax(const Tensor& logits, const Tensor& mask) {
  const char* op = "log_softmax";
  check_f32(op, logits, "logits");
  check_ndim(op, logits, 2, "logits");
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  MN_CHECK(rows > 0 && cols > 0, op, ": needs at least one row and one column, got ", logits.describe());
  if (mask.defined()) {
    MN_CHECK(mask.dtype() == DType::I32 && mask.shape() == logits.shape(), op, ": mask must be int32 ",
             logits.shape().str(), ", got ", mask.describe());
    common_device(op, {logits, mask});
  }
  Tensor y = Tensor::empty(logits.shape(), DType::F32, logits.device());
  const int32_t* m = mask.defined() ? mask.data_i32() : nullptr;
  backend(logits.device()).log_softmax_forward(y.data(), logits.data(), m, rows, cols);
  const Tensor saved = y.detach();
  record(y, op, {logits}, [saved, mask, rows, cols](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::F32, g.device());
    const int32_t* mm = mask.defined() ? mask.data_i32() : nullptr;
    backend(g.device()).log_softmax_backward(dx.data(), g.data(), saved.data(), mm, rows, cols, false);
    return {dx};
  });
  return y;
}

Tensor gather_cols(const Tensor& x, const Tensor& idx) {
  const char* op = "gather_cols";
  check_f32(op, x, "x");
  check_ndim(op, x, 2, "x");
  const int64_t rows = x.dim(0), cols = x.dim(1);
  MN_CHECK(idx.defined() && idx.dtype() == DType::I32 && idx.ndim() == 1 && idx.dim(0) == rows, op,
           ": indices must be int32 [", rows, "], got ", idx.defined() ? idx.describe() : std::string("undefined"));
  const Device dev = common_device(op, {x, idx});
  if (dev == Device::CPU) {
    const int32_t* p = idx.data_i32();
    for (int64_t r = 0; r < rows; ++r)
      MN_CHECK(p[r] >= 0 && p[r] < cols, op, ": index ", p[r], " at row ", r, " is outside [0, ", cols, ")");
  }
  Tensor y = Tensor::empty(Shape{rows}, DType::F32, dev);
  backend(dev).gather_cols_forward(y.data(), x.data(), idx.data_i32(), rows, cols);
  record(y, op, {x}, [idx, rows, cols](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(Shape{rows, cols}, DType::F32, g.device());
    backend(g.device()).gather_cols_backward(dx.data(), g.data(), idx.data_i32(), rows, cols, false);
    return {dx};
  });
  return y;
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  const char* op = "clamp";
  check_f32(op, x, "x");
  MN_CHECK(!(lo > hi), op, ": lower bound ", lo, " exceeds upper bound ", hi);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  backend(x.device()).clamp_forward(y.data(), x.data(), lo, hi, x.numel());
  record(y, op, {x}, [x, lo, hi](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::F32, g.device());
    backend(g.device()).clamp_backward(dx.data(), g.data(), x.data(), lo, hi, g.numel(), false);
    return {dx};
  });
  return y;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  const char* op = "minimum";
  check_f32(op, a, "a");
  check_f32(op, b, "b");
  check_same_shape(op, a, b);
  const Device dev = common_device(op, {a, b});
  Tensor y = Tensor::empty(a.shape(), DType::F32, dev);
  backend(dev).minimum_forward(y.data(), a.data(), b.data(), a.numel());
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  record(y, op, {a, b}, [a, b, need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
    Tensor da = need_a ? Tensor::empty(g.shape(), DType::F32, g.device()) : Tensor();
    Tensor db = need_b ? Tensor::empty(g.shape(), DType::F32, g.device()) : Tensor();
    backend(g.device()).minimum_backward(need_a ? da.data() : nullptr, need_b ? db.data() : nullptr, g.data(),
                                         a.data(), b.data(), g.numel());
    return {da, db};
  });
  return y;
}

}  // namespace metanas
