// The TaskLearner's Regularized MetaNAS hooks (nas::TaskRegularizers): DARTS-
// beta and P-DARTS skip dropout per step, TSE-DARTS architecture steps,
// P-DARTS op drops at the end of each stage (undone before the meta update,
// redone for the query evaluation) and the skip-connection limit.
#include "metanas/engine/error.h"
#include "metanas/meta/task_learner.h"
#include "metanas/nas/search_network.h"
#include "metanas/nas/tse.h"

namespace metanas::meta {

void TaskLearner::apply_step_regularizers(nas::ForwardContext& ctx, int step) const {
  const nas::TaskRegularizers& g = opt_.reg;
  ctx.aux_skip_beta = g.aux_beta_at(step, opt_.arch_steps);
  // Skip dropout follows the stages of the architecture steps (the last
  // stage's rate continues through weight-only steps).
  if (!g.skip_dropout.empty() && stage_len_ > 0) {
    const int stage = std::min(step / stage_len_, g.stages - 1);
    ctx.skip_dropout = g.skip_dropout_at(stage, step - stage * stage_len_);
  }
}

nas::DartsStepResult TaskLearner::regularized_step(int step, const nas::Batch& ba, const nas::Batch& bw,
                                                   const nas::ForwardContext& ctx) {
  if (opt_.reg.tse_steps == 0) return darts_->step(ba, bw, ctx);
  ParamSet& W = model_->weights();
  if (!tse_snapshot_ || !tse_snapshot_->same_layout(W) || tse_snapshot_->device() != W.device())
    tse_snapshot_ = std::make_unique<ParamSet>(W.clone());
  return nas::tse_step(*darts_, *model_, ba, bw, ctx, opt_.reg.tse_steps, *tse_snapshot_);
}

void TaskLearner::after_step(int step, bool arch_step) {
  const nas::TaskRegularizers& g = opt_.reg;
  if (!arch_step || g.stages <= 1 || stage_len_ <= 0) return;
  const int stage = step / stage_len_;
  if ((step + 1) % stage_len_ != 0 || stage >= g.stages - 1) return;
  auto* net = dynamic_cast<nas::SearchNetwork*>(model_.get());
  MN_CHECK(net, "TaskLearner: P-DARTS stages need a search network, not a ", model_->kind(), " model");
  nas::DroppedOps d = nas::pdarts_drop_ops(*net, g.keep_ops[static_cast<size_t>(stage)], g.drop_released);
  dropped_.entries.insert(dropped_.entries.end(), d.entries.begin(), d.entries.end());
}

void TaskLearner::finish_adapt() {
  // The meta update sees the alphas as the task adapted them, without the
  // task-local drops (their logits get the values they had when dropped).
  if (auto* net = dynamic_cast<nas::SearchNetwork*>(model_.get())) {
    // Restored in reverse so that an entry dropped twice gets its first value.
    nas::DroppedOps rev{{dropped_.entries.rbegin(), dropped_.entries.rend()}};
    nas::restore_dropped(*net, rev);
  }
}

void TaskLearner::prepare_query() {
  auto* net = dynamic_cast<nas::SearchNetwork*>(model_.get());
  if (!net) return;
  nas::reapply_dropped(*net, dropped_);
  if (opt_.reg.skip_limit < 0) return;
  if (opt_.reg.skip_limit_released)
    nas::limit_skip_connections_released(*net, opt_.reg.skip_limit);
  else
    nas::limit_skip_connections(*net, opt_.reg.skip_limit);
}

}  // namespace metanas::meta
