// First-order MAML over weights and alphas (T-NAS) and Auto-MAML (alphas
// shared by all tasks, moved only by the outer step).
#include "metanas/meta/fomaml.h"

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::meta {

Fomaml::Fomaml(const MetaConfig& cfg, std::unique_ptr<nas::Model> meta_model)
    : MetaLearner(cfg, std::move(meta_model), TaskLearnerOptions::for_training(cfg)) {
  MN_CHECK(cfg.algorithm == Algorithm::Fomaml || cfg.algorithm == Algorithm::AutoMaml,
           "Fomaml: the configuration's algorithm is '", algorithm_name(cfg.algorithm), "'");
  MN_CHECK(cfg.algorithm != Algorithm::AutoMaml || model_->alphas(),
           "Fomaml: auto_maml needs a model with architecture parameters (a search network)");
  make_meta_optimizers();
}

MetaStepStats Fomaml::meta_step(const std::vector<data::Episode>& tasks) {
  MN_CHECK(!tasks.empty(), "Fomaml::meta_step: empty meta-batch");
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
  const float inv = 1.f / static_cast<float>(n);
  W.zero_grad();
  if (A) A->zero_grad();

  Tensor q_loss, q_acc, s_loss, s_acc;
  auto acc = [](Tensor& sum, const Tensor& v) {
    if (!v.defined()) return;
    sum = sum.defined() ? add(sum, v) : v;
  };
  nas::Model& tm = task_->model();
  for (const data::Episode& ep : tasks) {
    AdaptResult r = task_->adapt(ep, rng_, warm);
    // First-order meta-gradient: the query-loss gradient at the adapted
    // parameters, taken as the gradient at the meta parameters.
    tm.weights().zero_grad();
    ParamSet* TA = tm.alphas();
    if (TA) TA->zero_grad();
    if (TA && !update_a)
      for (int i = 0; i < TA->size(); ++i) (*TA)[i].set_requires_grad(false);
    QueryResult q;
    try {
      q = task_->evaluate_query(ep, false);
      q.loss.backward();
    } catch (...) {
      if (TA && !update_a)
        for (int i = 0; i < TA->size(); ++i) (*TA)[i].set_requires_grad(true);
      throw;
    }
    if (TA && !update_a)
      for (int i = 0; i < TA->size(); ++i) (*TA)[i].set_requires_grad(true);
    W.grads().add_(tm.weights().grads(), inv);
    if (update_a) A->grads().add_(TA->grads(), inv);
    NoGradGuard ng;
    acc(s_loss, r.last_support_loss);
    acc(s_acc, r.last_support_acc);
    acc(q_loss, q.loss.detach());
    acc(q_acc, q.acc);
  }
  {
    NoGradGuard ng;
    st.query_loss = mul_scalar(q_loss, inv);
    st.query_acc = mul_scalar(q_acc, inv);
    if (s_loss.defined()) st.support_loss = mul_scalar(s_loss, inv), st.support_acc = mul_scalar(s_acc, inv);
  }
  w_opt_->set_lr(st.w_lr);
  w_opt_->step();
  if (update_a) {
    a_opt_->set_lr(st.a_lr);
    a_opt_->step();
  }
  ++iteration_;
  st.iteration = iteration_;
  st.pruned = maybe_prune();
  return st;
}

}  // namespace metanas::meta
