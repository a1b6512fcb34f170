// Tensor handle, storage and the non-recorded in-place helpers.
#include "metanas/engine/extension.h"
#include "metanas/engine/tensor.h"

#include <cstring>

#include "metanas/engine/error.h"
#include "metanas/engine/random.h"

namespace metanas {

Storage::Storage(Device d, size_t nbytes) : bytes(nbytes), device(d) {
  ptr = nbytes ? backend(d).allocate(nbytes) : nullptr;
}

Storage::~Storage() {
  if (ptr) {
    try {
      backend(device).deallocate(ptr, bytes);
    } catch (...) {
      // A destructor must not throw; a failed free only leaks.
    }
  }
}

namespace {
std::shared_ptr<TensorImpl> make_impl(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape.dims())
    MN_CHECK(d >= 0, "Tensor: negative dimension in shape ", shape.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(device, static_cast<size_t>(shape.numel()) * dtype_size(dtype));
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  return impl;
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return Tensor(make_impl(shape, dtype, device));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (t.numel()) backend(device).memset_zero(t.impl_->storage->ptr, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, DType::F32, device);
  if (t.numel()) backend(device).fill(t.data(), value, t.numel());
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  MN_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "Tensor::from_vector: ",
           values.size(), " values for shape ", shape.str());
  Tensor t = empty(shape, DType::F32, device);
  if (t.numel()) backend(device).copy_from_host(t.data(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::from_ints(const std::vector<int32_t>& values, const Shape& shape, Device device) {
  MN_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "Tensor::from_ints: ",
           values.size(), " values for shape ", shape.str());
  Tensor t = empty(shape, DType::I32, device);
  if (t.numel()) backend(device).copy_from_host(t.data_i32(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng, float stddev, float mean, Device device) {
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (auto& x : v) x = mean + stddev * rng.normal();
  return from_vector(v, shape, device);
}

Tensor Tensor::rand_uniform(const Shape& shape, Rng& rng, float lo, float hi, Device device) {
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return from_vector(v, shape, device);
}

Tensor Tensor::view(int64_t offset, const Shape& shape) const {
  require_defined("view");
  MN_CHECK(offset >= 0 && offset + shape.numel() <= numel(), "Tensor::view: elements [", offset, ", ",
           offset + shape.numel(), ") lie outside ", describe());
  auto impl = std::make_shared<TensorImpl>();
  impl->device = impl_->device;
  impl->storage = impl_->storage;
  impl->offset = impl_->offset + offset;
  impl->shape = shape;
  impl->dtype = impl_->dtype;
  return Tensor(impl);
}

void Tensor::require_defined(const char* what) const {
  if (!impl_) MN_THROW("Tensor::", what, ": undefined tensor");
}

const Shape& Tensor::shape() const {
  require_defined("shape");
  return impl_->shape;
}
DType Tensor::dtype() const {
  require_defined("dtype");
  return impl_->dtype;
}
Device Tensor::device() const {
  require_defined("device");
  return impl_->device;
}

std::string Tensor::describe() const {
  if (!impl_) return "undefined tensor";
  return str_cat(dtype_name(impl_->dtype), impl_->shape.str(), " on ", device_name(impl_->device));
}

float* Tensor::data() {
  require_defined("data");
  MN_CHECK(impl_->dtype == DType::F32, "Tensor::data: tensor is ", describe(), ", expected float32");
  return static_cast<float*>(impl_->storage->ptr) + impl_->offset;
}
const float* Tensor::data() const { return const_cast<Tensor*>(this)->data(); }
int32_t* Tensor::data_i32() {
  require_defined("data_i32");
  MN_CHECK(impl_->dtype == DType::I32, "Tensor::data_i32: tensor is ", describe(), ", expected int32");
  return static_cast<int32_t*>(impl_->storage->ptr) + impl_->offset;
}
const int32_t* Tensor::data_i32() const { return const_cast<Tensor*>(this)->data_i32(); }

std::vector<float> Tensor::to_vector() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  if (!out.empty()) backend(device()).copy_to_host(out.data(), data(), nbytes());
  return out;
}

std::vector<int32_t> Tensor::to_int_vector() const {
  std::vector<int32_t> out(static_cast<size_t>(numel()));
  if (!out.empty()) backend(device()).copy_to_host(out.data(), data_i32(), nbytes());
  return out;
}

float Tensor::item() const {
  MN_CHECK(numel() == 1, "Tensor::item: tensor ", describe(), " has ", numel(), " elements, expected 1");
  if (dtype() == DType::I32) return static_cast<float>(to_int_vector()[0]);
  return to_vector()[0];
}

static const void* raw(const Tensor& t) {
  return static_cast<const char*>(t.impl()->storage->ptr) + t.impl()->offset * 4;
}
static void* raw_mut(Tensor& t) { return static_cast<char*>(t.impl()->storage->ptr) + t.impl()->offset * 4; }

Tensor Tensor::to(Device d) const {
  require_defined("to");
  if (d == device()) return *this;
  Tensor out = empty(shape(), dtype(), d);
  if (!numel()) return out;
  if (device() == Device::CPU) {
    backend(d).copy_from_host(raw_mut(out), raw(*this), nbytes());
  } else if (d == Device::CPU) {
    backend(device()).copy_to_host(raw_mut(out), raw(*this), nbytes());
  } else {
    MN_THROW("Tensor::to: unsupported device pair");
  }
  return out;
}

Tensor Tensor::clone() const {
  require_defined("clone");
  Tensor out = empty(shape(), dtype(), device());
  if (numel()) backend(device()).copy(raw_mut(out), raw(*this), nbytes());
  return out;
}

Tensor Tensor::detach() const {
  require_defined("detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  impl->device = impl_->device;
  impl->name = impl_->name;
  return Tensor(impl);
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  require_defined("reshape");
  MN_CHECK(new_shape.numel() == numel(), "reshape: cannot view ", describe(), " as ", new_shape.str());
  Tensor out = detach();
  out.impl_->shape = new_shape;
  out.impl_->name.clear();
  const Shape old_shape = shape();
  record(out, "reshape", {*this}, [old_shape](const Tensor& g) -> std::vector<Tensor> {
    return {g.reshape(old_shape)};
  });
  return out;
}

Tensor& Tensor::fill_(float value) {
  if (numel()) backend(device()).fill(data(), value, numel());
  return *this;
}

Tensor& Tensor::zero_() {
  require_defined("zero_");
  if (numel()) backend(device()).memset_zero(raw_mut(*this), nbytes());
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  require_defined("copy_");
  MN_CHECK(src.defined(), "Tensor::copy_: undefined source");
  MN_CHECK(src.shape() == shape() && src.dtype() == dtype(), "Tensor::copy_: source ", src.describe(),
           " does not match destination ", describe());
  if (!numel()) return *this;
  if (src.device() == device()) {
    backend(device()).copy(raw_mut(*this), raw(src), nbytes());
  } else if (src.device() == Device::CPU) {
    backend(device()).copy_from_host(raw_mut(*this), raw(src), nbytes());
  } else {
    backend(src.device()).copy_to_host(raw_mut(*this), raw(src), nbytes());
  }
  return *this;
}

Tensor& Tensor::add_(const Tensor& x, float alpha) {
  MN_CHECK(x.shape() == shape() && x.device() == device(), "Tensor::add_: ", x.describe(),
           " does not match ", describe());
  if (numel()) backend(device()).axpby(data(), x.data(), alpha, 1.f, numel());
  return *this;
}

Tensor& Tensor::mul_(float s) {
  if (numel()) backend(device()).affine(data(), data(), s, 0.f, numel());
  return *this;
}

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) {
  require_defined("set_requires_grad");
  MN_CHECK(!impl_->grad_fn, "set_requires_grad: only leaves can be marked (", describe(),
           " was computed by ", "an op)");
  MN_CHECK(!on || impl_->dtype == DType::F32, "set_requires_grad: int32 tensors have no gradient");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  require_defined("grad");
  return impl_->grad ? Tensor(impl_->grad) : Tensor();
}

void Tensor::set_grad(const Tensor& g) {
  require_defined("set_grad");
  if (g.defined())
    MN_CHECK(g.shape() == shape() && g.device() == device(), "set_grad: gradient ", g.describe(),
             " does not match ", describe());
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() {
  require_defined("zero_grad");
  if (impl_->grad) Tensor(impl_->grad).zero_();
}

bool Tensor::is_leaf() const { return impl_ && !impl_->grad_fn; }

void Tensor::backward() const {
  require_defined("backward");
  MN_CHECK(numel() == 1, "backward: called on ", describe(),
           "; backward() without a gradient needs a scalar (pass grad_output otherwise)");
  run_backward(*this, Tensor::ones(shape(), device()));
}

void Tensor::backward(const Tensor& grad_output) const { run_backward(*this, grad_output); }

const std::string& Tensor::name() const {
  require_defined("name");
  return impl_->name;
}

Tensor& Tensor::set_name(const std::string& n) {
  require_defined("set_name");
  impl_->name = n;
  return *this;
}

bool Tensor::same_as(const Tensor& o) const {
  return impl_ && o.impl_ && impl_->storage == o.impl_->storage && impl_->offset == o.impl_->offset &&
         impl_->shape == o.impl_->shape;
}

}  // namespace metanas
