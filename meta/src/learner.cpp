// MetaLearner: shared outer-loop state (meta model, meta optimizers, task
// learner, Rng, iteration), learning-rate schedules, meta-model pruning and
// checkpointing; make_meta_learner.
#include "metanas/meta/learner.h"
#include "metanas/meta/rl/meta_rl.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/meta/atnas.h"
#include "metanas/meta/cosine_power.h"
#include "metanas/meta/fomaml.h"
#include "metanas/meta/reptile.h"
#include "metanas/nas/search_network.h"

namespace metanas::meta {

using nlohmann::json;

namespace {
float value_or_nan(const Tensor& t) {
  return t.defined() ? t.item() : std::numeric_limits<float>::quiet_NaN();
}
// The learner's own generator, distinct from the model-initialisation stream
// that uses cfg.seed directly.
constexpr uint64_t kLearnerSeedSalt = 0x6d6574616c726e72ull;  // "metalrnr"
}  // namespace

float MetaStepStats::query_loss_value() const { return value_or_nan(query_loss); }
float MetaStepStats::query_acc_value() const { return value_or_nan(query_acc); }
float MetaStepStats::support_loss_value() const { return value_or_nan(support_loss); }
float MetaStepStats::support_acc_value() const { return value_or_nan(support_acc); }

MetaLearner::MetaLearner(const MetaConfig& cfg, std::unique_ptr<nas::Model> model,
                         const TaskLearnerOptions& task_options)
    : cfg_(cfg), model_(std::move(model)), rng_(cfg.seed ^ kLearnerSeedSalt), task_options_(task_options) {
  cfg_.validate();
  MN_CHECK(model_, "MetaLearner: no meta model given");
  MN_CHECK(model_->num_classes() == cfg_.episodes.ways, "MetaLearner: the model has ",
           model_->num_classes(), " classes but the configuration asks for ", cfg_.episodes.ways,
           "-way episodes");
  task_ = std::make_unique<TaskLearner>(*model_, task_options);
}

// The per-task learners (their tensors and graphs) go before their streams.
MetaLearner::~MetaLearner() { stream_tasks_.clear(); }

GraphCache::Stats MetaLearner::graph_stats() const {
  GraphCache::Stats sum;
  auto add = [&](const TaskLearner& t) {
    if (const GraphCache::Stats* g = t.graph_stats()) {
      sum.eager += g->eager, sum.captures += g->captures, sum.replays += g->replays;
      sum.uncapturable += g->uncapturable, sum.invalidated += g->invalidated, sum.evicted += g->evicted;
    }
  };
  add(*task_);
  for (const auto& t : stream_tasks_) add(*t);
  return sum;
}

void MetaLearner::set_execution(const ExecutionOptions& e) {
  MN_CHECK(!e.task_streams || cfg_.meta.task_parallel,
           "task streams (run.task_streams) need the task-parallel semantics (meta.task_parallel=true): the "
           "carried task-optimizer state of the sequential semantics serialises the tasks");
  MN_CHECK(!e.task_streams || !task_->pre_optimizer(),
           "task streams (run.task_streams) do not support a task pre-optimizer (meta_rl)");
  exec_ = e;
  task_->set_graphs(e.cuda_graphs);
  for (auto& t : stream_tasks_) t->set_graphs(e.cuda_graphs);
  if (!e.task_streams) {
    stream_tasks_.clear();
    streams_.clear();
  }
}

void MetaLearner::make_meta_optimizers() {
  const auto& m = cfg_.meta;
  ParamSet* A = model_->alphas();
  if (m.optimizer == MetaOptimizer::Sgd) {
    w_opt_ = std::make_unique<Sgd>(model_->weights(), m.w_lr);
    if (A) a_opt_ = std::make_unique<Sgd>(*A, m.a_lr);
  } else {
    w_opt_ = std::make_unique<Adam>(model_->weights(), m.w_lr, m.adam_beta1, m.adam_beta2, m.adam_eps, m.w_weight_decay);
    if (A)
      a_opt_ = std::make_unique<Adam>(*A, m.a_lr, m.a_adam_beta1, m.a_adam_beta2, m.adam_eps, m.a_weight_decay);
  }
}

MetaStepStats MetaLearner::begin_step(const std::vector<data::Episode>& tasks, const char* who) const {
  MN_CHECK(!tasks.empty(), who, ": empty meta-batch");
  MetaStepStats st;
  st.warmup = in_warmup();
  st.w_lr = next_w_lr();
  st.a_lr = st.warmup ? 0.f : next_a_lr();
  st.tasks = static_cast<int>(tasks.size());
  return st;
}

MetaStepStats MetaLearner::meta_step_split(const std::vector<data::Episode>&, const std::vector<data::Episode>&) {
  MN_THROW("MetaLearner::meta_step_split: only auto_maml with meta.auto_maml_split takes search tasks (this "
           "learner is '", algorithm_name(algorithm()), "', split '", auto_maml_split_name(cfg_.meta.auto_maml_split),
           "')");
}

void MetaLearner::finish_step(MetaStepStats& st, bool update_alphas) {
  w_opt_->set_lr(st.w_lr);
  w_opt_->step();
  if (update_alphas) {
    a_opt_->set_lr(st.a_lr);
    a_opt_->step();
  }
  ++iteration_;
  st.iteration = iteration_;
  st.pruned = maybe_prune();
}

namespace {
void accumulate(Tensor& sum, const Tensor& v) {
  if (!v.defined()) return;
  sum = sum.defined() ? add(sum, v) : v;
}
}  // namespace

void MetaLearner::StepSums::add_support(const AdaptResult& r) {
  accumulate(s_loss, r.last_support_loss);
  accumulate(s_acc, r.last_support_acc);
}

void MetaLearner::StepSums::add_query(const Tensor& loss, const Tensor& acc) {
  accumulate(q_loss, loss);
  accumulate(q_acc, acc);
}

void MetaLearner::StepSums::mean_into(MetaStepStats& st) const {
  NoGradGuard ng;
  const float inv = 1.f / static_cast<float>(st.tasks);
  if (q_loss.defined()) st.query_loss = mul_scalar(q_loss, inv), st.query_acc = mul_scalar(q_acc, inv);
  if (s_loss.defined()) st.support_loss = mul_scalar(s_loss, inv), st.support_acc = mul_scalar(s_acc, inv);
}

bool MetaLearner::in_warmup() const { return iteration_ < cfg_.meta.warmup_iterations; }

float MetaLearner::cosine(int64_t t, int64_t T) {
  if (T <= 0) return 1.f;
  if (t >= T) return 0.f;
  const double pi = 3.14159265358979323846;
  return static_cast<float>(0.5 * (1.0 + std::cos(pi * static_cast<double>(t) / static_cast<double>(T))));
}

float MetaLearner::next_w_lr() const {
  const auto& m = cfg_.meta;
  if (m.w_anneal && cfg_.mamlpp.cosine_per_epoch) {
    // MAML++: CosineAnnealingLR(T_max = epochs, eta_min = min_w_lr) stepped per epoch.
    const int64_t E = cfg_.mamlpp.epoch_iterations;
    const float lo = cfg_.mamlpp.min_w_lr;
    return lo + (m.w_lr - lo) * cosine(iteration_ / E, m.iterations / E);
  }
  if (m.cosine_power)
    return static_cast<float>(cosine_power_lr(iteration_, m.iterations, m.warmup_iterations, m.w_lr,
                                              m.cosine_power_min_lr, m.cosine_power_exponent));
  return m.w_anneal ? m.w_lr * cosine(iteration_, m.iterations) : m.w_lr;
}

float MetaLearner::next_a_lr() const {
  const auto& m = cfg_.meta;
  if (m.cosine_power)
    return static_cast<float>(cosine_power_lr(iteration_, m.iterations, m.warmup_iterations, m.a_lr,
                                              m.cosine_power_min_lr, m.cosine_power_exponent));
  if (!m.a_anneal) return m.a_lr;
  const int64_t t = std::max<int64_t>(0, iteration_ - m.warmup_iterations);
  return m.a_lr * cosine(t, m.iterations - m.warmup_iterations);
}

int MetaLearner::maybe_prune() {
  const auto& m = cfg_.meta;
  if (m.prune_every <= 0 || iteration_ % m.prune_every != 0) return 0;
  if (iteration_ <= m.warmup_iterations) return 0;
  return model_->prune_architecture(m.prune_threshold, static_cast<float>(cfg_.task.t_min), cfg_.task.normalizer);
}

void MetaLearner::save_state(Checkpoint& ck) const {
  ck.put_params("meta.w.", model_->weights());
  if (const ParamSet* A = model_->alphas()) ck.put_params("meta.a.", *A);
  w_opt_->save_state(ck, "meta_opt.w.");
  if (a_opt_) a_opt_->save_state(ck, "meta_opt.a.");
  task_->save_state(ck, "task_opt.");
  if (const TaskPreOptimizer* pre = task_->pre_optimizer()) pre->save_state(ck, "meta_rl.");
  json meta;
  try {
    meta = json::parse(ck.metadata_json());
  } catch (const std::exception&) {
    meta = json::object();
  }
  if (!meta.is_object()) meta = json::object();
  meta["meta_learner"] = {{"algorithm", algorithm_name(algorithm())},
                          {"iteration", iteration_},
                          {"rng", rng_.state()},
                          {"model_kind", model_->kind()},
                          {"config", json::parse(cfg_.to_json())}};
  ck.set_metadata_json(meta.dump());
}

void MetaLearner::load_state(const Checkpoint& ck) {
  json meta;
  try {
    meta = json::parse(ck.metadata_json());
  } catch (const std::exception& e) {
    MN_THROW("MetaLearner::load_state: the checkpoint metadata is not valid JSON: ", e.what());
  }
  MN_CHECK(meta.is_object() && meta.contains("meta_learner"),
           "MetaLearner::load_state: the checkpoint has no 'meta_learner' metadata (not a meta-training "
           "checkpoint?)");
  const json& m = meta.at("meta_learner");
  std::string alg, rng_state, kind;
  int64_t it = 0;
  try {
    alg = m.at("algorithm").get<std::string>();
    it = m.at("iteration").get<int64_t>();
    rng_state = m.at("rng").get<std::string>();
    kind = m.value("model_kind", model_->kind());
  } catch (const std::exception& e) {
    MN_THROW("MetaLearner::load_state: malformed 'meta_learner' metadata: ", e.what());
  }
  MN_CHECK(parse_algorithm(alg) == algorithm(), "MetaLearner::load_state: the checkpoint was written by '",
           alg, "' but this learner is '", algorithm_name(algorithm()), "'");
  MN_CHECK(kind == model_->kind(), "MetaLearner::load_state: the checkpoint holds a '", kind,
           "' model but this learner has a '", model_->kind(), "' model");
  MN_CHECK(it >= 0, "MetaLearner::load_state: negative iteration ", it);
  const bool has_a = model_->alphas() != nullptr;
  MN_CHECK(has_a == ck.has("meta_opt.a." + std::string(cfg_.meta.optimizer == MetaOptimizer::Sgd ? "sgd" : "adam") + ".hparams"),
           "MetaLearner::load_state: the checkpoint ", has_a ? "lacks" : "has",
           " architecture-optimizer state (meta_opt.a.*) for a model ", has_a ? "with" : "without",
           " alphas, or was saved with another meta optimizer");
  Rng r;
  r.set_state(rng_state);
  ck.get_params("meta.w.", model_->weights());
  if (ParamSet* A = model_->alphas()) ck.get_params("meta.a.", *A);
  w_opt_->load_state(ck, "meta_opt.w.");
  if (a_opt_) a_opt_->load_state(ck, "meta_opt.a.");
  task_->load_state(ck, "task_opt.");
  if (TaskPreOptimizer* pre = task_->pre_optimizer()) pre->load_state(ck, "meta_rl.");
  rng_ = r;
  iteration_ = it;
}

void MetaLearner::save(const std::string& path) const {
  Checkpoint ck;
  save_state(ck);
  ck.save(path);
}

void MetaLearner::load(const std::string& path) {
  Checkpoint ck = Checkpoint::load(path);
  try {
    load_state(ck);
  } catch (const Error& e) {
    MN_THROW(path, ": ", e.what());
  }
}

namespace {
std::unique_ptr<MetaLearner> make_learner(const MetaConfig& cfg, std::unique_ptr<nas::Model> meta_model) {
  switch (cfg.algorithm) {
    case Algorithm::Reptile: return std::make_unique<Reptile>(cfg, std::move(meta_model));
    case Algorithm::Fomaml:
    case Algorithm::AutoMaml: return std::make_unique<Fomaml>(cfg, std::move(meta_model));
    case Algorithm::Atnas: return std::make_unique<Atnas>(cfg, std::move(meta_model));
  }
  MN_THROW("make_meta_learner: unknown algorithm");
}
}  // namespace

std::unique_ptr<MetaLearner> make_meta_learner(const MetaConfig& cfg, std::unique_ptr<nas::Model> meta_model) {
  std::unique_ptr<MetaLearner> l = make_learner(cfg, std::move(meta_model));
  // The meta-RL agent edits each task's architecture before its adaptation.
  if (auto pre = rl::make_meta_rl(cfg, true)) l->task_learner().set_pre_optimizer(pre);
  return l;
}

std::unique_ptr<MetaLearner> make_meta_learner(const MetaConfig& cfg, Device device) {
  cfg.validate();
  Rng rng(cfg.seed);
  return make_meta_learner(cfg, build_model(cfg.model, rng, device));
}

}  // namespace metanas::meta
