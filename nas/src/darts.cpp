// DARTS task optimizer: alternating architecture / weight Adam steps, first
// order or with DARTS's unrolled second-order architecture gradient.
#include "metanas/nas/darts.h"

#include <cmath>

#include "json_fields.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::nas {

// ---- options ----

void DartsOptions::validate() const {
  const char* w = "DartsOptions";
  MN_CHECK(w_lr >= 0.f && a_lr >= 0.f, w, ": learning rates must be >= 0 (w_lr ", w_lr, ", a_lr ", a_lr, ")");
  for (float b : {w_beta1, w_beta2, a_beta1, a_beta2})
    MN_CHECK(b >= 0.f && b < 1.f, w, ": Adam betas must be in [0, 1), got ", b);
  MN_CHECK(w_weight_decay >= 0.f && a_weight_decay >= 0.f, w, ": weight decays must be >= 0");
  MN_CHECK(w_grad_clip >= 0.f, w, ": w_grad_clip must be >= 0 (0 = off), got ", w_grad_clip);
}

namespace {

// DartsOptions' JSON fields, listed once (see json_fields.h).
struct DartsFields {
  template <typename O, typename F>
  void operator()(O& o, F&& f) const {
    f("w_lr", o.w_lr);
    f("a_lr", o.a_lr);
    f("w_beta1", o.w_beta1);
    f("w_beta2", o.w_beta2);
    f("a_beta1", o.a_beta1);
    f("a_beta2", o.a_beta2);
    f("w_weight_decay", o.w_weight_decay);
    f("a_weight_decay", o.a_weight_decay);
    f("w_grad_clip", o.w_grad_clip);
    f("second_order", o.second_order);
    f("unroll_lr", o.unroll_lr);
    f("warmup", o.warmup);
  }
};

}  // namespace

std::string DartsOptions::to_json() const { return detail::fields_to_json(*this, DartsFields{}); }

DartsOptions DartsOptions::from_json(const std::string& text) {
  return detail::fields_from_json<DartsOptions>(text, "DartsOptions", DartsFields{});
}

// ---- optimizer ----

namespace {

// ctx with the drop-path key moved to forward pass `pass` of the step, so
// every forward of an inner step draws its own masks.
ForwardContext pass_ctx(const ForwardContext& ctx, uint32_t pass) {
  ForwardContext c = ctx;
  if (c.drop_key) c.drop_key->op += pass * kDropPassStride;
  return c;
}

void check_batch(const Batch& b, const char* what) {
  MN_CHECK(b.x.defined() && b.y.defined(), "DartsTaskOptimizer: the ", what, " batch has an undefined x or y");
}

}  // namespace

DartsTaskOptimizer::DartsTaskOptimizer(Model& model, const DartsOptions& opt) : model_(&model), opt_(opt) {
  opt.validate();
  w_opt_ = std::make_unique<Adam>(model.weights(), opt.w_lr, opt.w_beta1, opt.w_beta2, 1e-8f,
                                  opt.w_weight_decay);
  w_opt_->max_grad_norm = opt.w_grad_clip;
  if (ParamSet* a = model.alphas())
    a_opt_ = std::make_unique<Adam>(*a, opt.a_lr, opt.a_beta1, opt.a_beta2, 1e-8f, opt.a_weight_decay);
}

void DartsTaskOptimizer::set_lrs(float w_lr, float a_lr) {
  MN_CHECK(w_lr >= 0.f && a_lr >= 0.f, "DartsTaskOptimizer::set_lrs: negative learning rate");
  opt_.w_lr = w_lr;
  opt_.a_lr = a_lr;
  w_opt_->set_lr(w_lr);
  if (a_opt_) a_opt_->set_lr(a_lr);
}

void DartsTaskOptimizer::reset_state() {
  w_opt_->reset_state();
  if (a_opt_) a_opt_->reset_state();
}

void DartsTaskOptimizer::save_state(Checkpoint& ck, const std::string& prefix) const {
  w_opt_->save_state(ck, prefix + "w_opt.");
  if (a_opt_) a_opt_->save_state(ck, prefix + "a_opt.");
}

