// MetaRlPreOptimizer: the meta-RL pre-optimisation of a task's architecture
// (reg-MetaNAS; reference meta-fsl-nas metanas_main.meta_rl_optimization with
// --use_meta_model), plugged into the TaskLearner as its TaskPreOptimizer.
//
// For each task: a trial of the agent on the normal cell's AlphaEnv, the best
// state of that trial loaded, then a trial on the reduce cell's AlphaEnv from
// there, and its best state loaded into the task model, which the task's
// usual adaptation then starts from. Estimation = one first-order DARTS step
// (an architecture and a weight step of this hook's own DartsTaskOptimizer,
// whose Adam state persists across tasks as the reference's environment
// optimizers) on the whole support set, then the support accuracy.
// Training mode: train_trial (PPO updates); test mode: test_trial only.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "metanas/engine/random.h"
#include "metanas/meta/config.h"
#include "metanas/meta/rl/agent.h"
#include "metanas/meta/rl/alpha_env.h"
#include "metanas/meta/task_pre_optimizer.h"
#include "metanas/nas/darts.h"

namespace metanas::meta::rl {

// What the hook did for one task.
struct MetaRlTaskLog {
  int episodes = 0;
  double mean_return = 0.0;      // over the episodes of both trials
  float baseline_acc = 0.f;      // the first estimate of the task (before any edit)
  float final_acc = 0.f;         // the estimate of the state loaded into the task model
  int estimations = 0;           // agent-triggered estimations (baselines not counted)
  int updates = 0;               // PPO optimizer steps
  int64_t sparse_before = 0;     // sparse parameter count of the task model before the agent ...
  int64_t sparse_after = 0;      // ... and of the state loaded (both at the context after adaptation:
                                 // final temperature and prune threshold)
};

// Means over task logs (JSON object), for logs and reports.
std::string summarize_logs(const std::vector<MetaRlTaskLog>& logs);

class MetaRlPreOptimizer : public TaskPreOptimizer {
 public:
  MetaRlPreOptimizer(const MetaRlSection& cfg, const nas::DartsOptions& darts, bool training);
  ~MetaRlPreOptimizer() override;
  void attach(nas::Model& task_model, const nas::ForwardContext& base_ctx,
              const nas::ForwardContext& report_ctx) override;
  void before_adapt(const data::Episode& ep, bool warmup) override;
  void save_state(Checkpoint& ck, const std::string& prefix) const override;
  void load_state(const Checkpoint& ck, const std::string& prefix) override;

  bool training() const { return training_; }
  const std::vector<MetaRlTaskLog>& logs() const { return logs_; }
  void clear_logs() { logs_.clear(); }
  Agent& agent() { return *agent_; }

 private:
  float estimate();
  MetaRlSection cfg_;
  nas::DartsOptions darts_opt_;
  bool training_;
  Rng rng_;
  nas::SearchNetwork* net_ = nullptr;
  nas::ForwardContext ctx_, report_ctx_;
  std::unique_ptr<nas::DartsTaskOptimizer> darts_;
  std::unique_ptr<AlphaEnv> normal_, reduce_;
  std::unique_ptr<Agent> agent_;
  nas::Batch batch_;
  std::vector<MetaRlTaskLog> logs_;
};

// The hook cfg.meta_rl asks for (null when its agent is "none"). Training
// uses cfg.task.darts for the estimation steps, evaluation too (the
// reference's environment keeps its meta-training optimizer settings).
std::shared_ptr<MetaRlPreOptimizer> make_meta_rl(const MetaConfig& cfg, bool training);

}  // namespace metanas::meta::rl
