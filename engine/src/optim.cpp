// Sgd and Adam over a ParamSet's flat buffers: each step is one fused backend
// kernel; gradient clipping is computed on the device (no host round trip).
// State layout in checkpoints (docs/formats.md), for a prefix P and parameter p:
//   Adam: P"adam.hparams" f32[6] = lr, beta1, beta2, eps, weight_decay, max_grad_norm
//         P"adam.step" i32[2] = low, high 32 bits of the step count
//         P"adam.exp_avg."p, P"adam.exp_avg_sq."p (shape of p)
//   Sgd:  P"sgd.hparams" f32[4] = lr, momentum, weight_decay, max_grad_norm
//         P"sgd.has_buffer" i32[1]; P"sgd.momentum_buffer."p when it is 1
#include "metanas/engine/extension.h"
#include "metanas/engine/optim.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "metanas/engine/checkpoint.h"
#include "metanas/engine/error.h"

namespace metanas {

namespace {

void require_ready(const char* who, const ParamSet& ps) {
  MN_CHECK(ps.finalized(), who, ": the parameter set is not finalized");
}

// A flat state buffer matching the set: created as zeros, or moved along when
// the set changed device (ParamSet::to).
void ensure_state(Tensor& t, const ParamSet& ps) {
  if (!t.defined() || t.numel() != ps.numel()) {
    t = Tensor::zeros(Shape{ps.numel()}, DType::F32, ps.device());
  } else if (t.device() != ps.device()) {
    t = t.to(ps.device());
  }
}

// View of parameter i's slice of a flat state buffer.
Tensor slice(const Tensor& flat, const ParamSet& ps, int i) {
  return flat.view(ps.offset(i), ps.shape(i));
}

void save_flat(Checkpoint& ck, const std::string& base, const Tensor& flat, const ParamSet& ps) {
  const Tensor host = flat.to(Device::CPU);  // one transfer; put() copies each slice
  for (int i = 0; i < ps.size(); ++i) ck.put(base + ps.name(i), slice(host, ps, i));
}

// Loads every parameter's slice of a state buffer, naming the optimizer and
// the parameter on a mismatch; also rejects state for parameters the set lacks.
void load_flat(const Checkpoint& ck, const std::string& who, const std::string& base, Tensor& flat,
               const ParamSet& ps) {
  Tensor host = Tensor::empty(Shape{ps.numel()}, DType::F32, Device::CPU);
  for (int i = 0; i < ps.size(); ++i) {
    const std::string name = base + ps.name(i);
    MN_CHECK(ck.has(name), who, "::load_state: the checkpoint has no state for parameter '", ps.name(i),
             "' (entry '", name, "'); was it saved for a different parameter set?");
    const Tensor& src = ck.get(name);
    MN_CHECK(src.shape() == ps.shape(i) && src.dtype() == DType::F32, who, "::load_state: entry '", name,
             "' is ", src.describe(), " but parameter '", ps.name(i), "' is ", ps.shape(i).str());
    Tensor dst = slice(host, ps, i);
    dst.copy_(src);
  }
  int stored = 0;
  std::string extra;
  for (const auto& n : ck.names())
    if (n.compare(0, base.size(), base) == 0) {
      ++stored;
      if (extra.empty() && !ps.contains(n.substr(base.size()))) extra = n;
    }
  MN_CHECK(stored == ps.size(), who, "::load_state: the checkpoint has state for ", stored,
           " parameters but the set has ", ps.size(), " (e.g. '", extra, "' has no parameter)");
  ensure_state(flat, ps);
  flat.copy_(host);
}

std::vector<float> load_hparams(const Checkpoint& ck, const std::string& who, const std::string& prefix,
                                const char* kind, const char* other_kind, size_t count) {
  const std::string name = prefix + kind + ".hparams";
  if (!ck.has(name)) {
    MN_CHECK(!ck.has(prefix + other_kind + ".hparams"), who, "::load_state: the state under '", prefix,
             "' was saved by a different optimizer (found '", prefix, other_kind, ".hparams')");
    MN_THROW(who, "::load_state: no optimizer state under prefix '", prefix, "' (missing entry '", name, "')");
  }
  const Tensor& h = ck.get(name);
  MN_CHECK(h.dtype() == DType::F32 && h.shape() == Shape{static_cast<int64_t>(count)}, who,
           "::load_state: entry '", name, "' is ", h.describe(), ", expected float32[", count, "]");
  return h.to_vector();
}

}  // namespace

const float* Optimizer::clip_scale() {
  if (max_grad_norm <= 0.f) return nullptr;  // kernels treat null as scale 1
  const Device dev = params_->device();
  if (!scratch_.defined() || scratch_.device() != dev)
    scratch_ = Tensor::empty(Shape{2}, DType::F32, dev);
  Backend& be = backend(dev);
  be.sum_squares(scratch_.data(), params_->grads().data(), params_->numel());
  be.clip_scale(scratch_.data() + 1, scratch_.data(), max_grad_norm);
  return scratch_.data() + 1;
}

// ---------------------------------------------------------------------- Sgd --

Sgd::Sgd(ParamSet& params, float lr, float momentum_, float weight_decay_)
    : Optimizer(params, lr), momentum(momentum_), weight_decay(weight_decay_) {
  MN_CHECK(lr >= 0.f, "Sgd: learning rate must be >= 0, got ", lr);
  MN_CHECK(momentum_ >= 0.f, "Sgd: momentum must be >= 0, got ", momentum_);
  MN_CHECK(weight_decay_ >= 0.f, "Sgd: weight_decay must be >= 0, got ", weight_decay_);
}

void Sgd::step() {
  require_ready("Sgd::step", *params_);
  ParamSet& ps = *params_;
  if (!ps.numel()) return;
  float* buf = nullptr;
  if (momentum != 0.f) {
    if (!buf_.defined() || buf_.numel() != ps.numel()) first_ = true;
    ensure_state(buf_, ps);
    buf = buf_.data();
  }
  const float* scale = clip_scale();
  backend(ps.device()).sgd_step(ps.values().data(), ps.grads().data(), buf, ps.numel(), lr_, momentum,
                                weight_decay, first_, scale);
  if (buf) first_ = false;
}

void Sgd::reset_state() {
  buf_ = Tensor();
  first_ = true;
}

void Sgd::save_state(Checkpoint& ck, const std::string& prefix) const {
  require_ready("Sgd::save_state", *params_);
  ck.put(prefix + "sgd.hparams", Tensor::from_vector({lr_, momentum, weight_decay, max_grad_norm}, Shape{4}));
  const bool has = buf_.defined() && !first_ && buf_.numel() == params_->numel();
  ck.put(prefix + "sgd.has_buffer", Tensor::from_ints({has ? 1 : 0}, Shape{1}));
  if (has) save_flat(ck, prefix + "sgd.momentum_buffer.", buf_, *params_);
}

void Sgd::load_state(const Checkpoint& ck, const std::string& prefix) {
  require_ready("Sgd::load_state", *params_);
  const auto h = load_hparams(ck, "Sgd", prefix, "sgd", "adam", 4);
  const std::string flag = prefix + "sgd.has_buffer";
  MN_CHECK(ck.has(flag), "Sgd::load_state: missing entry '", flag, "'");
  const bool has = ck.get(flag).dtype() == DType::I32 && ck.get(flag).numel() == 1 &&
                   ck.get(flag).to_int_vector()[0] == 1;
  // Validate and stage everything before touching this optimizer.
  Tensor buf;
  if (has) load_flat(ck, "Sgd", prefix + "sgd.momentum_buffer.", buf, *params_);
  lr_ = h[0];
  momentum = h[1];
  weight_decay = h[2];
  max_grad_norm = h[3];
  buf_ = buf;
  first_ = !has;
}

// --------------------------------------------------------------------- Adam --

Adam::Adam(ParamSet& params, float lr, float beta1_, float beta2_, float eps_, float weight_decay_)
    : Optimizer(params, lr), beta1(beta1_), beta2(beta2_), eps(eps_), weight_decay(weight_decay_) {
  MN_CHECK(lr >= 0.f, "Adam: learning rate must be >= 0, got ", lr);
  MN_CHECK(beta1_ >= 0.f && beta1_ < 1.f, "Adam: beta1 must be in [0, 1), got ", beta1_);
  MN_CHECK(beta2_ >= 0.f && beta2_ < 1.f, "Adam: beta2 must be in [0, 1), got ", beta2_);
  MN_CHECK(eps_ >= 0.f, "Adam: eps must be >= 0, got ", eps_);
  MN_CHECK(weight_decay_ >= 0.f, "Adam: weight_decay must be >= 0, got ", weight_decay_);
}

void Adam::step() {
  require_ready("Adam::step", *params_);
  ParamSet& ps = *params_;
  if (!ps.numel()) return;
  const bool fresh = !m_.defined() || m_.numel() != ps.numel();  // fresh state (or a re-laid-out set)
  if (fresh) t_ = 0;
  ensure_state(m_, ps);
  ensure_state(v_, ps);
  put_count(fresh, false);
  ++t_;
  // The count and the bias corrections (in double: pow(0.999, t) in float
  // drifts for large t) advance on the device, then the update reads them.
  const float* scale = clip_scale();
  Backend& be = backend(ps.device());
  be.adam_count(count_.data_i32(), beta1, beta2, bias_.data());
  be.adam_step_biased(ps.values().data(), ps.grads().data(), m_.data(), v_.data(), ps.numel(), lr_, beta1, beta2,
                      eps, weight_decay, bias_.data(), scale);
}

void Adam::put_count(bool fresh, bool upload) {
  const Device dev = params_->device();
  if (!count_.defined() || count_.device() != dev) {
    count_ = Tensor::zeros(Shape{2}, DType::I32, dev);
    bias_ = Tensor::zeros(Shape{2}, DType::F32, dev);
    if (t_ == 0) return;
  } else if (fresh) {
    count_.zero_();  // t_ is 0: a memset, not an upload (a fresh state is never captured)
    return;
  } else if (!upload) {
    return;  // count_ already holds t_ (every step and replay advances both)
  }
  const uint64_t t = static_cast<uint64_t>(t_);
  count_.copy_(Tensor::from_ints({static_cast<int32_t>(static_cast<uint32_t>(t & 0xffffffffu)),
                                  static_cast<int32_t>(static_cast<uint32_t>(t >> 32))},
                                 Shape{2}));
}

void Adam::reset_state() {
  m_ = Tensor();
  v_ = Tensor();
  t_ = 0;  // count_ is kept (its address too) and zeroed by the next step
}

void Adam::save_state(Checkpoint& ck, const std::string& prefix) const {
  require_ready("Adam::save_state", *params_);
  ck.put(prefix + "adam.hparams",
         Tensor::from_vector({lr_, beta1, beta2, eps, weight_decay, max_grad_norm}, Shape{6}));
  const uint64_t t = static_cast<uint64_t>(t_);
  ck.put(prefix + "adam.step", Tensor::from_ints({static_cast<int32_t>(static_cast<uint32_t>(t & 0xffffffffu)),
                                                  static_cast<int32_t>(static_cast<uint32_t>(t >> 32))},
                                                 Shape{2}));
  // Before the first step the moments are zeros (what step() would create).
  const bool live = m_.defined() && m_.numel() == params_->numel();
  const Tensor zeros = live ? Tensor() : Tensor::zeros(Shape{params_->numel()});
  save_flat(ck, prefix + "adam.exp_avg.", live ? m_ : zeros, *params_);
  save_flat(ck, prefix + "adam.exp_avg_sq.", live ? v_ : zeros, *params_);
}

void Adam::load_state(const Checkpoint& ck, const std::string& prefix) {
  require_ready("Adam::load_state", *params_);
  const auto h = load_hparams(ck, "Adam", prefix, "adam", "sgd", 6);
  const std::string sname = prefix + "adam.step";
  MN_CHECK(ck.has(sname), "Adam::load_state: missing entry '", sname, "'");
  const Tensor& st = ck.get(sname);
  MN_CHECK(st.dtype() == DType::I32 && st.shape() == Shape{2}, "Adam::load_state: entry '", sname, "' is ",
           st.describe(), ", expected int32[2]");
  const auto sv = st.to_int_vector();
  const uint64_t t = static_cast<uint64_t>(static_cast<uint32_t>(sv[0])) |
                     static_cast<uint64_t>(static_cast<uint32_t>(sv[1])) << 32;
  MN_CHECK(t <= static_cast<uint64_t>(INT64_MAX), "Adam::load_state: invalid step count in '", sname, "'");
  // Validate and stage everything before touching this optimizer.
  Tensor m, v;
  load_flat(ck, "Adam", prefix + "adam.exp_avg.", m, *params_);
  load_flat(ck, "Adam", prefix + "adam.exp_avg_sq.", v, *params_);
  lr_ = h[0];
  beta1 = h[1];
  beta2 = h[2];
  eps = h[3];
  weight_decay = h[4];
  max_grad_norm = h[5];
  // Into the live buffers when they fit: their addresses stay (CUDA graphs
  // of the inner steps bake them in).
  if (m_.defined() && v_.defined() && m_.numel() == m.numel() && v_.numel() == v.numel() &&
      m_.device() == m.device() && v_.device() == v.device()) {
    m_.copy_(m);
    v_.copy_(v);
  } else {
    m_ = m;
    v_ = v;
  }
  t_ = static_cast<int64_t>(t);
  put_count(false, true);  // into the live count (graphs bake its address in)
}

}  // namespace metanas
