// ParamSet: named parameter views over one flat value buffer and one flat
// gradient buffer; whole-set operations are single backend calls on the buffers.
#include "metanas/engine/extension.h"
#include "metanas/engine/param_set.h"

#include <algorithm>
#include <cmath>

#include "metanas/engine/error.h"

namespace metanas {

namespace {

// Throws naming the first parameter where two layouts differ (op names the caller).
void check_layout(const char* op, const ParamSet& a, const ParamSet& b) {
  MN_CHECK(a.finalized() && b.finalized(), "ParamSet::", op, ": both sets must be finalized (",
           a.finalized() ? "the argument" : "this set", " is not)");
  const int n = std::min(a.size(), b.size());
  for (int i = 0; i < n; ++i) {
    if (a.name(i) != b.name(i) || a.shape(i) != b.shape(i))
      MN_THROW("ParamSet::", op, ": layouts differ at parameter ", i, ": '", a.name(i), "' ",
               a.shape(i).str(), " in this set vs '", b.name(i), "' ", b.shape(i).str(),
               " in the other");
  }
  if (a.size() != b.size()) {
    const ParamSet& longer = a.size() > b.size() ? a : b;
    MN_THROW("ParamSet::", op, ": layouts differ: this set has ", a.size(), " parameters, the other ",
             b.size(), "; first unmatched parameter is '", longer.name(n), "' ", longer.shape(n).str(),
             " in ", a.size() > b.size() ? "this set" : "the other");
  }
}

void check_same_device(const char* op, const ParamSet& a, const ParamSet& b) {
  MN_CHECK(a.device() == b.device(), "ParamSet::", op, ": sets on different devices (",
           device_name(a.device()), " and ", device_name(b.device()), ")");
}

// L2 norm of a flat buffer, reduced on its device; only the scalar comes back.
float l2(const Tensor& flat) {
  if (flat.numel() == 0) return 0.f;
  Tensor out = Tensor::empty(Shape{1}, DType::F32, flat.device());
  backend(flat.device()).sum_squares(out.data(), flat.data(), flat.numel());
  return std::sqrt(out.item());
}

}  // namespace

void ParamSet::require_finalized(const char* what) const {
  MN_CHECK(finalized_, "ParamSet::", what, ": the set is not finalized yet (call finalize() after add())");
}

int ParamSet::add(const std::string& name, const Shape& shape) {
  MN_CHECK(!finalized_, "ParamSet::add('", name, "'): the set is already finalized (", size(),
           " parameters); declare every parameter before finalize()");
  MN_CHECK(!name.empty(), "ParamSet::add: empty parameter name");
  if (auto it = index_.find(name); it != index_.end())
    MN_THROW("ParamSet::add: duplicate parameter name '", name, "' (already parameter ", it->second,
             " with shape ", shapes_[it->second].str(), ")");
  for (int64_t d : shape.dims())
    MN_CHECK(d >= 0, "ParamSet::add('", name, "'): negative dimension in shape ", shape.str());
  const int idx = size();
  names_.push_back(name);
  shapes_.push_back(shape);
  offsets_.push_back(numel_);
  index_[name] = idx;
  numel_ += shape.numel();
  return idx;
}

void ParamSet::finalize() {
  MN_CHECK(!finalized_, "ParamSet::finalize: already finalized");
  values_ = Tensor::zeros(Shape{numel_}, DType::F32, device_);
  grads_ = Tensor::zeros(Shape{numel_}, DType::F32, device_);
  finalized_ = true;
  views_.clear();
  views_.reserve(names_.size());
  for (int i = 0; i < size(); ++i) {
    Tensor v = values_.view(offsets_[i], shapes_[i]);
    v.set_requires_grad(true);
    v.set_name(names_[i]);
    // backward() accumulates into an existing grad with +=, so gradients land
    // directly in the flat buffer that the optimizers read.
    v.set_grad(grads_.view(offsets_[i], shapes_[i]));
    views_.push_back(v);
  }
}

Tensor& ParamSet::operator[](int i) {
  require_finalized("operator[]");
  MN_CHECK(i >= 0 && i < size(), "ParamSet: index ", i, " out of range (", size(), " parameters)");
  return views_[i];
}

const Tensor& ParamSet::operator[](int i) const { return const_cast<ParamSet&>(*this)[i]; }

int ParamSet::index_of(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    std::string some;
    for (int i = 0; i < size() && i < 8; ++i) some += (i ? ", '" : "'") + names_[i] + "'";
    if (size() > 8) some += ", ...";
    MN_THROW("ParamSet: no parameter named '", name, "' (the set has ", size(), " parameters",
             size() ? ": " : "", some, ")");
  }
  return it->second;
}

bool ParamSet::contains(const std::string& name) const { return index_.count(name) != 0; }

Tensor& ParamSet::get(const std::string& name) {
  const int i = index_of(name);
  require_finalized("get");
  return views_[i];
}

void ParamSet::zero_grad() {
  require_finalized("zero_grad");
  if (numel_) backend(device_).memset_zero(grads_.data(), grads_.nbytes());
}

void ParamSet::copy_from(const ParamSet& other) {
  check_layout("copy_from", *this, other);
  if (&other == this) return;
  values_.copy_(other.values_);  // one copy (host <-> device when devices differ)
}

void ParamSet::lerp_(const ParamSet& target, float t) {
  check_layout("lerp_", *this, target);
  check_same_device("lerp_", *this, target);
  // this = t * target + (1 - t) * this
  if (numel_) backend(device_).axpby(values_.data(), target.values_.data(), t, 1.f - t, numel_);
}

void ParamSet::axpy_(const ParamSet& x, float a) {
  check_layout("axpy_", *this, x);
  check_same_device("axpy_", *this, x);
  if (numel_) backend(device_).axpby(values_.data(), x.values_.data(), a, 1.f, numel_);
}

void ParamSet::scale_(float s) {
  require_finalized("scale_");
  if (numel_) backend(device_).affine(values_.data(), values_.data(), s, 0.f, numel_);
}

// Values are copied; gradients start at zero (a fresh set for a task copy).
ParamSet ParamSet::clone() const {
  ParamSet out(device_);
  for (int i = 0; i < size(); ++i) out.add(names_[i], shapes_[i]);
  if (finalized_) {
    out.finalize();
    out.values_.copy_(values_);
  }
  return out;
}

bool ParamSet::same_layout(const ParamSet& o) const { return names_ == o.names_ && shapes_ == o.shapes_; }

float ParamSet::norm() const {
  require_finalized("norm");
  return l2(values_);
}

float ParamSet::grad_norm() const {
  require_finalized("grad_norm");
  return l2(grads_);
}

void ParamSet::to(Device device) {
  if (device == device_) return;
  if (!finalized_) {
    device_ = device;
    return;
  }
  Tensor v = values_.to(device), g = grads_.to(device);
  device_ = device;
  finalized_ = false;
  finalize();  // rebuilds the views on fresh zeroed buffers...
  values_.copy_(v);  // ...which then receive the moved contents
  grads_.copy_(g);
}

}  // namespace metanas
