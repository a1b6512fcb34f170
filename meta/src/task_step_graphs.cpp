// TaskLearner's CUDA graphs of the inner steps (run.cuda_graphs; the
// decisions are GraphCache's, engine/graph_cache.h). An inner step of the
// DARTS task optimizer (architecture step + weight step: forwards,
// backwards, Adam) is captured on its second sight with the same key, when
// its first run neither synchronised nor uploaded, and replayed after. What
// a graph bakes in must be in the key: the step, every host scalar of its
// kernels (temperature, threshold, the drop-path key's step and op, Adam's
// rates and betas), the addresses of its inputs, parameters, optimizer
// moments and device-side step state, and the shapes; the soft-pruning
// plan's tensors are the cache's version. What changes from task to task or
// step to step is read on the device instead, so keys repeat: Adam's step
// count and bias corrections (Adam::device_count, advanced by the step
// itself) and the drop-path key's seed and task (the learner's drop words,
// uploaded before a task's steps). A replay runs no host code, so the
// host-side effects of a step are redone by hand: the host copies of the
// Adam step counts, and the outputs are copied out of the graph's buffers
// (the next replay overwrites them).
#include "metanas/engine/error.h"
#include "metanas/engine/extension.h"
#include "metanas/meta/task_learner.h"

namespace metanas::meta {

void TaskLearner::set_graphs(bool on) {
  if (on) {
    MN_CHECK(darts_, "TaskLearner: CUDA graphs (run.cuda_graphs) need the DARTS (Adam) inner optimizer");
    if (!graphs_) graphs_ = std::make_unique<GraphCache>();
    return;
  }
  if (!graphs_) return;
  graphs_->clear();
  destroy_retired_graphs();
  graphs_.reset();
}

void TaskLearner::destroy_retired_graphs() {
  if (!graphs_) return;
  Backend& b = backend(model_->device());
  for (int g : graphs_->take_retired()) {
    graph_outputs_.erase(g);
    if (g >= 0) {
      try {
        b.destroy_graph(g);
      } catch (...) {
        // A failed free leaves the graph's memory reserved; nothing else depends on it.
      }
    }
  }
}

bool TaskLearner::graphable(const nas::ForwardContext& ctx) const {
  // Host-side randomness would be skipped by a replay: gumbel noise, skip
  // dropout, drop-path without a key; regularizer steps (TSE rounds, P-DARTS
  // drops) change the host state between steps.
  if (ctx.normalizer == nas::Normalizer::GumbelSoftmax || ctx.skip_dropout > 0.f) return false;
  if (ctx.drop_path_prob > 0.f && !ctx.drop_key) return false;
  if (opt_.reg.tse_steps != 0 || opt_.reg.stages > 1) return false;
  return true;
}

GraphKey TaskLearner::step_graph_key(int step, bool arch, const nas::Batch& ba, const nas::Batch& bw,
                                     const nas::ForwardContext& ctx) {
  GraphKey k;
  k.add(static_cast<uint64_t>(step)).add(arch ? 1 : 0);
  k.add_float(ctx.temperature).add_float(ctx.anneal_progress).add_float(ctx.prune_threshold);
  k.add_float(ctx.drop_path_prob).add_float(ctx.aux_skip_beta).add(static_cast<uint64_t>(ctx.normalizer));
  k.add(ctx.training ? 1 : 0).add(ctx.plan_epoch != 0 ? 1 : 0);
  if (ctx.drop_key) {
    // Seed and task from the device words when the step has them (their
    // address is baked in); else they are host arguments of the kernels.
    k.add(ctx.drop_key->step).add(ctx.drop_key->op);
    if (ctx.drop_key_words.defined())
      k.add_ptr(ctx.drop_key_words.data_i32());
    else
      k.add(ctx.drop_key->seed).add(ctx.drop_key->task);
  }
  auto batch = [&](const nas::Batch& b) {
    k.add_ptr(b.x.data()).add_ptr(b.y.data_i32());
    for (int64_t d : b.x.shape().dims()) k.add(static_cast<uint64_t>(d));
  };
  batch(bw);
  if (arch) batch(ba);
  k.add_ptr(model_->weights().values().data()).add_ptr(model_->weights().grads().data());
  if (const ParamSet* A = model_->alphas()) k.add_ptr(A->values().data()).add_ptr(A->grads().data());
  auto adam = [&](const Adam* o) {
    if (!o) return k.add(0);
    // Not the step count: the kernels read it (and the bias corrections)
    // from the optimizer's device state.
    k.add(1).add_float(o->lr()).add_float(o->beta1).add_float(o->beta2).add_float(o->eps);
    k.add_float(o->weight_decay).add_float(o->max_grad_norm);
    auto ptr = [&](const Tensor& t) {
      if (!t.defined())
        k.add_ptr(nullptr);
      else if (t.dtype() == DType::I32)
        k.add_ptr(t.data_i32());
      else
        k.add_ptr(t.data());
    };
    ptr(o->exp_avg());
    ptr(o->exp_avg_sq());
    ptr(o->device_count());
    ptr(o->device_bias());
    return k;
  };
  adam(&darts_->w_optimizer());
  adam(arch ? darts_->a_optimizer() : nullptr);
  return k;
}

nas::DartsStepResult TaskLearner::graphed_step(int step, bool arch, const nas::Batch& ba, const nas::Batch& bw,
                                               const nas::ForwardContext& ctx) {
  auto eager = [&] { return arch ? regularized_step(step, ba, bw, ctx) : darts_->step(ba, bw, ctx); };
  if (!graphable(ctx)) return eager();
  destroy_retired_graphs();
  const GraphKey key = step_graph_key(step, arch, ba, bw, ctx);
  const GraphCache::Action act = graphs_->decide(key, model_->plan_version());
  destroy_retired_graphs();  // a new plan version dropped the old graphs
  Backend& b = backend(model_->device());
  Adam* a_opt = darts_->a_optimizer();

  if (act == GraphCache::Action::Eager) {
    // A step that creates an optimizer's state (its moments, device count)
    // does host work a replay would skip: never captured (its key holds null
    // moment addresses, so it differs from the steps after).
    auto ready = [](Adam* o) { return !o || (o->exp_avg().defined() && o->exp_avg().numel() == o->params().numel()); };
    const bool state_ready = ready(&darts_->w_optimizer()) && (!arch || ready(a_opt));
    const uint64_t s0 = b.host_syncs(), u0 = b.uploads();
    nas::DartsStepResult r = eager();
    graphs_->after_eager(key, state_ready && b.host_syncs() == s0 && b.uploads() == u0);
    return r;
  }
  if (!b.supports_graphs()) {
    // The CPU: the same decisions, every step eager.
    nas::DartsStepResult r = eager();
    if (act == GraphCache::Action::Capture) graphs_->captured(key, -1);
    return r;
  }
  auto copy_out = [](const nas::DartsStepResult& g) {
    nas::DartsStepResult r = g;
    for (Tensor* t : {&r.alpha_loss, &r.alpha_acc, &r.w_loss, &r.w_acc})
      if (t->defined()) *t = t->clone();
    return r;
  };
  int id = -1;
  if (act == GraphCache::Action::Capture) {
    b.begin_capture();
    nas::DartsStepResult r;
    try {
      r = eager();  // recorded, not run; the host-side effects happen now
      id = b.end_capture();
    } catch (...) {
      b.abort_capture();
      graphs_->capture_failed(key);
      throw;
    }
    graphs_->captured(key, id);
    destroy_retired_graphs();  // max_graphs evicted the oldest
    graph_outputs_[id] = r;
    b.replay(id);  // the step itself
    return copy_out(r);
  }
  id = graphs_->graph_of(key);
  b.replay(id);
  const nas::DartsStepResult& out = graph_outputs_.at(id);
  darts_->w_optimizer().count_replayed_step();
  if (out.alpha_updated && a_opt) a_opt->count_replayed_step();
  return copy_out(out);
}

}  // namespace metanas::meta
