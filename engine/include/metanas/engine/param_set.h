// ParamSet: all parameters of a model in one contiguous buffer (each
// parameter a named view) and their gradients in a second buffer laid out the
// same way. Whole-set operations are single loops/kernels over the buffers,
// which is what REPTILE and the optimizers need:
//   theta <- theta + eps * (theta_task - theta)   ==  meta.lerp_(task, eps)
// Usage: add() parameters while building a model, then finalize(); after
// that the set's layout is frozen and views stay valid for its lifetime.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "metanas/engine/tensor.h"

namespace metanas {

class ParamSet {
 public:
  explicit ParamSet(Device device = Device::CPU) : device_(device) {}
  // Copying would silently share the buffers (the views are handles): use
  // clone() for a real copy. Moving is fine.
  ParamSet(const ParamSet&) = delete;
  ParamSet& operator=(const ParamSet&) = delete;
  ParamSet(ParamSet&&) = default;
  ParamSet& operator=(ParamSet&&) = default;

  // Declares a parameter (before finalize). Returns its index.
  int add(const std::string& name, const Shape& shape);
  // Allocates the value and gradient buffers (zeros) and makes every
  // parameter a leaf view (requires_grad, grad pointing into the grad buffer).
  void finalize();
  bool finalized() const { return finalized_; }

  int size() const { return static_cast<int>(names_.size()); }
  int64_t numel() const { return numel_; }
  Device device() const { return device_; }

  // Parameter views (valid after finalize).
  Tensor& operator[](int i);
  const Tensor& operator[](int i) const;
  Tensor& get(const std::string& name);  // throws naming the missing parameter
  bool contains(const std::string& name) const;
  int index_of(const std::string& name) const;
  const std::string& name(int i) const { return names_.at(i); }
  const Shape& shape(int i) const { return shapes_.at(i); }
  int64_t offset(int i) const { return offsets_.at(i); }
  const std::vector<std::string>& names() const { return names_; }

  // The flat buffers as 1-D tensors [numel] (views, no autograd).
  Tensor& values() { return values_; }
  const Tensor& values() const { return values_; }
  Tensor& grads() { return grads_; }
  const Tensor& grads() const { return grads_; }

  // ---- whole-set operations (shapes must match: same layout) ----
  void zero_grad();
  void copy_from(const ParamSet& other);               // values only
  void lerp_(const ParamSet& target, float t);         // this += t * (target - this)
  void axpy_(const ParamSet& x, float a);              // this += a * x
  void scale_(float s);
  // A structural copy (same names/shapes) with its own buffers.
  ParamSet clone() const;
  // Layout equality: same names, shapes and order.
  bool same_layout(const ParamSet& o) const;
  // L2 norm of values / of grads (host float; synchronises).
  float norm() const;
  float grad_norm() const;
  // Move to another device (copies the buffers; views are rebuilt).
  void to(Device device);

 private:
  void require_finalized(const char* what) const;
  Device device_;
  bool finalized_ = false;
  int64_t numel_ = 0;
  std::vector<std::string> names_;
  std::vector<Shape> shapes_;
  std::vector<int64_t> offsets_;
  std::map<std::string, int> index_;
  Tensor values_, grads_;
  std::vector<Tensor> views_;
};

}  // namespace metanas
