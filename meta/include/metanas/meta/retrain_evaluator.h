// RetrainEvaluator: meta-testing by decode and retrain (eval.mode = retrain),
// the evaluation of T-NAS and Auto-MAML. For each test task the one-shot model
// first adapts as in soft evaluation (Evaluator: eval.arch_steps +
// eval.weight_steps); its arg-max genotype is decoded and that discrete
// network is built from scratch, meta-trained with first-order MAML on
// meta-train tasks (eval.retrain.meta_iterations; the T-NAS code trains every
// decoded architecture "from scratch" with MAML), fine-tuned on the task's
// support set with SGD (eval.retrain.steps, lr, batch_size) and scored on its
// query set. Both scores are kept, so one run reports soft and retrained
// accuracy on the same tasks. Retrained networks are cached per genotype
// (eval.retrain.cache, least recently used dropped): tasks that decode the
// same architecture (every task under Auto-MAML) share one meta-training.
#pragma once
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/meta/config.h"
#include "metanas/meta/evaluator.h"
#include "metanas/meta/learner.h"
#include "metanas/nas/config.h"
#include "metanas/nas/genotype.h"
#include "metanas/nas/model.h"

namespace metanas::meta {

// Draws one meta-train episode (on the model's device).
using TaskSource = std::function<data::Episode()>;

// One task, scored both ways.
struct RetrainTaskResult {
  TaskEvaluation soft;       // the adapted one-shot model (genotype: what was decoded)
  TaskEvaluation retrained;  // the decoded network after retraining (same genotype)
};

struct RetrainReport {
  EvalReport retrained;  // the reported result
  EvalReport soft;       // the same tasks scored by the one-shot model
  int networks = 0;      // discrete networks meta-trained (cache misses)
  std::string to_json() const;
  std::string summary() const;
};

class RetrainEvaluator {
 public:
  // cfg.eval.mode should be Retrain (its eval.retrain settings are used);
  // train_tasks is required when eval.retrain.meta_iterations > 0. The meta
  // model must outlive the evaluator.
  RetrainEvaluator(const nas::Model& meta_model, const MetaConfig& cfg, uint64_t seed = 0,
                   TaskSource train_tasks = {});
  ~RetrainEvaluator();

  // The soft evaluator (task-optimizer state, warm-up evaluation).
  Evaluator& soft() { return soft_; }

  RetrainTaskResult evaluate_task(const data::Episode& ep);
  // N tasks (cfg.eval.tasks when n <= 0); progress(done, last) after each.
  RetrainReport evaluate(data::EpisodeSampler& sampler, int n = 0,
                         const std::function<void(int, const RetrainTaskResult&)>& progress = {});
  RetrainReport evaluate(const std::vector<data::Episode>& tasks,
                         const std::function<void(int, const RetrainTaskResult&)>& progress = {});
  // Task-parallel decode and retrain (meta.task_parallel, docs/distributed.md;
  // retrain_split.cpp): the n tasks split across the ranks of `comm` as
  // Evaluator::evaluate_split splits them. Task i adapts and is scored with
  // its own generator (split in task order), and a genotype's network
  // meta-trains on the tasks of sources(genotype text), a stream that depends
  // on the genotype alone, so every score is independent of which rank, and
  // after which other tasks, it runs: every rank gets the same report for any
  // number of ranks. `networks` counts the distinct decoded genotypes.
  // progress sees this rank's tasks.
  RetrainReport evaluate_split(data::EpisodeSampler& sampler, int n, dist::Communicator& comm,
                               const std::function<TaskSource(const std::string& genotype)>& sources,
                               const std::function<void(int, const RetrainTaskResult&)>& progress = {});
  // Called before a genotype's network is meta-trained (for progress lines).
  void on_new_network(std::function<void(const std::string& genotype, int64_t iterations)> f) {
    on_new_ = std::move(f);
  }

  // The discrete network that mirrors a search network (same stem, C, cells,
  // reductions, channel_scale, factorized-reduce padding; affine BN).
  static nas::DiscreteConfig discrete_config(const nas::SearchConfig& s);
  // The configuration a decoded genotype is meta-trained and fine-tuned with:
  // FOMAML, SGD inner loop (eval.retrain.lr, task_steps), meta Adam (meta_lr),
  // fine-tuning eval.retrain.steps weight steps, fresh task state per task.
  static MetaConfig retrain_config(const MetaConfig& cfg, const nas::Genotype& g);

  // The network that scored the last task (its architecture() is the
  // genotype decoded for that task); null before the first task.
  const nas::Model* last_network() const { return last_; }
  int networks_built() const { return built_; }

 private:
  struct Entry;
  Entry& network_for(const nas::Genotype& g);
  Evaluator& network_evaluator(const nas::Genotype& g);  // network_for(g)'s evaluator

  MetaConfig cfg_;
  Evaluator soft_;
  TaskSource train_tasks_;
  uint64_t seed_;
  std::list<std::unique_ptr<Entry>> cache_;  // most recently used first
  const nas::Model* last_ = nullptr;
  int built_ = 0;
  std::function<void(const std::string&, int64_t)> on_new_;
};

}  // namespace metanas::meta
