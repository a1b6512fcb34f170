// Softmax with temperature, select_row, fused cross-entropy, argmax and
// accuracy: forward and backward side by side.
//
// Label validation: cross_entropy checks labels against [0, C) on the host
// for CPU tensors (a bad label throws metanas::Error naming it). For device
// tensors that check would cost a device-to-host copy and a sync on every
// loss, so it is skipped there; the kernels never index with an out-of-range
// label (the loss comes out NaN instead), so nothing is read out of bounds.
#include <cmath>

#include "ops/op_util.h"

namespace metanas {

using namespace detail;

Tensor softmax(const Tensor& a, float temperature) {
  const char* op = "softmax";
  check_f32(op, a, "a");
  MN_CHECK(a.ndim() >= 1, op, ": input must have at least 1 dimension, got ", a.describe());
  MN_CHECK(std::isfinite(temperature) && temperature > 0.f, op, ": temperature must be > 0, got ",
           temperature);
  const int64_t cols = a.dim(-1);
  const int64_t rows = cols > 0 ? a.numel() / cols : 0;
  const float inv_t = 1.f / temperature;
  Tensor y = Tensor::empty(a.shape(), DType::F32, a.device());
  if (a.numel()) backend(a.device()).softmax_forward(y.data(), a.data(), rows, cols, inv_t);
  // The backward needs only the output (saved without its graph link).
  Tensor saved = y.detach();
  record(y, op, {a}, [saved, rows, cols, inv_t](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::F32, g.device());
    if (g.numel())
      backend(g.device()).softmax_backward(dx.data(), g.data(), saved.data(), rows, cols, inv_t, false);
    return {dx};
  });
  return y;
}

Tensor select_row(const Tensor& a, int64_t row) {
  const char* op = "select_row";
  check_f32(op, a, "a");
  check_ndim(op, a, 2, "a");
  const int64_t rows = a.dim(0), cols = a.dim(1);
  MN_CHECK(row >= 0 && row < rows, op, ": row ", row, " out of range for ", a.describe());
  Tensor y = Tensor::empty(Shape{cols}, DType::F32, a.device());
  if (cols) backend(a.device()).copy(y.data(), a.data() + row * cols, static_cast<size_t>(cols) * 4);
  const Shape shape = a.shape();
  record(y, op, {a}, [shape, row, cols](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::zeros(shape, DType::F32, g.device());
    if (cols) backend(g.device()).copy(dx.data() + row * cols, g.data(), static_cast<size_t>(cols) * 4);
    return {dx};
  });
  return y;
}

namespace {
// Shared checks of (logits [N, C], labels int32 [N]); returns the device.
Device check_logits_labels(const char* op, const Tensor& logits, const Tensor& labels) {
  check_f32(op, logits, "logits");
  check_ndim(op, logits, 2, "logits");
  check_defined(op, labels, "labels");
  MN_CHECK(labels.dtype() == DType::I32, op, ": labels must be int32, got ", labels.describe());
  MN_CHECK(labels.ndim() == 1 && labels.dim(0) == logits.dim(0), op, ": labels must be [",
           logits.dim(0), "] to match logits ", logits.describe(), ", got ", labels.describe());
  return common_device(op, {logits, labels});
}
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  const char* op = "cross_entropy";
  const Device dev = check_logits_labels(op, logits, labels);
  const int64_t N = logits.dim(0), C = logits.dim(1);
  MN_CHECK(N > 0 && C > 0, op, ": needs at least one row and one class, got ", logits.describe());
  if (dev == Device::CPU) {
    const int32_t* l = labels.data_i32();
    for (int64_t r = 0; r < N; ++r)
      MN_CHECK(l[r] >= 0 && l[r] < C, op, ": label ", l[r], " at row ", r, " is outside [0, ", C,
               ") for logits ", logits.describe());
  }
  Tensor loss = Tensor::empty(Shape{}, DType::F32, dev);
  Tensor probs = Tensor::empty(logits.shape(), DType::F32, dev);
  backend(dev).cross_entropy_forward(loss.data(), probs.data(), logits.data(), labels.data_i32(), N, C);
  record(loss, op, {logits, labels}, [probs, labels, N, C](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(probs.shape(), DType::F32, g.device());
    backend(g.device()).cross_entropy_backward(dx.data(), g.data(), probs.data(), labels.data_i32(), N,
                                               C, false);
    return {dx, Tensor()};
  });
  return loss;
}

Tensor argmax(const Tensor& logits) {
  const char* op = "argmax";
  check_f32(op, logits, "logits");
  check_ndim(op, logits, 2, "logits");
  MN_CHECK(logits.dim(1) > 0, op, ": logits have no columns: ", logits.describe());
  Tensor idx = Tensor::empty(Shape{logits.dim(0)}, DType::I32, logits.device());
  if (logits.dim(0))
    backend(logits.device()).argmax_rows(idx.data_i32(), logits.data(), logits.dim(0), logits.dim(1));
  return idx;
}

Tensor accuracy(const Tensor& logits, const Tensor& labels) {
  const char* op = "accuracy";
  const Device dev = check_logits_labels(op, logits, labels);
  MN_CHECK(logits.dim(0) > 0 && logits.dim(1) > 0, op, ": needs at least one row and one class, got ",
           logits.describe());
  // An out-of-range label simply never matches an arg-max: nothing to validate.
  Tensor acc = Tensor::empty(Shape{}, DType::F32, dev);
  backend(dev).accuracy(acc.data(), logits.data(), labels.data_i32(), logits.dim(0), logits.dim(1));
  return acc;
}

}  // namespace metanas
