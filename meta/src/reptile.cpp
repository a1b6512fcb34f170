// Reptile (MetaNAS): adapt each task with the DARTS task optimizer, then move
// the meta parameters towards the mean adapted parameters.
#include "metanas/meta/reptile.h"

#include "metanas/engine/autograd.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/error.h"
#include "task_state_mean.h"

namespace metanas::meta {

Reptile::Reptile(const MetaConfig& cfg, std::unique_ptr<nas::Model> meta_model)
    : MetaLearner(cfg, std::move(meta_model), TaskLearnerOptions::for_training(cfg)) {
  make_meta_optimizers();
  w_sum_ = model_->weights().clone();
  if (const ParamSet* A = model_->alphas()) a_sum_ = A->clone();
}

MetaStepStats Reptile::meta_step(const std::vector<data::Episode>& tasks) {
  MetaStepStats st = begin_step(tasks, "Reptile::meta_step");
  ParamSet& W = model_->weights();
  ParamSet* A = model_->alphas();
  const bool update_a = A && !st.warmup;
  w_sum_.values().zero_();
  if (update_a) a_sum_.values().zero_();

  // Task-parallel mode (meta.task_parallel, config.h): per-task generators
  // and one common start state; nothing flows from one task to the next.
  const bool parallel = cfg_.meta.task_parallel;
  std::vector<Rng> task_rngs;
  Checkpoint start;
  TaskStateMean end_states;
  if (parallel) {
    for (size_t i = 0; i < tasks.size(); ++i) task_rngs.push_back(rng_.split());
    task_->save_state(start, "");
  }

  StepSums sums;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const data::Episode& ep = tasks[i];
    if (parallel) task_->load_state(start, "");
    task_->set_task_index(static_cast<uint32_t>(i));
    AdaptResult r = task_->adapt(ep, parallel ? task_rngs[i] : rng_, st.warmup);
    if (parallel) {
      Checkpoint end;
      task_->save_state(end, "");
      end_states.add(end);
    }
    w_sum_.axpy_(task_->model().weights(), 1.f);
    if (update_a) a_sum_.axpy_(*task_->model().alphas(), 1.f);
    NoGradGuard ng;
    sums.add_support(r);
    if (cfg_.meta.query_eval) {
      QueryResult q = task_->evaluate_query(ep, false);
      sums.add_query(q.loss, q.acc);
    }
  }
  sums.mean_into(st);
  if (parallel) task_->load_state(end_states.mean(), "");

  // Meta-gradient g = Phi - mean_i Phi_i = -mean_i (Phi_i - Phi).
  const float inv = 1.f / static_cast<float>(st.tasks);
  W.grads().copy_(W.values());
  W.grads().add_(w_sum_.values(), -inv);
  if (update_a) {
    A->grads().copy_(A->values());
    A->grads().add_(a_sum_.values(), -inv);
  }
  finish_step(st, update_a);
  return st;
}

}  // namespace metanas::meta
