// Optimizers over a whole ParamSet: each step is one fused loop/kernel over
// the flat buffers. Semantics follow PyTorch (torch.optim.SGD / Adam with
// L2 weight_decay added to the gradient). State is saveable, so a resumed run
// continues exactly.
#pragma once
#include <cstdint>
#include <string>

#include "metanas/engine/param_set.h"

namespace metanas {

class Checkpoint;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update from params.grads(). When max_grad_norm > 0 the gradient is
  // scaled by min(1, max_grad_norm / ||g||) first (computed on the device).
  virtual void step() = 0;
  virtual void reset_state() = 0;
  void zero_grad() { params_->zero_grad(); }
  float lr() const { return lr_; }
  void set_lr(float lr) { lr_ = lr; }
  float max_grad_norm = 0.f;
  // Save / load the state under `prefix` ("task_w_opt.") in a checkpoint.
  virtual void save_state(Checkpoint& ck, const std::string& prefix) const = 0;
  virtual void load_state(const Checkpoint& ck, const std::string& prefix) = 0;
  ParamSet& params() { return *params_; }

 protected:
  Optimizer(ParamSet& params, float lr) : params_(&params), lr_(lr) {}
  // Returns a device pointer to the gradient scale (1 when no clipping).
  const float* clip_scale();
  ParamSet* params_;
  float lr_;
  Tensor scratch_;  // [2]: sum of squares, scale
};

class Sgd : public Optimizer {
 public:
  Sgd(ParamSet& params, float lr, float momentum = 0.f, float weight_decay = 0.f);
  void step() override;
  void reset_state() override;
  void save_state(Checkpoint& ck, const std::string& prefix) const override;
  void load_state(const Checkpoint& ck, const std::string& prefix) override;
  float momentum, weight_decay;

 private:
  Tensor buf_;
  bool first_ = true;
};

class Adam : public Optimizer {
 public:
  Adam(ParamSet& params, float lr, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
       float weight_decay = 0.f);
  void step() override;
  void reset_state() override;
  void save_state(Checkpoint& ck, const std::string& prefix) const override;
  void load_state(const Checkpoint& ck, const std::string& prefix) override;
  int64_t steps() const { return t_; }
  // A replayed CUDA graph ran this optimizer's update on the device (its
  // step count and bias corrections included): count the step on the host
  // too (steps(), saved state).
  void count_replayed_step() { ++t_; }
  const Tensor& exp_avg() const { return m_; }
  const Tensor& exp_avg_sq() const { return v_; }
  // The step count on the device (int32[2]: low, high words; equal to
  // steps() between steps) and the bias corrections of the last step
  // (float[2]): a step advances the count and computes 1 - beta^t there
  // (Backend::adam_count), so no per-step host scalar reaches its kernels
  // and a graph of the step replays at any t. Undefined before the first step.
  const Tensor& device_count() const { return count_; }
  const Tensor& device_bias() const { return bias_; }
  float beta1, beta2, eps, weight_decay;

 private:
  // Makes count_ hold steps() on the parameters' device: zeroed for a fresh
  // state, uploaded only when it is (re)made with a count or `upload` (a
  // loaded count), else already right.
  void put_count(bool fresh, bool upload);
  Tensor m_, v_;
  Tensor count_, bias_;
  int64_t t_ = 0;
};

}  // namespace metanas
