// TaskLearner: the inner loop. It owns one task model (a clone of the meta
// model, built once) and its optimizers, and for each task copies the meta
// parameters in, adapts them on the task's support set and evaluates on the
// query set. Reusing the object across tasks keeps allocations (and, for the
// DARTS task optimizer, the Adam state, as in MetaNAS) from task to task.
//
// One inner step s (0-based) of adapt():
//   T_s = schedule.at(s) (t_max in warm-up; t_min after the arch steps)
//   Adam (DARTS): optimizer.step(batch_a, batch_w) = an architecture step on
//     batch_a (skipped in warm-up, after arch_steps, or when alphas are not
//     adapted), then a weight step on batch_w (docs/algorithms.md).
//   Sgd: one forward/backward on batch_w, w -= lr_w g_w (and
//     alpha -= lr_a g_alpha when alphas are adapted).
// Batches: the whole support set, or batch_size rows drawn from it (with or
// without replacement) independently for each batch. All batches of a task
// are drawn up front and uploaded in one copy, so the inner loop never waits
// on the host.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/graph_cache.h"
#include "metanas/engine/optim.h"
#include "metanas/engine/random.h"
#include "metanas/meta/config.h"
#include "metanas/meta/task_pre_optimizer.h"
#include "metanas/meta/inner_lrs.h"
#include "metanas/nas/darts.h"
#include "metanas/nas/model.h"
#include "metanas/nas/normalizer.h"
#include "metanas/nas/pdarts.h"
#include "metanas/nas/task_regularizers.h"

namespace metanas::meta {

struct TaskLearnerOptions {
  int arch_steps = 5;    // steps that adapt the architecture (and weights)
  int weight_steps = 0;  // further steps that adapt only the weights
  int batch_size = 0;    // 0 = whole support set
  bool with_replacement = true;
  bool adapt_alphas = true;  // false: fixed architecture (Auto-MAML inner loop, plain models)
  InnerOptimizer optimizer = InnerOptimizer::Adam;
  nas::DartsOptions darts;
  float sgd_w_lr = 0.01f, sgd_a_lr = 3e-4f, sgd_w_grad_clip = 0.f;
  nas::TemperatureSchedule schedule;  // steps is set to arch_steps
  nas::Normalizer normalizer = nas::Normalizer::Softmax;
  float prune_threshold = 0.f;
  float drop_path_prob = 0.f;
  // > 0: the Sgd inner loop uses per-step, per-tensor rates (InnerLrs, this
  // many per tensor; MAML++ options or outer-only weights), 0: one rate.
  int lslr_values = 0;
  // Regularized MetaNAS task-level options (P-DARTS stages, skip dropout and
  // limit, DARTS- beta, TSE); for_evaluation turns skip dropout off.
  nas::TaskRegularizers reg;

  // The meta-training / meta-testing inner loops of a configuration.
  static TaskLearnerOptions for_training(const MetaConfig& cfg);
  static TaskLearnerOptions for_evaluation(const MetaConfig& cfg);
  void validate() const;
};

// Losses/accuracies as scalar tensors on the model's device (read with
// .item() when logging: nothing is synchronised during adaptation).
struct AdaptResult {
  Tensor last_support_loss;  // loss of the last weight step's batch, before its update
  Tensor last_support_acc;
  int steps = 0;
};

struct QueryResult {
  Tensor loss;  // mean cross-entropy over the query set (scalar tensor)
  Tensor acc;   // fraction correct (scalar tensor)
};

// Sees every inner step of an Sgd adaptation (the MAML++ meta-gradient keeps
// what it needs for its backward pass through the inner loop).
struct InnerStepObserver {
  virtual ~InnerStepObserver() = default;
  // Step s's support gradient has been taken on `batch` with `ctx`: the task
  // model holds P_s in its values and g_s in its gradients (alpha gradients
  // only when `alphas`, i.e. the step adapts them). Not yet applied.
  virtual void after_gradient(int s, const nas::Batch& batch, const nas::ForwardContext& ctx, bool alphas) = 0;
  // The update of step s has been applied (the model holds P_{s+1}).
  virtual void after_update(int s) = 0;
};

class TaskLearner {
 public:
  // Clones `meta_model` once (the task model); the meta model must outlive
  // the learner (each task starts from its current parameters).
  TaskLearner(const nas::Model& meta_model, const TaskLearnerOptions& opt);
  ~TaskLearner();
  TaskLearner(const TaskLearner&) = delete;
  TaskLearner& operator=(const TaskLearner&) = delete;

  // Copies the meta model's weights (and alphas) into the task model.
  void reset_to_meta();
  // reset_to_meta(), then adapt on the episode's support set. warmup: no
  // architecture updates and T = t_max throughout (meta-training warm-up).
  AdaptResult adapt(const data::Episode& ep, Rng& rng, bool warmup = false);
  // The adapted task model on the query set, with the context of the last
  // step (final temperature, prune threshold) and no drop-path. With
  // non_transductive the query images are evaluated one at a time, each in a
  // batch with the support set (their logits only). Differentiable when
  // grad mode is on and not non_transductive (FOMAML backpropagates it).
  QueryResult evaluate_query(const data::Episode& ep, bool non_transductive = false);

  // The forward context after adaptation (temperature at the last step,
  // prune threshold, no drop-path): for evaluation, sparse parameter counts.
  nas::ForwardContext final_context() const;
  // The forward context of inner step `step`.
  nas::ForwardContext step_context(int step, bool warmup, Rng* rng) const;

