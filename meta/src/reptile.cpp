// Reptile (MetaNAS): adapt each task with the DARTS task optimizer, then move
// the meta parameters towards the mean adapted parameters.
#include "metanas/meta/reptile.h"

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"

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

  if (cfg_.meta.task_parallel) {
    // Task-parallel mode (meta.task_parallel, config.h; on one or many
    // ranks): nothing flows from one task to the next.
    task_parallel_step(
        tasks, st, update_a,
        [&](TaskLearner& tl, const data::Episode& ep, Rng& rng) {
          TaskContribution c;
          AdaptResult r = tl.adapt(ep, rng, st.warmup);
          c.w = tl.model().weights().values();
          if (update_a) c.a = tl.model().alphas()->values();
          c.s_loss = r.last_support_loss, c.s_acc = r.last_support_acc;
          if (cfg_.meta.query_eval) {
            NoGradGuard ng;
            QueryResult q = tl.evaluate_query(ep, false);
            c.q_loss = q.loss, c.q_acc = q.acc;
          }
          return c;
        },
        [&](const Tensor& w, const Tensor& a, const Tensor&) {
          w_sum_.values().add_(w, 1.f);
          if (update_a) a_sum_.values().add_(a, 1.f);
        },
        /*concurrent=*/true);  // run_task touches only its learner
  } else {
    StepSums sums;
    for (size_t i = 0; i < tasks.size(); ++i) {
      const data::Episode& ep = tasks[i];
      task_->set_task_index(static_cast<uint32_t>(i));  // drop-path key (seed, task, step, op)
      AdaptResult r = task_->adapt(ep, rng_, st.warmup);
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
  }

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
