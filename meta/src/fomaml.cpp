// First-order MAML over weights and alphas (T-NAS) and Auto-MAML (alphas
// shared by all tasks, moved only by the outer step).
#include "metanas/meta/fomaml.h"

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"

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
  MN_CHECK(!wants_search_tasks(), "Fomaml::meta_step: meta.auto_maml_split is '",
           auto_maml_split_name(cfg_.meta.auto_maml_split),
           "': call meta_step_split with tasks from the held part of meta-train");
  MetaStepStats st = begin_step(tasks, "Fomaml::meta_step");
  ParamSet& W = model_->weights();
  ParamSet* A = model_->alphas();
  const bool update_a = A && !st.warmup;
  const float inv = 1.f / static_cast<float>(st.tasks);
  W.zero_grad();
  if (A) A->zero_grad();

  StepSums sums;
  nas::Model& tm = task_->model();
  for (const data::Episode& ep : tasks) {
    AdaptResult r = task_->adapt(ep, rng_, st.warmup);
    // First-order meta-gradient: the query-loss gradient at the adapted
    // parameters, taken as the gradient at the meta parameters.
    tm.weights().zero_grad();
    ParamSet* TA = tm.alphas();
    if (TA) TA->zero_grad();
    QueryResult q;
    {
      nas::FreezeParams fa(update_a ? nullptr : TA);
      q = task_->evaluate_query(ep, false);
      q.loss.backward();
    }
    W.grads().add_(tm.weights().grads(), inv);
    if (update_a) A->grads().add_(TA->grads(), inv);
    NoGradGuard ng;
    sums.add_support(r);
    sums.add_query(q.loss.detach(), q.acc);
  }
  sums.mean_into(st);
  finish_step(st, update_a);
  return st;
}

MetaStepStats Fomaml::meta_step_split(const std::vector<data::Episode>& tasks,
                                      const std::vector<data::Episode>& search_tasks) {
  MN_CHECK(cfg_.algorithm == Algorithm::AutoMaml && wants_search_tasks(),
           "Fomaml::meta_step_split: needs auto_maml with meta.auto_maml_split set");
  MN_CHECK(!search_tasks.empty(), "Fomaml::meta_step_split: no search tasks");
  MetaStepStats st = begin_step(tasks, "Fomaml::meta_step_split");
  ParamSet& W = model_->weights();
  ParamSet& A = *model_->alphas();
  nas::Model& tm = task_->model();
  ParamSet& TW = tm.weights();
  ParamSet* TA = tm.alphas();
  // The architect: theta from the held tasks' query loss at the adapted
  // weights (first order), one Adam step, before the weights see the batch.
  if (!st.warmup) {
    A.zero_grad();
    const float inv_s = 1.f / static_cast<float>(search_tasks.size());
    for (const data::Episode& ep : search_tasks) {
      task_->adapt(ep, rng_, false);
      TW.zero_grad();
      TA->zero_grad();
      {
        nas::FreezeParams fw(&TW);
        QueryResult q = task_->evaluate_query(ep, false);
        q.loss.backward();
      }
      A.grads().add_(TA->grads(), inv_s);
    }
    a_opt_->set_lr(st.a_lr);
    a_opt_->step();
  }
  // The weights: first-order MAML on the training part under that theta.
  const float inv = 1.f / static_cast<float>(st.tasks);
  W.zero_grad();
  StepSums sums;
  for (const data::Episode& ep : tasks) {
    AdaptResult r = task_->adapt(ep, rng_, st.warmup);
    TW.zero_grad();
    TA->zero_grad();
    QueryResult q;
    {
      nas::FreezeParams fa(TA);
      q = task_->evaluate_query(ep, false);
      q.loss.backward();
    }
    W.grads().add_(TW.grads(), inv);
    NoGradGuard ng;
    sums.add_support(r);
    sums.add_query(q.loss.detach(), q.acc);
  }
  sums.mean_into(st);
  finish_step(st, false);
  return st;
}

}  // namespace metanas::meta
