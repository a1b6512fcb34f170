// MAML++ meta-gradient of one task (LSLR, multi-step loss, first or second
// order by finite-difference Hessian-vector products). See mamlpp.h.
#include "metanas/meta/mamlpp.h"

#include <algorithm>
#include <cmath>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::meta {

std::vector<double> msl_importance(int steps, int msl_epochs, int64_t epoch) {
  MN_CHECK(steps >= 1 && msl_epochs >= 1, "msl_importance: need steps >= 1 and msl_epochs >= 1 (got ", steps, ", ",
           msl_epochs, ")");
  const double n = steps, e = static_cast<double>(epoch);
  std::vector<double> v(steps, 1.0 / n);
  const double decay = 1.0 / n / msl_epochs;
  const double floor = 0.03 / n;
  for (int i = 0; i + 1 < steps; ++i) v[i] = std::max(v[i] - e * decay, floor);
  v[steps - 1] = std::min(v[steps - 1] + e * (n - 1) * decay, 1.0 - (n - 1) * floor);
  return v;
}

std::vector<double> step_loss_weights(const MamlppSection& p, int steps, int64_t epoch) {
  if (p.msl && epoch < p.msl_epochs) return msl_importance(steps, p.msl_epochs, epoch);
  std::vector<double> v(steps, 0.0);
  v[steps - 1] = 1.0;
  return v;
}

bool second_order_at(const MamlppSection& p, int64_t epoch) { return p.second_order && epoch > p.first_order_epoch; }

MamlppGradient::MamlppGradient(const MetaConfig& cfg, nas::Model& meta, TaskLearner& task)
    : p_(cfg.mamlpp), meta_(meta), task_(task) {
  MN_CHECK(task_.inner_lrs(), "MamlppGradient: the inner loop has no per-step rates (lslr_values = 0)");
  MN_CHECK(!task_.darts(), "MamlppGradient: the inner loop must use the Sgd optimizer");
  ParamSet& R = task_.inner_lrs()->params();
  const MetaSection& m = cfg.meta;
  if (m.optimizer == MetaOptimizer::Adam)
    opt_ = std::make_unique<Adam>(R, m.w_lr, m.adam_beta1, m.adam_beta2, m.adam_eps, 0.f);
  else
    opt_ = std::make_unique<Sgd>(R, m.w_lr);
}

void MamlppGradient::zero_rate_grads() { task_.inner_lrs()->params().zero_grad(); }

void MamlppGradient::step_rates(float lr) {
  if (!p_.lslr) return;
  InnerLrs& L = *task_.inner_lrs();
  clamp_grads(L.params(), p_.meta_grad_clamp);
  opt_->set_lr(lr);
  opt_->step();
  L.changed();
}

void clamp_grads(ParamSet& ps, float c) {
  if (c <= 0.f || ps.numel() == 0) return;
  NoGradGuard ng;
  Tensor clamped = clamp(ps.grads(), -c, c);
  ps.grads().copy_(clamped);
}

void MamlppGradient::after_gradient(int s, const nas::Batch& batch, const nas::ForwardContext& ctx, bool alphas) {
  nas::Model& tm = task_.model();
  Step& st = steps_.at(s);
  st.pw = tm.weights().values().clone();
  st.gw = tm.weights().grads().clone();
  if (with_alphas_) {
    ParamSet& A = *tm.alphas();
    st.pa = A.values().clone();
    st.ga = alphas ? A.grads().clone() : Tensor::zeros(Shape{A.numel()}, DType::F32, A.device());
  }
  st.batch = batch;
  st.ctx = ctx;
  st.alphas = alphas;
}

void MamlppGradient::after_update(int s) {
  const bool last = s + 1 == static_cast<int>(steps_.size());
  if (v_.at(s) <= 0.0 && !last) return;
  nas::Model& tm = task_.model();
  ParamSet& W = tm.weights();
  ParamSet* A = tm.alphas();
  // The query loss at P_{s+1}, with step s's context (its BN row) and no
  // drop-path, as the query evaluation after the last step.
  nas::ForwardContext ctx = steps_[s].ctx;
  ctx.drop_path_prob = 0.f;
  ctx.training = false;
  W.zero_grad();
  if (with_alphas_) A->zero_grad();
  nas::FreezeParams fa(with_alphas_ ? nullptr : A);
  Tensor logits = tm.forward(ep_->query_x, ctx);
  Tensor loss = cross_entropy(logits, ep_->query_y);
  if (last) {
    last_loss_ = loss.detach();
    last_acc_ = accuracy(logits.detach(), ep_->query_y);
  }
  if (v_[s] <= 0.0) return;
  loss.backward();
  Step& st = steps_[s];
  const float v = static_cast<float>(v_[s]);
  st.qw = W.grads().clone().mul_(v);
  if (with_alphas_) st.qa = A->grads().clone().mul_(v);
}

