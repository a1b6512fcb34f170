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
  if (cfg.mamlpp.enabled()) pp_ = std::make_unique<MamlppGradient>(cfg_, *model_, *task_);
}

void Fomaml::save_state(Checkpoint& ck) const {
  MetaLearner::save_state(ck);
  if (pp_) pp_->rate_optimizer()->save_state(ck, "meta_opt.lslr.");
}

void Fomaml::load_state(const Checkpoint& ck) {
  MetaLearner::load_state(ck);
  if (pp_) pp_->rate_optimizer()->load_state(ck, "meta_opt.lslr.");
}

MetaStepStats Fomaml::mamlpp_step(const std::vector<data::Episode>& tasks) {
  MetaStepStats st = begin_step(tasks, "Fomaml::meta_step");
  ParamSet& W = model_->weights();
  ParamSet* A = model_->alphas();
  const bool update_a = A && !st.warmup;
  const float inv = 1.f / static_cast<float>(st.tasks);
  W.zero_grad();
  if (A) A->zero_grad();
  pp_->zero_rate_grads();
  const int64_t epoch = iteration_ / cfg_.mamlpp.epoch_iterations;
  if (cfg_.meta.task_parallel) {
    // Task-parallel MAML++ (on one or many ranks): each task's meta-gradient
    // (weights, alphas, per-step rates) is its own contribution, summed in
    // task order after the gather. The meta gradients serve as each task's
    // scratch, so they are zeroed again before the sum.
    ParamSet& R = task_->inner_lrs()->params();
    bool first = true;
    task_parallel_step(
        tasks, st, update_a,
        [&](TaskLearner& tl, const data::Episode& ep, Rng& rng) {
          // MAML++'s gradient object is bound to task_, so it cannot run on a
          // stream's own learner.
          MN_CHECK(&tl == task_.get(), "MAML++ (mamlpp.*) does not support run.task_streams: its gradient "
                   "is bound to the learner's own task learner; drop --task-streams");
          W.zero_grad();
          if (A) A->zero_grad();
          R.zero_grad();
          MamlppGradient::TaskResult r = pp_->accumulate(ep, rng, st.warmup, update_a, epoch, 1.f);
          TaskContribution c;
          c.w = W.grads().clone();
          if (update_a) c.a = A->grads().clone();
          if (R.numel() > 0) c.r = R.grads().clone();
          c.s_loss = r.adapt.last_support_loss, c.s_acc = r.adapt.last_support_acc;
          c.q_loss = r.query_loss, c.q_acc = r.query_acc;
          return c;
        },
        [&](const Tensor& w, const Tensor& a, const Tensor& r) {
          if (first) {
            W.zero_grad();
            if (A) A->zero_grad();
            R.zero_grad();
            first = false;
          }
          W.grads().add_(w, inv);
          if (update_a) A->grads().add_(a, inv);
          if (r.defined()) R.grads().add_(r, inv);
        });
  } else {
    StepSums sums;
    for (const data::Episode& ep : tasks) {
      MamlppGradient::TaskResult r = pp_->accumulate(ep, rng_, st.warmup, update_a, epoch, inv);
      NoGradGuard ng;
      sums.add_support(r.adapt);
      sums.add_query(r.query_loss, r.query_acc);
    }
    sums.mean_into(st);
  }
  clamp_grads(W, cfg_.mamlpp.meta_grad_clamp);
  if (update_a) clamp_grads(*A, cfg_.mamlpp.meta_grad_clamp);
  pp_->step_rates(st.w_lr);
  finish_step(st, update_a);
  return st;
}

MetaStepStats Fomaml::meta_step(const std::vector<data::Episode>& tasks) {
  MN_CHECK(!wants_search_tasks(), "Fomaml::meta_step: meta.auto_maml_split is '",
           auto_maml_split_name(cfg_.meta.auto_maml_split),
           "': call meta_step_split with tasks from the held part of meta-train");
  if (pp_) return mamlpp_step(tasks);
  MetaStepStats st = begin_step(tasks, "Fomaml::meta_step");
  ParamSet& W = model_->weights();
  ParamSet* A = model_->alphas();
  const bool update_a = A && !st.warmup;
  const float inv = 1.f / static_cast<float>(st.tasks);
  W.zero_grad();
  if (A) A->zero_grad();

  nas::Model& tm = task_->model();
  // The first-order meta-gradient of one task: the query-loss gradient at
  // the adapted parameters, taken as the gradient at the meta parameters.
  auto query_gradient = [&](TaskLearner& tl, const data::Episode& ep) {
    nas::Model& m = tl.model();
    m.weights().zero_grad();
    ParamSet* TA = m.alphas();
    if (TA) TA->zero_grad();
    nas::FreezeParams fa(update_a ? nullptr : TA);
    QueryResult q = tl.evaluate_query(ep, false);
    q.loss.backward();
    return q;
  };
  if (cfg_.meta.task_parallel) {
    // Task-parallel mode (meta.task_parallel; on one or many ranks).
    task_parallel_step(
        tasks, st, update_a,
        [&](TaskLearner& tl, const data::Episode& ep, Rng& rng) {
          TaskContribution c;
          AdaptResult r = tl.adapt(ep, rng, st.warmup);
          QueryResult q = query_gradient(tl, ep);
          c.w = tl.model().weights().grads();
          if (update_a) c.a = tl.model().alphas()->grads();
          c.s_loss = r.last_support_loss, c.s_acc = r.last_support_acc;
          c.q_loss = q.loss.detach(), c.q_acc = q.acc;
          return c;
        },
        [&](const Tensor& w, const Tensor& a, const Tensor&) {
          W.grads().add_(w, inv);
          if (update_a) A->grads().add_(a, inv);
        },
        /*concurrent=*/true);  // run_task touches only its learner
    finish_step(st, update_a);
    return st;
  }

  StepSums sums;
  for (const data::Episode& ep : tasks) {
    AdaptResult r = task_->adapt(ep, rng_, st.warmup);
    QueryResult q = query_gradient(*task_, ep);
    W.grads().add_(tm.weights().grads(), inv);
    if (update_a) A->grads().add_(tm.alphas()->grads(), inv);
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
