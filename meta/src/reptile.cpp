// Reptile (MetaNAS): adapt each task with the DARTS task optimizer, then move
// the meta parameters towards the mean adapted parameters.
#include "metanas/meta/reptile.h"

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::meta {

Reptile::Reptile(const MetaConfig& cfg, std::unique_ptr<nas::Model> meta_model)
    : MetaLearner(cfg, std::move(meta_model), TaskLearnerOptions::for_training(cfg)) {
  make_meta_optimizers();
  w_sum_ = model_->weights().clone();
  if (const ParamSet* A = model_->alphas()) a_sum_ = A->clone();
}

MetaStepStats Reptile::meta_step(const std::vector<data::Episode>& tasks) {
  MN_CHECK(!tasks.empty(), "Reptile::meta_step: empty meta-batch");
  const int n = static_cast<int>(tasks.size());
  const bool warm = in_warmup();
  MetaStepStats st;
  st.warmup = warm;
  st.w_lr = next_w_lr();
  st.a_lr = warm ? 0.f : next_a_lr();
  st.tasks = n;

  ParamSet& W = model_->weights();
  ParamSet* A = model_->alphas();
  const bool update_a = A && !warm;
  w_sum_.values().zero_();
  if (update_a) a_sum_.values().zero_();

  Tensor q_loss, q_acc, s_loss, s_acc;
  auto acc = [](Tensor& sum, const Tensor& v) {
    if (!v.defined()) return;
    sum = sum.defined() ? add(sum, v) : v;
  };
  for (const data::Episode& ep : tasks) {
    AdaptResult r = task_->adapt(ep, rng_, warm);
    w_sum_.axpy_(task_->model().weights(), 1.f);
    if (update_a) a_sum_.axpy_(*task_->model().alphas(), 1.f);
    NoGradGuard ng;
    acc(s_loss, r.last_support_loss);
    acc(s_acc, r.last_support_acc);
    if (cfg_.meta.query_eval) {
      QueryResult q = task_->evaluate_query(ep, false);
      acc(q_loss, q.loss);
      acc(q_acc, q.acc);
    }
  }
  {
    NoGradGuard ng;
    const float inv = 1.f / static_cast<float>(n);
    if (q_loss.defined()) st.query_loss = mul_scalar(q_loss, inv), st.query_acc = mul_scalar(q_acc, inv);
    if (s_loss.defined()) st.support_loss = mul_scalar(s_loss, inv), st.support_acc = mul_scalar(s_acc, inv);
  }

  // Meta-gradient g = Phi - mean_i Phi_i = -mean_i (Phi_i - Phi).
  const float inv = 1.f / static_cast<float>(n);
  W.grads().copy_(W.values());
  W.grads().add_(w_sum_.values(), -inv);
  w_opt_->set_lr(st.w_lr);
  w_opt_->step();
  if (update_a) {
    A->grads().copy_(A->values());
    A->grads().add_(a_sum_.values(), -inv);
    a_opt_->set_lr(st.a_lr);
    a_opt_->step();
  }
  ++iteration_;
  st.iteration = iteration_;
  st.pruned = maybe_prune();
  return st;
}

}  // namespace metanas::meta
