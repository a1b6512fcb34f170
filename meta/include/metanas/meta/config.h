// MetaConfig: every hyperparameter of meta-training and meta-testing (model,
// task optimizer, meta optimizer, evaluation), with validation and a JSON
// round trip in which unknown keys are an error naming the key and where it
// was found. Defaults are MetaNAS's Omniglot 20-way 1-shot setting
// ("og_metanas" in the MetaNAS code; see docs/algorithms.md for the sources).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "metanas/meta/rl/agent.h"
#include "metanas/meta/rl/alpha_env.h"
#include "metanas/nas/config.h"
#include "metanas/nas/darts.h"
#include "metanas/nas/genotype.h"
#include "metanas/nas/mamlpp_convnet.h"
#include "metanas/nas/model.h"
#include "metanas/nas/normalizer.h"
#include "metanas/nas/task_regularizers.h"

namespace metanas::meta {

// Reptile: MetaNAS (DARTS task optimizer + REPTILE over weights and alphas).
// Fomaml: first-order MAML over weights and alphas jointly (T-NAS); over the
//   weights only for fixed architectures.
// AutoMaml: first-order MAML over the weights; one alpha shared by all tasks,
//   updated only in the outer loop.
// Atnas: AT-NAS, a meta-learned supernet with evolved subnets (meta/atnas.h).
enum class Algorithm { Reptile, Fomaml, AutoMaml, Atnas };
// "reptile" (also "metanas"), "fomaml" (also "tnas", "t-nas"), "auto_maml",
// "atnas" (also "at-nas", "at_nas").
const char* algorithm_name(Algorithm a);
Algorithm parse_algorithm(const std::string& s);

enum class ModelKind { Search, ConvNet4, Discrete, ConvNet4pp };
const char* model_kind_name(ModelKind k);  // "search", "convnet4", "discrete", "convnet4pp"
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

// How meta-testing scores a task. Soft: the adapted one-shot model itself
// (MetaNAS). Retrain: decode the adapted task's genotype, build that discrete
// network from scratch, train it and score it (T-NAS, Auto-MAML; see
// RetrainEvaluator and eval.retrain).
enum class EvalMode { Soft, Retrain };
const char* eval_mode_name(EvalMode m);  // "soft", "retrain"
EvalMode parse_eval_mode(const std::string& s);

// Auto-MAML's data for the architecture. None: theta from the same tasks'
// query gradients as w. Images: the T-NAS code's auto_maml.py split: each
// meta-train class's images are cut at meta.auto_maml_train_portion (0.5,
// its --train_portion), w is meta-learned on tasks from the first part and
// theta on tasks from the held part, theta first in every iteration.
enum class AutoMamlSplit { None, Images };
const char* auto_maml_split_name(AutoMamlSplit s);  // "none", "images"
AutoMamlSplit parse_auto_maml_split(const std::string& s);

// The model that is meta-learned.
struct ModelSection {
  ModelKind kind = ModelKind::Search;
  nas::SearchConfig search;      // kind == Search (defaults: C 28, 4 cells, 3 nodes, 20-way)
  nas::ConvNet4Config convnet4;  // kind == ConvNet4
  nas::DiscreteConfig discrete;  // kind == Discrete ...
  nas::Genotype genotype;        // ... built from this genotype
  nas::ConvNet4ppConfig convnet4pp;  // kind == ConvNet4pp (MAML++ 4-conv, per-step BN)
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
  // Task-parallel semantics (REPTILE/MetaNAS, FOMAML/T-NAS; required by
  // distributed runs, docs/distributed.md): every task of a meta-batch
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
  // L2 weight decay of the meta Adam on the weights, added to the gradient as
  // torch.optim.Adam's weight_decay (T-NAS's from-scratch trainer: 3e-4).
  float w_weight_decay = 0.f;
  // Meta-model pruning (MetaNAS prune_alphas): every prune_every iterations
  // (0 = never) set op logits whose weight at t_min is below the threshold to
  // -1e9, so they are never computed again. Only for search networks, only
  // after warm-up.
  float prune_threshold = 0.01f;
  int64_t prune_every = 2500;
  // Evaluate each adapted task model on its query set during meta-training
  // (train-time accuracy for logs; one forward per task). FOMAML always does.
  bool query_eval = true;
  // Auto-MAML only: where theta's gradient comes from (see AutoMamlSplit).
  AutoMamlSplit auto_maml_split = AutoMamlSplit::None;
  double auto_maml_train_portion = 0.5;
};

// eval.mode = retrain: the decoded network is trained from scratch (seeded
// from the run's seed) with first-order MAML on meta-train tasks for
// meta_iterations (the T-NAS code trains every decoded architecture this
// way, "from scratch", to convergence; 0 = skip), then fine-tuned on the test
// task's support set with SGD for `steps` steps (its update_step_test) and
// scored on the query set. The network mirrors the search network (C,
// layers, reductions, stem; affine BN). Networks are cached per genotype, so
// tasks that decode the same architecture share one meta-training.
struct RetrainSection {
  int steps = 10;          // fine-tuning steps on the support set (T-NAS --update_step_test)
  float lr = 0.01f;        // their SGD learning rate (T-NAS --update_lr_w)
  int batch_size = 0;      // 0 = whole support set (T-NAS)
  int64_t meta_iterations = 0;  // FOMAML iterations of the decoded network on meta-train tasks
  int meta_batch_size = 4;      // T-NAS --meta_batch_size
  float meta_lr = 1e-3f;        // meta Adam on w (T-NAS --meta_lr_w)
  int task_steps = 5;           // inner SGD steps during that meta-training (T-NAS --update_step)
  // That meta Adam's L2 weight decay (meta.w_weight_decay of the retraining;
  // T-NAS meta_auto_maml_train.py: --weight_decay 3e-4 on every weight).
  float meta_weight_decay = 0.f;
  // A BN after each pool of the decoded network (MetaNAS PoolBN) or none
  // (T-NAS model.py); DiscreteConfig::pool_bn.
  bool pool_bn = true;
  int cache = 16;               // retrained networks kept (most recently used)
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
  EvalMode mode = EvalMode::Soft;
  RetrainSection retrain;  // mode == Retrain
};

// Meta-RL pre-optimisation of the architecture (reg-MetaNAS; meta/rl/): before
// each task's adaptation an agent edits the task model's alphas, one trial
// per cell type (normal, then reduce from the normal trial's best state).
// Meta-training trains the agent across tasks; meta-testing runs
// agent.test_episodes episodes per task without updates. Only for search
// networks and sequential tasks (not meta.task_parallel).
struct MetaRlSection {
  rl::AgentKind agent = rl::AgentKind::None;  // "none", "ppo", "random"
  bool during_warmup = true;  // also pre-optimise in warm-up (the reference always does)
  uint64_t seed = 7;          // the agent's and environments' generator
  rl::AgentOptions agent_opt;  // JSON: the AgentOptions fields directly in "meta_rl"
  rl::AlphaEnvOptions env;     // JSON: likewise
};

// MAML++ training changes (Antoniou et al. 2019) as options of the FOMAML /
// T-NAS / Auto-MAML learners (task.optimizer "sgd"); see meta/mamlpp.h.
// Epochs are meta-iterations / epoch_iterations (0-based, as the reference's
// current_epoch).
struct MamlppSection {
  bool lslr = false;           // learn per-step per-tensor inner learning rates
  bool msl = false;            // multi-step loss while epoch < msl_epochs
  int msl_epochs = 10;
  bool second_order = false;   // second-order MAML while epoch > first_order_epoch
  int first_order_epoch = -1;  // reference first_order_to_second_order_epoch (-1: always)
  int64_t epoch_iterations = 500;
  // Cosine annealing of the meta learning rates per epoch (not per
  // iteration) to min_w_lr, as the reference's CosineAnnealingLR(T_max =
  // epochs, eta_min); only with meta.w_anneal.
  bool cosine_per_epoch = false;
  float min_w_lr = 0.f;
  float fd_eps = 0.01f;         // Hessian-vector products: step fd_eps / ||v|| (as DARTS)
  float meta_grad_clamp = 0.f;  // clamp meta-gradients to [-c, c] (reference: 10 on MiniImageNet); 0 = off
  bool enabled() const { return lslr || msl || second_order; }
};

// AT-NAS (algorithm "atnas", docs/algorithms.md "AT-NAS"): the search
// network is the supernet; each task trains one subnet (an Encoding) with the
// inner loop (task.optimizer must be sgd: only the chosen ops get gradients,
// so nothing else moves), then the shared weights get a REPTILE or FOMAML
// meta-update. Evolution options as nas::EvolutionOptions.
struct AtnasSection {
  std::string meta_update = "reptile";  // "reptile" | "fomaml"
  // Subnet per meta-training task: "population" (the next unscored candidate
  // of the evolution carried across meta-batches; its fitness is the query
  // score after adaptation) or "uniform" (SPOS: uniform random subnets).
  std::string sampling = "population";
  int population = 50;
  int top_k = 10;
  int mutants = 25;
  int crossovers = 25;
  int generations = 20;  // per meta-test task
  float mutation_prob = 0.1f;
  std::string fitness = "accuracy";  // "accuracy" | "loss" (fitness = -loss)
  int fitness_steps = 5;  // adaptation steps before a meta-test fitness evaluation
  // Meta-test fitness adaptation of the stem: "shared" (frozen at the
  // supernet's weights, so its output on each batch is computed once per task
  // and shared by all candidates) or "adapted" (trained with the rest).
  std::string fitness_stem = "shared";
  // Support images per class held out to score meta-test candidates (the
  // rest trains them); with shots <= holdout_shots the whole support set
  // both trains and scores (1-shot tasks).
  int holdout_shots = 1;
  // Meta-test: evolve per task from the meta-trained population (true), or
  // take the meta-training elite's best subnet for every task (false).
  bool test_search = true;
};

struct MetaConfig {
  Algorithm algorithm = Algorithm::Reptile;
  uint64_t seed = 2;  // MetaNAS default seed
  ModelSection model;
  EpisodeSection episodes;
  TaskSection task;
  MetaSection meta;
  EvalSection eval;
  MetaRlSection meta_rl;
  MamlppSection mamlpp;
  AtnasSection atnas;

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
