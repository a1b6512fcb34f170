// MetaLearner: the outer loop's common interface. A learner owns the meta
// model (weights and, for search networks, alphas), the meta optimizers, one
// TaskLearner (the inner loop, reused across tasks) and an Rng for every
// random draw it makes (support mini-batches, drop-path, gumbel noise), and
// saves all of it to a Checkpoint, so that N iterations + save + load into
// fresh objects + N iterations gives bitwise the same parameters as 2N
// iterations straight.
//
// Implementations: Reptile (MetaNAS), Fomaml (first-order MAML / T-NAS,
// Auto-MAML). The update rules are in docs/algorithms.md.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/optim.h"
#include "metanas/engine/random.h"
#include "metanas/meta/config.h"
#include "metanas/meta/dist/communicator.h"
#include "metanas/meta/task_learner.h"
#include "metanas/nas/model.h"

namespace metanas::meta {

// What one meta_step did. Losses/accuracies are scalar tensors on the model's
// device (means over the meta-batch); reading them (the *_value() accessors)
// synchronises, so do it only when logging.
struct MetaStepStats {
  int64_t iteration = 0;  // meta-iterations completed, this one included
  bool warmup = false;    // no architecture update in this step
  float w_lr = 0.f;       // meta learning rates used in this step
  float a_lr = 0.f;
  int tasks = 0;
  int pruned = 0;         // op logits newly pruned by meta-model pruning after this step
  Tensor query_loss, query_acc;      // undefined when query evaluation is off
  Tensor support_loss, support_acc;  // of each task's last inner weight step

  // Host values (NaN when undefined).
  float query_loss_value() const;
  float query_acc_value() const;
  float support_loss_value() const;
  float support_acc_value() const;
};

class MetaLearner {
 public:
  virtual ~MetaLearner();
  MetaLearner(const MetaLearner&) = delete;
  MetaLearner& operator=(const MetaLearner&) = delete;

  // One meta-iteration over a meta-batch of episodes (any number >= 1; the
  // configuration's meta_batch_size is what the programs draw).
  virtual MetaStepStats meta_step(const std::vector<data::Episode>& tasks) = 0;
  // Auto-MAML with meta.auto_maml_split: the architecture is updated from
  // `search_tasks` (drawn from the held part of meta-train) and then the
  // weights from `tasks` (the other part). Other learners throw.
  virtual MetaStepStats meta_step_split(const std::vector<data::Episode>& tasks,
                                        const std::vector<data::Episode>& search_tasks);
  // Whether meta_step_split is the step to call (meta.auto_maml_split set).
  bool wants_search_tasks() const { return cfg_.meta.auto_maml_split != AutoMamlSplit::None; }
  virtual Algorithm algorithm() const = 0;

  nas::Model& meta_model() { return *model_; }
  const nas::Model& meta_model() const { return *model_; }
  const MetaConfig& config() const { return cfg_; }
  // Completed meta-iterations.
  int64_t iteration() const { return iteration_; }
  // Whether the next step is a warm-up step (no architecture updates).
  bool in_warmup() const;
  // Meta learning rates the next step uses (cosine annealing applied).
  float next_w_lr() const;
  float next_a_lr() const;
  TaskLearner& task_learner() { return *task_; }
  Rng& rng() { return rng_; }

  // Distributed meta-training (meta.task_parallel only, docs/distributed.md):
  // this rank runs the tasks dist::TaskSlots gives it (the other entries of
  // a meta-batch may be empty episodes) and the ranks combine the per-task
  // contributions. ordered: gather them and sum in task order (the same bits
  // for any number of ranks); otherwise one all-reduce (faster, not bitwise).
  // Default: the single process.
  void set_communicator(std::shared_ptr<dist::Communicator> comm, bool ordered = true);
  dist::Communicator& communicator() const { return *comm_; }
  // Seconds spent in the last meta-step's collective (0 on one process).
  double last_comm_seconds() const { return comm_seconds_; }

