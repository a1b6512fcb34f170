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
#include <utility>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/optim.h"
#include "metanas/engine/random.h"
#include "metanas/engine/stream.h"
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

// How a learner executes, not what it computes (run.task_streams,
// run.cuda_graphs; docs/architecture.md "Task streams and CUDA graphs").
// task_streams: the task-parallel meta-step (meta.task_parallel) adapts each
// task of this rank with its own TaskLearner on its own backend stream (CUDA:
// the tasks run concurrently; CPU: in order, the same bits as without).
// cuda_graphs: the task learners capture an inner step as a CUDA graph once
// its key repeats and replay it after (TaskLearner::set_graphs).
struct ExecutionOptions {
  bool task_streams = false;
  bool cuda_graphs = false;
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
  // Execution options (default: one stream, no graphs). task_streams needs
  // meta.task_parallel and no task pre-optimizer (throws otherwise).
  void set_execution(const ExecutionOptions& e);
  const ExecutionOptions& execution() const { return exec_; }
  // The per-task learners of the task-streams mode (created on first use, one
  // per task of this rank's block); empty otherwise.
  int stream_task_learners() const { return static_cast<int>(stream_tasks_.size()); }
  // Tasks the last task-parallel meta-step ran at a time on this rank (1:
  // one after another; 0: no task-parallel step yet).
  int last_concurrent_tasks() const { return last_concurrent_tasks_; }
  // The CUDA-graph decisions of all its task learners so far (zeros when off).
  GraphCache::Stats graph_stats() const;

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
  // run_task adapts it and names its contributions (weight- and
  // alpha-sized, the alpha one undefined unless update_a; r: a third, e.g.
  // MAML++'s rate gradients, undefined when none) and statistics;
  // after the gather add_task(w, a, r) is called for every task in task order
  // (once with the sums in all-reduce mode), the statistics are summed into
  // st and the tasks' mean end state becomes the task-optimizer state.
  struct TaskContribution {
    Tensor w, a;
    Tensor s_loss, s_acc, q_loss, q_acc;  // undefined when not measured
    Tensor r;  // last: positional initialisers of the fields above stay valid
  };
  // run_task gets the learner to adapt with: task_, or the task's own
  // learner (and stream) in the task-streams mode, or (CPU, more than one
  // OpenMP thread, `concurrent`) the learner of the thread that runs it:
  // then up to omp_get_max_threads() tasks run at a time, each on one
  // thread, with the same bits as one at a time (concurrent_tasks.cpp).
  // `concurrent` is the caller's promise that run_task touches nothing but
  // the learner it is given (MAML++'s gradient is bound to task_: false).
  void task_parallel_step(const std::vector<data::Episode>& tasks, MetaStepStats& st, bool update_a,
                          const std::function<TaskContribution(TaskLearner&, const data::Episode&, Rng&)>& run_task,
                          const std::function<void(const Tensor& w, const Tensor& a, const Tensor& r)>& add_task,
                          bool concurrent = false);
  // How many tasks the task-parallel meta-step can run at a time on this
  // rank's block of `local` tasks (1: one after another; concurrent_tasks.cpp).
  int concurrent_task_count(int local, bool concurrent) const;
  // Runs tasks [first, first + count) `workers` at a time; per task (in task
  // order) copies of its contributions and its end state. Rethrows the first
  // failing task's error after all have run.
  std::vector<std::pair<TaskContribution, Checkpoint>> run_concurrent_tasks(
      const std::vector<data::Episode>& tasks, int first, int count, int workers, const Checkpoint& start,
      std::vector<Rng>& rngs, const std::function<TaskContribution(TaskLearner&, const data::Episode&, Rng&)>& run_task);

  MetaConfig cfg_;
  std::unique_ptr<nas::Model> model_;
  std::unique_ptr<TaskLearner> task_;
  std::unique_ptr<Optimizer> w_opt_, a_opt_;  // a_opt_ null without alphas
  Rng rng_;
  int64_t iteration_ = 0;
  std::shared_ptr<dist::Communicator> comm_ = dist::single_process();
  bool ordered_reduce_ = true;
  double comm_seconds_ = 0;
  TaskLearnerOptions task_options_;
  ExecutionOptions exec_;
  std::vector<std::unique_ptr<TaskLearner>> stream_tasks_;  // task-streams mode
  std::vector<Stream> streams_;
  std::vector<std::unique_ptr<TaskLearner>> thread_tasks_;  // concurrent tasks: threads 1.. (0 uses task_)
  int last_concurrent_tasks_ = 0;
};

// Builds the learner cfg.algorithm names around `meta_model` (which must match
// cfg.model; the model's device is used throughout).
std::unique_ptr<MetaLearner> make_meta_learner(const MetaConfig& cfg,
                                               std::unique_ptr<nas::Model> meta_model);
// The same, building the meta model from cfg.model with Rng(cfg.seed).
std::unique_ptr<MetaLearner> make_meta_learner(const MetaConfig& cfg, Device device = Device::CPU);

}  // namespace metanas::meta
