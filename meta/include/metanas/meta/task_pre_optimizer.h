// TaskPreOptimizer: the hook through which something edits a task model after
// it was reset to the meta parameters and before the task's gradient-based
// adaptation (TaskLearner::adapt). The meta-RL agent (meta/rl/meta_rl.h) is
// the one implementation: it edits the architecture weights of the task model
// for the task at hand (reg-MetaNAS's pre-optimisation).
//
// The hook owns its own state (agent parameters, optimizer moments, random
// generator); the meta learner saves it in its checkpoint under "meta_rl."
// so that a resumed run continues bit for bit.
#pragma once
#include <string>

#include "metanas/datasets/episode.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/nas/model.h"

namespace metanas::meta {

class TaskPreOptimizer {
 public:
  virtual ~TaskPreOptimizer() = default;
  // Binds the hook to the task model it will edit (once, before any call).
  // base_ctx: the forward context of the task's first inner step (temperature,
  // normalizer, prune threshold, drop-path), without a generator; report_ctx:
  // the context after adaptation (final temperature, prune threshold), for
  // sparse parameter counts.
  virtual void attach(nas::Model& task_model, const nas::ForwardContext& base_ctx,
                      const nas::ForwardContext& report_ctx) = 0;
  // Edits the attached task model for the episode. warmup: the meta learner
  // is in its warm-up phase.
  virtual void before_adapt(const data::Episode& ep, bool warmup) = 0;
  virtual void save_state(Checkpoint& ck, const std::string& prefix) const = 0;
  // Throws metanas::Error when the checkpoint has no (or mismatching) state.
  virtual void load_state(const Checkpoint& ck, const std::string& prefix) = 0;
};

}  // namespace metanas::meta
