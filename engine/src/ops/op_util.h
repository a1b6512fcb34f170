// Helpers shared by the op implementations: input checks that name the op and
// the shapes, and access to the inputs' backend.
#pragma once
#include <vector>

#include "metanas/engine/extension.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/tensor.h"

namespace metanas::detail {

inline void check_defined(const char* op, const Tensor& t, const char* what) {
  MN_CHECK(t.defined(), op, ": ", what, " is an undefined tensor");
}

inline void check_f32(const char* op, const Tensor& t, const char* what) {
  check_defined(op, t, what);
  MN_CHECK(t.dtype() == DType::F32, op, ": ", what, " must be float32, got ", t.describe());
}

inline void check_ndim(const char* op, const Tensor& t, int ndim, const char* what) {
  MN_CHECK(t.ndim() == ndim, op, ": ", what, " must be ", ndim, "-D, got ", t.describe());
}

// All defined tensors must share one device; returns it.
inline Device common_device(const char* op, const std::vector<Tensor>& ts) {
  Device d = Device::CPU;
  bool first = true;
  for (const auto& t : ts) {
    if (!t.defined()) continue;
    if (first) {
      d = t.device();
      first = false;
    } else if (t.device() != d) {
      MN_THROW(op, ": inputs on different devices (", device_name(d), " and ", device_name(t.device()),
               "); move them with .to(device) first");
    }
  }
  return d;
}

inline void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  MN_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", a.describe(), " vs ", b.describe());
}

// For a backward of the accumulate-into form (record_into): the gradient
// buffer of input i, into[i] (the engine's buffer to add into, acc = true)
// when it offers one, else a fresh tensor of `shape` to overwrite (acc = false).
inline Tensor grad_target(const std::vector<Tensor>& into, size_t i, const Shape& shape, Device dev, bool& acc) {
  acc = i < into.size() && into[i].defined();
  return acc ? into[i] : Tensor::empty(shape, DType::F32, dev);
}

}  // namespace metanas::detail
