// Evaluator: meta-testing. Each task starts from the meta state (and, by
// default, from the meta-training task-optimizer state, as MetaNAS), adapts
// architecture and weights for A steps, then the weights only for B steps
// (MetaNAS: 50 + 50), and is scored on its query set. Reports the mean
// accuracy with a 95% confidence interval 1.96 * std / sqrt(N), the
// distribution of sparse parameter counts and the most common task
// genotypes; on one-shot runs (e.g. Lake's 20 Omniglot runs) the error of
// each run and overall.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/datasets/oneshot_runs.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/random.h"
#include "metanas/meta/config.h"
#include "metanas/meta/dist/communicator.h"
#include "metanas/meta/task_learner.h"
#include "metanas/nas/model.h"

namespace metanas::meta {

struct TaskEvaluation {
  double accuracy = 0.0;  // fraction of query images classified correctly
  double loss = 0.0;      // mean query cross-entropy
  int correct = 0, total = 0;
  int64_t sparse_params = 0;  // weights used by the adapted model's forward (soft pruning)
  std::string genotype;       // adapted genotype (text form); empty for fixed architectures
};

// Accuracy statistics over tasks: mean, std (population, ddof 0 as numpy's
// default, which the MAML/T-NAS scripts use) and ci95 = 1.96 std / sqrt(N).
struct EvalReport {
  std::vector<TaskEvaluation> tasks;
  double mean_accuracy = 0.0, std_accuracy = 0.0, ci95 = 0.0;
  double mean_loss = 0.0;
  int64_t sparse_min = 0, sparse_max = 0;
  double sparse_mean = 0.0;
  // (genotype text, count), most common first (ties: first seen first),
  // at most top_genotypes entries; distinct_genotypes counts all of them.
  std::vector<std::pair<std::string, int>> genotype_counts;
  int distinct_genotypes = 0;

  // Histogram of sparse parameter counts: `bins` equal-width bins over
  // [sparse_min, sparse_max] as (bin lower edge, count).
  std::vector<std::pair<int64_t, int>> sparse_histogram(int bins = 10) const;
  std::string to_json() const;   // everything above, plus the per-task values
  std::string summary() const;   // a few human-readable lines
};
// The statistics of a list of task evaluations.
EvalReport summarize(std::vector<TaskEvaluation> tasks, int top_genotypes = 5);

// Split evaluation (docs/distributed.md): every rank's `mine` (its
// dist::TaskSlots block, in task order) gathered into all n evaluations in
// task order, on every rank (one small gather of host bytes; doubles
// round-trip exactly). `who` names the caller in the error when the count
// is not n.
std::vector<TaskEvaluation> gather_task_evaluations(dist::Communicator& comm, const std::vector<TaskEvaluation>& mine,
                                                    int n, const char* who);

// One-shot runs: each run is one episode (e.g. 20 classes, 1 support and 1
// query image each); error = 1 - accuracy.
struct RunResult {
  std::string name;
  double error = 0.0;
  int correct = 0, total = 0;
};
struct RunsReport {
  std::vector<RunResult> runs;
  double mean_error = 0.0;     // mean of the per-run errors
  double overall_error = 0.0;  // pooled over all query images
  EvalReport detail;           // sparse parameters and genotypes of the runs
  std::string to_json() const;
  std::string summary() const;
};

class Evaluator {
 public:
  // The meta model must outlive the evaluator; every task starts from its
  // current parameters. Uses cfg.eval (steps, batches, pruning, BN mode) and
  // cfg.task (optimizer settings, temperatures). Random draws come from an
  // Rng seeded with `seed`.
  Evaluator(const nas::Model& meta_model, const MetaConfig& cfg, uint64_t seed = 0);
  ~Evaluator();

  // The task-optimizer state every task starts from (MetaLearner::save_state
  // writes it under "task_opt."). Without it each task starts fresh.
  void set_task_optimizer_state(const Checkpoint& ck, const std::string& prefix = "task_opt.");
  void clear_task_optimizer_state();
  // The meta-RL agent's state (MetaLearner::save_state writes it under
  // "meta_rl."), restored before every task: with cfg.meta_rl.agent set the
  // agent runs its test episodes (no updates) before each task's adaptation.
  void set_pre_optimizer_state(const Checkpoint& ck, const std::string& prefix = "meta_rl.");
  // The meta-learned per-step inner rates (MAML++ LSLR) of a meta-learner's
  // task learner; nothing when either side has none.
  void copy_inner_lrs(TaskLearner& from);
  // Evaluate as MetaNAS does during meta-training warm-up: no architecture
  // adaptation (only the weights, for A + B steps) and T = t_max.
  void set_warmup(bool on) { warmup_ = on; }
  bool warmup() const { return warmup_; }

  // Adapts to one episode and scores its query set.
  TaskEvaluation evaluate_task(const data::Episode& ep);
  // The same with the task's own generator (task-parallel evaluation).
  TaskEvaluation evaluate_task(const data::Episode& ep, Rng& rng);
  // Adapts to one episode as evaluate_task and returns the class
  // probabilities of its query images [Q, K] (softmax of the logits; the
  // query set as one batch: not with eval.non_transductive_bn). For ensembles.
  Tensor query_probabilities(const data::Episode& ep);
  // N tasks drawn from `sampler` (N = cfg.eval.tasks when n <= 0).
  // progress(done, last) is called after each task when given.
  EvalReport evaluate(data::EpisodeSampler& sampler, int n = 0,
                      const std::function<void(int, const TaskEvaluation&)>& progress = {});
  EvalReport evaluate(const std::vector<data::Episode>& tasks,
                      const std::function<void(int, const TaskEvaluation&)>& progress = {});
  // Task-parallel evaluation (meta.task_parallel, docs/distributed.md): task
  // i draws from its own generator, split from this evaluator's in task
  // order, so the n tasks can run on any rank: each rank of `comm` evaluates
  // its dist::TaskSlots block (it draws every task from the sampler, building
  // only its own), and every rank gets the whole report (one small gather).
  // progress sees this rank's tasks only.
  EvalReport evaluate_split(data::EpisodeSampler& sampler, int n, dist::Communicator& comm,
                            const std::function<void(int, const TaskEvaluation&)>& progress = {});
  // One-shot runs (names[i] names runs[i]; empty names: "run01", ...).
  RunsReport evaluate_runs(const std::vector<data::Episode>& runs,
                           const std::vector<std::string>& names = {});
  // Runs loaded by data::load_oneshot_runs (named by their folders).
  RunsReport evaluate_runs(const std::vector<data::OneShotRun>& runs);
  // The runs split across the ranks of `comm` as evaluate_split splits
  // tasks (run i adapts with its own generator, split in run order): every
  // rank gets the whole report, the same for any number of ranks.
  RunsReport evaluate_runs_split(const std::vector<data::Episode>& runs, const std::vector<std::string>& names,
                                 dist::Communicator& comm);

  TaskLearner& task_learner() { return *task_; }
  Rng& rng() { return rng_; }
  const MetaConfig& config() const { return cfg_; }

 private:
  RunsReport runs_report(std::vector<TaskEvaluation> all, const std::vector<std::string>& names) const;

  void begin_task();  // the task-optimizer state every task starts from
  MetaConfig cfg_;
  std::unique_ptr<TaskLearner> task_;
  std::unique_ptr<Checkpoint> task_opt_state_;
  std::string task_opt_prefix_;
  std::unique_ptr<Checkpoint> pre_state_;
  std::string pre_prefix_;
  Rng rng_;
  bool warmup_ = false;
};

}  // namespace metanas::meta
