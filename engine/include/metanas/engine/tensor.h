// Tensor: a cheap, ref-counted handle to a contiguous row-major (NCHW) array
// of float32 or int32 on one device, plus the autograd link to the op that
// made it. Copying a Tensor copies the handle, not the data.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metanas/engine/device.h"
#include "metanas/engine/shape.h"

namespace metanas {

class Rng;
struct Node;

// The tensor's internals (Storage, TensorImpl) and the autograd Node belong
// to the op-author interface: metanas/engine/extension.h.
struct Storage;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  static Tensor ones(const Shape& shape, Device device = Device::CPU) { return full(shape, 1.f, device); }
  static Tensor scalar(float value, Device device = Device::CPU) { return full(Shape{}, value, device); }
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::CPU);
  static Tensor from_ints(const std::vector<int32_t>& values, const Shape& shape,
                          Device device = Device::CPU);
  // Normal(mean, stddev) / Uniform[lo, hi) drawn on the host from rng.
  static Tensor randn(const Shape& shape, Rng& rng, float stddev = 1.f, float mean = 0.f,
                      Device device = Device::CPU);
  static Tensor rand_uniform(const Shape& shape, Rng& rng, float lo, float hi,
                             Device device = Device::CPU);

  // ---- properties ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int ndim() const { return shape().ndim(); }
  int64_t dim(int i) const { return shape()[i]; }
  int64_t numel() const { return shape().numel(); }
  DType dtype() const;
  Device device() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * 4; }
  std::string describe() const;  // "float32[20, 28, 14, 14] on cpu"

  // Raw element pointer (a device pointer for CUDA tensors). Checks dtype.
  float* data();
  const float* data() const;
  int32_t* data_i32();
  const int32_t* data_i32() const;

  // ---- host access (copies; synchronises a device) ----
  std::vector<float> to_vector() const;
  std::vector<int32_t> to_int_vector() const;
  float item() const;  // numel must be 1

  // ---- copies and views ----
  Tensor to(Device device) const;  // same tensor if already there; no autograd
  Tensor clone() const;            // deep copy, no autograd link
  Tensor detach() const;           // shares storage, no autograd link
  // Same storage, new shape (numel must match). Differentiable.
  Tensor reshape(const Shape& shape) const;
  // A view of shape.numel() elements starting `offset` elements into this
  // tensor (same storage and dtype; must lie inside this tensor). No autograd
  // link: for parameter views into flat buffers and row blocks of a batch.
  Tensor view(int64_t offset, const Shape& shape) const;

  // ---- in-place, never recorded by autograd (parameter updates etc.) ----
  Tensor& fill_(float value);
  Tensor& zero_();
  Tensor& copy_(const Tensor& src);                 // same shape and dtype; devices may differ
  Tensor& add_(const Tensor& x, float alpha = 1.f);  // this += alpha * x
  Tensor& mul_(float s);

  // ---- autograd ----
  bool requires_grad() const;
  // Marks a leaf as a parameter whose gradient is accumulated by backward().
  Tensor& set_requires_grad(bool on = true);
  // The accumulated gradient of a leaf (undefined until the first backward).
  Tensor grad() const;
  // Points the leaf's gradient at a given buffer (ParamSet uses its flat grad
  // buffer); backward() then accumulates there with +=.
  void set_grad(const Tensor& g);
  void zero_grad();
  bool is_leaf() const;
  // Reverse-mode backward from a scalar (numel 1); d(this)/d(this) = 1.
  // Frees the graph afterwards.
  void backward() const;
  // Backward with an explicit upstream gradient of this tensor's shape.
  void backward(const Tensor& grad_output) const;

  const std::string& name() const;
  Tensor& set_name(const std::string& n);

  // The internals, for op authors (types in metanas/engine/extension.h).
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  // True when both handles view the same storage at the same offset and shape.
  bool same_as(const Tensor& o) const;

 private:
  void require_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace metanas
