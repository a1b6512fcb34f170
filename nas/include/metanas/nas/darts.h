// DARTS task optimizer (as MetaNAS runs it inside each task):
// per step, an architecture step on one batch, then a weight step on another.
//
//   architecture step (skipped in warm-up and for models without alphas):
//     first order (default): g_alpha = dL(for_alpha)/dalpha at the current weights
//     second order: one unrolled weight step w' = w - xi (dL_t/dw + wd_w w) on
//       for_weights (L_t), then
//       g_alpha = dL_v(w', alpha)/dalpha - xi * H,  L_v on for_alpha,
//       H = (dL_t(w+)/dalpha - dL_t(w-)/dalpha) / (2 eps),  w+- = w +- eps dL_v(w')/dw',
//       eps = 0.01 / ||dL_v(w')/dw'||   (the finite-difference Hessian-vector
//       product of DARTS; weights are restored afterwards)
//     Adam (beta1 = 0 by default) with L2 weight decay on alpha.
//   weight step: g_w = dL(for_weights)/dw, clipped to norm w_grad_clip, Adam.
//
// Each phase computes only the gradients it needs (the other parameter set is
// frozen during its backward). The Adam states persist across step() calls
// and across tasks (as in MetaNAS) until reset_state().
#pragma once
#include <memory>
#include <string>

#include "metanas/engine/checkpoint.h"
#include "metanas/engine/optim.h"
#include "metanas/nas/model.h"

namespace metanas::nas {

struct DartsOptions {
  float w_lr = 0.005f;  // MetaNAS Omniglot setting
  float a_lr = 0.005f;
  float w_beta1 = 0.f;  // MetaNAS: Adam betas (0, 0.999) for both
  float w_beta2 = 0.999f;
  float a_beta1 = 0.f;
  float a_beta2 = 0.999f;
  float w_weight_decay = 0.f;
  float a_weight_decay = 1e-3f;
  float w_grad_clip = 1e6f;  // max gradient norm of the weights; 0 = off (MetaNAS default 10e5: none in practice)
  bool second_order = false;
  float unroll_lr = -1.f;   // xi of the unrolled step; < 0: w_lr
  bool warmup = false;      // update weights only

  void validate() const;
  std::string to_json() const;
  static DartsOptions from_json(const std::string& text);
};

// Losses/accuracies of one step as scalar tensors on the model's device
// (read them with .item() when logging; nothing is synchronised here).
// The alpha_* entries are undefined when no architecture step ran.
struct DartsStepResult {
  Tensor alpha_loss, alpha_acc;  // on for_alpha, before the architecture update
  Tensor w_loss, w_acc;          // on for_weights, before the weight update
  bool alpha_updated = false;
};

class DartsTaskOptimizer {
 public:
  // The model must outlive the optimizer and stay on its device.
  DartsTaskOptimizer(Model& model, const DartsOptions& opt);

  DartsStepResult step(const Batch& for_alpha, const Batch& for_weights, const ForwardContext& ctx);

  // The architecture gradient of step() (first or second order, before weight
  // decay) written into model.alphas()->grads(), without updating anything.
  // Returns the loss on for_alpha. For tests and analysis.
  Tensor compute_arch_gradient(const Batch& for_alpha, const Batch& for_weights,
                               const ForwardContext& ctx);

  void set_warmup(bool on) { opt_.warmup = on; }
  const DartsOptions& options() const { return opt_; }
  // Learning rates may change between steps (schedules).
  void set_lrs(float w_lr, float a_lr);

  // Forget the Adam moments and step counts.
  void reset_state();
  // Save / load both Adam states under "<prefix>w_opt." and "<prefix>a_opt.".
  void save_state(Checkpoint& ck, const std::string& prefix) const;
  void load_state(const Checkpoint& ck, const std::string& prefix);

  Adam& w_optimizer() { return *w_opt_; }
  Adam* a_optimizer() { return a_opt_.get(); }

 private:
  Model* model_;
  DartsOptions opt_;
  std::unique_ptr<Adam> w_opt_, a_opt_;
  std::unique_ptr<ParamSet> w_backup_;  // second order: the weights before the unrolled step
};

}  // namespace metanas::nas