void MamlppGradient::hvp(const Step& st, const Tensor& dw, const Tensor& da, Tensor& hw, Tensor& ha) {
  nas::Model& tm = task_.model();
  ParamSet& W = tm.weights();
  ParamSet* A = tm.alphas();
  double n2 = sum_squares(dw).item();
  if (with_alphas_) n2 += sum_squares(da).item();
  if (n2 == 0.0) {
    hw = Tensor::zeros(dw.shape(), DType::F32, dw.device());
    if (with_alphas_) ha = Tensor::zeros(da.shape(), DType::F32, da.device());
    return;
  }
  const float e = static_cast<float>(p_.fd_eps / std::sqrt(n2));
  auto grad_at = [&](float sign, Tensor& gw, Tensor& ga) {
    W.values().copy_(st.pw);
    W.values().add_(dw, sign * e);
    if (with_alphas_) {
      A->values().copy_(st.pa);
      A->values().add_(da, sign * e);
      A->zero_grad();
    }
    W.zero_grad();
    {
      nas::FreezeParams fa(with_alphas_ ? nullptr : A);
      tm.loss_backward(st.batch, st.ctx);
    }
    gw = W.grads().clone();
    if (with_alphas_) ga = A->grads().clone();
  };
  Tensor gpw, gpa, gmw, gma;
  grad_at(1.f, gpw, gpa);
  grad_at(-1.f, gmw, gma);
  const float inv = 1.f / (2.f * e);
  hw = gpw.add_(gmw, -1.f).mul_(inv);
  if (with_alphas_) ha = gpa.add_(gma, -1.f).mul_(inv);
}

MamlppGradient::TaskResult MamlppGradient::accumulate(const data::Episode& ep, Rng& rng, bool warmup,
                                                      bool update_alphas, int64_t epoch, float scale) {
  const TaskLearnerOptions& o = task_.options();
  const int N = o.arch_steps + o.weight_steps;
  nas::Model& tm = task_.model();
  with_alphas_ = tm.alphas() != nullptr && !warmup;
  MN_CHECK(!update_alphas || with_alphas_, "MamlppGradient: alphas cannot be updated in warm-up");
  v_ = step_loss_weights(p_, N, epoch);
  const bool second = second_order_at(p_, epoch);
  steps_.assign(N, Step{});
  ep_ = &ep;
  last_loss_ = last_acc_ = Tensor();
  TaskResult res;
  task_.set_observer(this);
  try {
    res.adapt = task_.adapt(ep, rng, warmup);
  } catch (...) {
    task_.set_observer(nullptr);
    throw;
  }
  task_.set_observer(nullptr);
  res.query_loss = last_loss_;
  res.query_acc = last_acc_;

  // Backward through the inner loop.
  InnerLrs& L = *task_.inner_lrs();
  ParamSet& R = L.params();
  ParamSet& W = tm.weights();
  ParamSet* A = tm.alphas();
  Tensor uw = Tensor::zeros(Shape{W.numel()}, DType::F32, W.device());
  Tensor ua = with_alphas_ ? Tensor::zeros(Shape{A->numel()}, DType::F32, A->device()) : Tensor();
  auto view = [](const Tensor& flat, const ParamSet& ps, int i) { return flat.view(ps.offset(i), ps.shape(i)); };
  for (int s = N - 1; s >= 0; --s) {
    const Step& st = steps_[s];
    if (st.qw.defined()) {
      uw.add_(st.qw);
      if (with_alphas_) ua.add_(st.qa);
    }
    // u = u_{s+1}: the rates' gradients.
    const int col = std::min(s, L.values() - 1);
    for (int i = 0; i < W.size(); ++i)
      if (const int j = L.of_weight(i); j >= 0)
        R.grads().view(R.offset(j) + col, Shape{}).add_(sum(mul(view(st.gw, W, i), view(uw, W, i))), -scale);
    if (st.alphas)
      for (int i = 0; i < A->size(); ++i)
        R.grads().view(R.offset(L.of_alpha(i)) + col, Shape{}).add_(sum(mul(view(st.ga, *A, i), view(ua, *A, i))), -scale);
    if (!second) continue;
    // u_s = u_{s+1} - H_s Lambda_s u_{s+1}.
    Tensor dw = Tensor::zeros(uw.shape(), DType::F32, uw.device());
    for (int i = 0; i < W.size(); ++i)
      if (const int j = L.of_weight(i); j >= 0) view(dw, W, i).add_(view(uw, W, i), L.rate(j, s));
    Tensor da;
    if (with_alphas_) {
      da = Tensor::zeros(ua.shape(), DType::F32, ua.device());
      if (st.alphas)
        for (int i = 0; i < A->size(); ++i) view(da, *A, i).add_(view(ua, *A, i), L.rate(L.of_alpha(i), s));
    }
    Tensor hw, ha;
    hvp(st, dw, da, hw, ha);
    uw.add_(hw, -1.f);
    if (with_alphas_) ua.add_(ha, -1.f);
  }
  meta_.weights().grads().add_(uw, scale);
  if (update_alphas) meta_.alphas()->grads().add_(ua, scale);
  ep_ = nullptr;
  return res;
}

}  // namespace metanas::meta