  // The task index of the drop-path key (seed, task, step, op) of the next
  // adapt() (the task's position in its meta-batch; default 0).
  void set_task_index(uint32_t task) { task_index_ = task; }

  nas::Model& model() { return *model_; }
  const nas::Model& model() const { return *model_; }
  const nas::Model& meta_model() const { return *meta_; }
  const TaskLearnerOptions& options() const { return opt_; }
  // The DARTS task optimizer (Adam inner optimizer); nullptr for Sgd.
  nas::DartsTaskOptimizer* darts() { return darts_.get(); }
  // Per-step per-tensor rates (options().lslr_values > 0); else nullptr.
  InnerLrs* inner_lrs() { return lrs_.get(); }
  // Observer of the next adaptations' steps (nullptr: none); Sgd only.
  void set_observer(InnerStepObserver* o) { observer_ = o; }

  // Task-optimizer state (Adam moments; nothing for Sgd) under `prefix`,
  // and the per-step rates under prefix + "lslr.".
  void save_state(Checkpoint& ck, const std::string& prefix) const;
  // Loads what save_state wrote; a checkpoint without it (e.g. from an Sgd
  // inner loop) resets the state (the per-step rates are meta-learned, not
  // optimizer state: a checkpoint without them and reset_state keep them).
  void load_state(const Checkpoint& ck, const std::string& prefix);
  void reset_state();

  // CUDA graphs of the inner steps (run.cuda_graphs; DARTS inner optimizer):
  // each step's GraphKey (step_graph_key) goes through a GraphCache; a step
  // that repeats with the same key and ran without a host synchronisation or
  // upload is captured once and replayed after. On a backend without graphs
  // (the CPU) the decisions are made and counted but every step runs eagerly,
  // so results do not change. Off: no key is built.
  void set_graphs(bool on);
  bool graphs() const { return graphs_ != nullptr; }
  // The decisions so far (nullptr when graphs are off).
  const GraphCache::Stats* graph_stats() const { return graphs_ ? &graphs_->stats() : nullptr; }
  // The key of inner step `step` (arch: with its architecture step) on these
  // batches under ctx, with the task model's and optimizers' current
  // buffers: everything a graph of the step bakes in (host scalars,
  // addresses, shapes), and nothing the step reads on the device (Adam's step
  // counts, the drop-path seed and task when ctx has drop_key_words).
  // Public for tests (tests/meta/task_streams_test.cpp).
  GraphKey step_graph_key(int step, bool arch, const nas::Batch& ba, const nas::Batch& bw,
                          const nas::ForwardContext& ctx);

  // A hook that edits the task model after reset_to_meta() and before the
  // adaptation steps of every adapt() (the meta-RL agent); null: none.
  void set_pre_optimizer(std::shared_ptr<TaskPreOptimizer> pre);
  TaskPreOptimizer* pre_optimizer() { return pre_.get(); }
  const TaskPreOptimizer* pre_optimizer() const { return pre_.get(); }

 private:
  struct Batches;
  const nas::Model* meta_;
  TaskLearnerOptions opt_;
  std::unique_ptr<nas::Model> model_;
  std::unique_ptr<nas::DartsTaskOptimizer> darts_;
  std::unique_ptr<Sgd> sgd_w_, sgd_a_;
  std::unique_ptr<Batches> batches_;
  std::unique_ptr<InnerLrs> lrs_;
  InnerStepObserver* observer_ = nullptr;
  // Regularized MetaNAS (meta/src/task_regularizer_hooks.cpp).
  int stage_len_ = 0;             // P-DARTS: architecture steps per stage
  nas::DroppedOps dropped_;       // P-DARTS drops of the last adapt()
  std::unique_ptr<ParamSet> tse_snapshot_;
  void apply_step_regularizers(nas::ForwardContext& ctx, int step) const;
  nas::DartsStepResult regularized_step(int step, const nas::Batch& ba, const nas::Batch& bw,
                                        const nas::ForwardContext& ctx);
  void after_step(int step, bool arch_step);
  void finish_adapt();
  void prepare_query();
  bool last_warmup_ = false;  // whether the last adapt() was a warm-up adaptation
  Rng* last_rng_ = nullptr;   // the last adapt()'s generator (gumbel noise at query evaluation)
  std::shared_ptr<TaskPreOptimizer> pre_;
  // Per adapt(): the soft-pruning plan epoch (alphas are reset, so meta-pruned
  // logits may change) and the drop-path seed (one draw per task).
  uint64_t plan_epoch_ = 0;
  uint64_t drop_seed_ = 0;
  uint32_t task_index_ = 0;
  // With graphs: the drop-path key's seed and task as device words (int32
  // [3], ForwardContext::drop_key_words), uploaded once per adapt() before
  // its steps, so the steps' graphs replay for any task.
  Tensor drop_words_;
  // CUDA graphs (meta/src/task_step_graphs.cpp).
  std::unique_ptr<GraphCache> graphs_;
  std::map<int, nas::DartsStepResult> graph_outputs_;  // graph id -> its output tensors
  bool graphable(const nas::ForwardContext& ctx) const;
  nas::DartsStepResult graphed_step(int step, bool arch, const nas::Batch& ba, const nas::Batch& bw,
                                    const nas::ForwardContext& ctx);
  void destroy_retired_graphs();
};

}  // namespace metanas::meta
