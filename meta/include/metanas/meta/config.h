// MetaConfig: every hyperparameter of meta-training and meta-testing (model,
// task optimizer, meta optimizer, evaluation), with validation and a JSON
// round trip in which unknown keys are an error naming the key and where it
// was found. Defaults are MetaNAS's Omniglot 20-way 1-shot setting
// ("og_metanas" in the MetaNAS code; see docs/algorithms.md for the sources).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "metanas/nas/config.h"
#include "metanas/nas/darts.h"
#include "metanas/nas/genotype.h"
#include "metanas/nas/model.h"
#include "metanas/nas/normalizer.h"
#include "metanas/nas/task_regularizers.h"

namespace metanas::meta {

// Reptile: MetaNAS (DARTS task optimizer + REPTILE over weights and alphas).
// Fomaml: first-order MAML over weights and alphas jointly (T-NAS); over the
//   weights only for fixed architectures.
// AutoMaml: first-order MAML over the weights; one alpha shared by all tasks,
//   updated only in the outer loop.
enum class Algorithm { Reptile, Fomaml, AutoMaml };
// "reptile" (also "metanas"), "fomaml" (also "tnas", "t-nas"), "auto_maml".
const char* algorithm_name(Algorithm a);
Algorithm parse_algorithm(const std::string& s);

enum class ModelKind { Search, ConvNet4, Discrete };
const char* model_kind_name(ModelKind k);  // "search", "convnet4", "discrete"
ModelKind parse_model_kind(const std::string& s);

// The inner-loop optimizer. Adam: the DARTS task optimizer (MetaNAS; Adam
// with its state kept across tasks). Sgd: plain SGD on weights (and alphas)
// from one joint backward (MAML / T-NAS).
enum class InnerOptimizer { Adam, Sgd };
const char* inner_optimizer_name(InnerOptimizer o);  // "adam", "sgd"
InnerOptimizer parse_inner_optimizer(const std::string& s);

// The meta (outer) optimizer over the meta parameters.
enum class MetaOptimizer { Sgd, Adam };
const char* meta_optimizer_name(MetaOptimizer o);  // "sgd", "adam"
MetaOptimizer parse_meta_optimizer(const std::string& s);

// The model that is meta-learned.
struct ModelSection {
  ModelKind kind = ModelKind::Search;
  nas::SearchConfig search;      // kind == Search (defaults: C 28, 4 cells, 3 nodes, 20-way)
  nas::ConvNet4Config convnet4;  // kind == ConvNet4
  nas::DiscreteConfig discrete;  // kind == Discrete ...
  nas::Genotype genotype;        // ... built from this genotype
};

// Episode shapes (what the programs ask the episode sampler for).
struct EpisodeSection {
  int ways = 20;
  int shots = 1;         // support images per class at meta-test
  int train_shots = 15;  // support images per class at meta-training (MetaNAS n_train)
  int queries = 1;       // query images per class
};

// One task's adaptation (the inner loop) during meta-training.
struct TaskSection {
  int steps = 5;  // inner steps per task (architecture + weights each)
  // Support mini-batch size per inner step; 0 = the whole support set in
  // every step. MetaNAS draws 20 images with replacement from the support set
  // for each step (separately for the architecture and the weight step).
  int batch_size = 20;
  bool with_replacement = true;
  InnerOptimizer optimizer = InnerOptimizer::Adam;
  nas::DartsOptions darts;  // Adam inner optimizer (MetaNAS: lr 0.005 / 0.005, betas (0, 0.999))
  float sgd_w_lr = 0.01f;   // Sgd inner optimizer (T-NAS code defaults)
  float sgd_a_lr = 3e-4f;
  float sgd_w_grad_clip = 0.f;  // 0 = off
  // Temperature schedule over the architecture-adaptation steps, restarted
  // for each task (t_max throughout warm-up).
  double t_max = 1.0;
  double t_min = 0.05;
  nas::Normalizer normalizer = nas::Normalizer::Softmax;
  float prune_threshold = 0.01f;  // soft pruning during the forward (MetaNAS alpha_prune_threshold)
  float drop_path_prob = 0.2f;    // drop-path on op outputs during task training
  // Regularized MetaNAS task-level options (nas/task_regularizers.h).
  nas::TaskRegularizers reg;
};

// The outer loop.
struct MetaSection {
  int64_t iterations = 30000;
  int meta_batch_size = 10;
  // Task-parallel semantics (REPTILE/MetaNAS): every task of a meta-batch
  // starts from the task-optimizer state the previous meta-step left and
  // draws from its own generator (split from the learner's in task order),
  // so the tasks are independent and may run concurrently; the meta-step
  // keeps the mean of their end states, summed in task order. Off: the
  // state is carried from task to task (MetaNAS), which serialises them.
  bool task_parallel = false;
  // No architecture updates (inner or outer) during the first N iterations.
  int64_t warmup_iterations = 15000;
  MetaOptimizer optimizer = MetaOptimizer::Sgd;  // REPTILE: SGD (MetaNAS); FOMAML: Adam
  float w_lr = 1.0f;  // MetaNAS REPTILE: 1.0 for weights, 0.6 for alphas
  float a_lr = 0.6f;
  // Cosine annealing to 0: weights over all iterations, alphas over the
  // iterations after warm-up (as MetaNAS's CosineAnnealingLR schedulers).
  bool w_anneal = false;
  bool a_anneal = false;
  // SharpDARTS: cosine-power annealing of both meta learning rates after the
  // warm-up (meta/cosine_power.h; excludes w_anneal / a_anneal).
  bool cosine_power = false;
  float cosine_power_exponent = 2.f;
  float cosine_power_min_lr = 1e-8f;
  float adam_beta1 = 0.9f;  // meta Adam
  float adam_beta2 = 0.999f;
  float adam_eps = 1e-8f;
  // The alphas' meta Adam has betas of its own: T-NAS (like DARTS' architect)
  // uses (0.5, 0.999) for theta and (0.9, 0.999) for the weights.
  float a_adam_beta1 = 0.9f;
  float a_adam_beta2 = 0.999f;
  float a_weight_decay = 0.f;  // meta Adam on alphas (FOMAML/Auto-MAML)
  // Meta-model pruning (MetaNAS prune_alphas): every prune_every iterations
  // (0 = never) set op logits whose weight at t_min is below the threshold to
  // -1e9, so they are never computed again. Only for search networks, only
  // after warm-up.
  float prune_threshold = 0.01f;
  int64_t prune_every = 2500;
  // Evaluate each adapted task model on its query set during meta-training
  // (train-time accuracy for logs; one forward per task). FOMAML always does.
  bool query_eval = true;
};

// Meta-testing.
struct EvalSection {
  int tasks = 600;
  int arch_steps = 50;    // steps adapting architecture and weights ...
  int weight_steps = 50;  // ... then steps adapting the weights only (MetaNAS: 50 + 50)
  int batch_size = 10;    // 0 = whole support set (MetaNAS batch_size_test 10, with replacement)
  bool with_replacement = true;
  float prune_threshold = 0.05f;  // MetaNAS meta-testing script: alpha_prune_threshold 0.05
  bool drop_path = false;         // MetaNAS: use_drop_path_in_meta_testing off
  // Each query image is evaluated in one forward together with the support
  // set (batch-norm statistics never mix query images); otherwise the query
  // set is one batch (transductive, as MetaNAS/MAML).
  bool non_transductive_bn = false;
  // Start each task's task optimizer from the meta-training task-optimizer
  // state (MetaNAS restores it before every test task); else fresh state.
  bool restore_task_optimizer = true;
  int top_genotypes = 5;  // how many of the most common genotypes to report
};

struct MetaConfig {
  Algorithm algorithm = Algorithm::Reptile;
  uint64_t seed = 2;  // MetaNAS default seed
  ModelSection model;
  EpisodeSection episodes;
  TaskSection task;
  MetaSection meta;
  EvalSection eval;

  // Throws metanas::Error naming the bad field (and its value).
  void validate() const;
  // Pretty JSON (2-space indent).
  std::string to_json() const;
  // Missing keys keep their defaults; unknown keys, wrong types and invalid
  // values throw metanas::Error naming the key path ("task.darts.w_lr").
  static MetaConfig from_json(const std::string& text);
  // Applies a partial JSON object on top of this configuration.
  void merge_json(const std::string& text);
  static MetaConfig load(const std::string& path);  // throws naming the path
  void save(const std::string& path) const;

  // Number of classes of the configured model.
  int num_classes() const;
  nas::TemperatureSchedule train_schedule() const;  // {t_max, t_min, task.steps}
  nas::TemperatureSchedule eval_schedule() const;   // {t_max, t_min, eval.arch_steps}

  bool operator==(const MetaConfig& o) const;
  bool operator!=(const MetaConfig& o) const { return !(*this == o); }
};

// Builds the configured model (weights and alphas drawn from rng).
std::unique_ptr<nas::Model> build_model(const ModelSection& m, Rng& rng,
                                        Device device = Device::CPU);

}  // namespace metanas::meta