void DartsTaskOptimizer::load_state(const Checkpoint& ck, const std::string& prefix) {
  w_opt_->load_state(ck, prefix + "w_opt.");
  if (a_opt_) a_opt_->load_state(ck, prefix + "a_opt.");
}

Tensor DartsTaskOptimizer::compute_arch_gradient(const Batch& for_alpha, const Batch& for_weights,
                                                 const ForwardContext& ctx) {
  ParamSet* A = model_->alphas();
  MN_CHECK(A, "DartsTaskOptimizer: a ", model_->kind(), " model has no architecture parameters");
  check_batch(for_alpha, "architecture");
  ParamSet& W = model_->weights();

  if (!opt_.second_order) {
    A->zero_grad();
    FreezeParams fw(&W);
    Tensor loss = model_->loss(for_alpha, ctx);
    loss.backward();
    return loss.detach();
  }

  check_batch(for_weights, "weight");
  const float xi = opt_.unroll_lr < 0.f ? w_opt_->lr() : opt_.unroll_lr;
  if (!w_backup_ || !w_backup_->same_layout(W) || w_backup_->device() != W.device())
    w_backup_ = std::make_unique<ParamSet>(W.clone());
  w_backup_->copy_from(W);

  // Unrolled step: w' = w - xi (dL_t/dw + wd w).
  W.zero_grad();
  {
    FreezeParams fa(A);
    model_->loss(for_weights, pass_ctx(ctx, 2)).backward();
  }
  if (opt_.w_weight_decay != 0.f) W.grads().add_(W.values(), opt_.w_weight_decay);
  W.values().add_(W.grads(), -xi);

  // dL_v(w', alpha)/dalpha and dL_v(w', alpha)/dw'.
  W.zero_grad();
  A->zero_grad();
  Tensor loss_v = model_->loss(for_alpha, pass_ctx(ctx, 3));
  loss_v.backward();
  Tensor dalpha = A->grads().clone();
  Tensor dw = W.grads().clone();
  const float norm = W.grad_norm();

  if (norm > 0.f && std::isfinite(norm)) {
    // Hessian-vector product d2L_t/(dalpha dw) . dw by central differences.
    const float eps = 0.01f / norm;
    auto grad_alpha_at = [&](float shift) {
      W.values().copy_(w_backup_->values());
      W.values().add_(dw, shift);
      A->zero_grad();
      FreezeParams fw(&W);
      model_->loss(for_weights, pass_ctx(ctx, shift > 0.f ? 4 : 5)).backward();
      return A->grads().clone();
    };
    Tensor gp = grad_alpha_at(eps);
    Tensor gn = grad_alpha_at(-eps);
    A->grads().copy_(dalpha);
    A->grads().add_(gp, -xi / (2.f * eps));
    A->grads().add_(gn, xi / (2.f * eps));
  } else {
    A->grads().copy_(dalpha);
  }
  W.values().copy_(w_backup_->values());
  W.zero_grad();
  return loss_v.detach();
}

DartsStepResult DartsTaskOptimizer::step(const Batch& for_alpha, const Batch& for_weights,
                                         const ForwardContext& ctx) {
  check_batch(for_weights, "weight");
  DartsStepResult r;
  ParamSet* A = model_->alphas();
  if (!opt_.warmup && a_opt_) {
    if (opt_.second_order) {
      r.alpha_loss = compute_arch_gradient(for_alpha, for_weights, ctx);
    } else {
      // First order, inlined to get the accuracy from the same forward.
      check_batch(for_alpha, "architecture");
      A->zero_grad();
      FreezeParams fw(&model_->weights());
      const LossAcc la = model_->loss_backward(for_alpha, ctx);
      r.alpha_loss = la.loss;
      r.alpha_acc = la.acc;
    }
    a_opt_->step();
    r.alpha_updated = true;
  }

  ParamSet& W = model_->weights();
  W.zero_grad();
  {
    FreezeParams fa(A);
    const LossAcc lw = model_->loss_backward(for_weights, pass_ctx(ctx, 1));
    r.w_loss = lw.loss;
    r.w_acc = lw.acc;
  }
  w_opt_->step();
  return r;
}

}  // namespace metanas::nas