  // Saves: meta weights "meta.w.<name>", alphas "meta.a.<name>", the meta
  // optimizer states "meta_opt.w." / "meta_opt.a.", the task-optimizer state
  // "task_opt." (what the Evaluator restores before each test task), and in
  // the checkpoint metadata (merged into the existing JSON object) under
  // "meta_learner": algorithm, iteration, rng state, configuration.
  virtual void save_state(Checkpoint& ck) const;
  // Loads what save_state wrote. Throws metanas::Error when the checkpoint is
  // from another algorithm or the model layout differs (naming the parameter).
  virtual void load_state(const Checkpoint& ck);
  void save(const std::string& path) const;
  void load(const std::string& path);

 protected:
  MetaLearner(const MetaConfig& cfg, std::unique_ptr<nas::Model> model,
              const TaskLearnerOptions& task_options);
  // Cosine factor 0.5 (1 + cos(pi * t / T)) for t in [0, T], 0 after.
  static float cosine(int64_t t, int64_t T);
  // Meta-model pruning after a step (search networks, after warm-up, every
  // meta.prune_every iterations). Returns the number of newly pruned logits.
  int maybe_prune();
  // Builds the meta optimizers (SGD or Adam per cfg.meta) over the meta
  // parameter sets.
  void make_meta_optimizers();

  // The parts every meta_step shares. begin_step checks that the meta-batch
  // is not empty (errors name `who`) and fills the warm-up flag, learning
  // rates and task count; finish_step applies the meta optimizers to the
  // meta-gradients in place (alphas only when update_alphas) with those
  // rates, counts the iteration and runs meta-model pruning.
  MetaStepStats begin_step(const std::vector<data::Episode>& tasks, const char* who) const;
  void finish_step(MetaStepStats& st, bool update_alphas);
  // Sums of the per-task losses and accuracies of a meta-batch (add them
  // under a NoGradGuard); mean_into writes their means over st.tasks, leaving
  // what was never added undefined.
  struct StepSums {
    Tensor q_loss, q_acc, s_loss, s_acc;
    void add_support(const AdaptResult& r);
    void add_query(const Tensor& loss, const Tensor& acc);
    void mean_into(MetaStepStats& st) const;
  };

  // The task-parallel meta-step (meta.task_parallel; task_parallel_step.cpp):
  // every task of this rank starts from the task-optimizer state the last
  // meta-step left, with its own generator split from rng_ in task order;
  // run_task adapts it and names its two contributions (weight- and
  // alpha-sized, the alpha one undefined unless update_a) and statistics;
  // after the gather add_task(w, a) is called for every task in task order
  // (once with the sums in all-reduce mode), the statistics are summed into
  // st and the tasks' mean end state becomes the task-optimizer state.
  struct TaskContribution {
    Tensor w, a;
    Tensor s_loss, s_acc, q_loss, q_acc;  // undefined when not measured
  };
  void task_parallel_step(const std::vector<data::Episode>& tasks, MetaStepStats& st, bool update_a,
                          const std::function<TaskContribution(const data::Episode&, Rng&)>& run_task,
                          const std::function<void(const Tensor& w, const Tensor& a)>& add_task);

  MetaConfig cfg_;
  std::unique_ptr<nas::Model> model_;
  std::unique_ptr<TaskLearner> task_;
  std::unique_ptr<Optimizer> w_opt_, a_opt_;  // a_opt_ null without alphas
  Rng rng_;
  int64_t iteration_ = 0;
  std::shared_ptr<dist::Communicator> comm_ = dist::single_process();
  bool ordered_reduce_ = true;
  double comm_seconds_ = 0;
};

// Builds the learner cfg.algorithm names around `meta_model` (which must match
// cfg.model; the model's device is used throughout).
std::unique_ptr<MetaLearner> make_meta_learner(const MetaConfig& cfg,
                                               std::unique_ptr<nas::Model> meta_model);
// The same, building the meta model from cfg.model with Rng(cfg.seed).
std::unique_ptr<MetaLearner> make_meta_learner(const MetaConfig& cfg, Device device = Device::CPU);

}  // namespace metanas::meta
