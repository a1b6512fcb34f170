// RetrainEvaluator: decode each adapted task's genotype, meta-train that
// discrete network from scratch (FOMAML, cached per genotype), fine-tune it
// on the support set and score it (T-NAS / Auto-MAML evaluation).
#include "metanas/meta/retrain_evaluator.h"

#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "metanas/engine/error.h"

namespace metanas::meta {

using nlohmann::json;

namespace {
// The retrained networks' own streams, apart from the soft evaluator's.
constexpr uint64_t kRetrainSalt = 0x7265747261696eull;  // "retrain"
}  // namespace

struct RetrainEvaluator::Entry {
  std::string key;  // genotype text
  std::unique_ptr<MetaLearner> learner;
  std::unique_ptr<Evaluator> eval;
};

nas::DiscreteConfig RetrainEvaluator::discrete_config(const nas::SearchConfig& s) {
  nas::DiscreteConfig d;
  d.in_channels = s.in_channels;
  d.image_size = s.image_size;
  d.num_classes = s.num_classes;
  d.C = s.C;
  d.layers = s.layers;
  d.stem_multiplier = s.stem_multiplier;
  d.channel_scale = s.channel_scale;
  d.reduction_layers = s.resolved_reductions();
  d.stem = s.stem;
  d.reduce_pad_odd = s.reduce_pad_odd;
  return d;
}

MetaConfig RetrainEvaluator::retrain_config(const MetaConfig& cfg, const nas::Genotype& g) {
  const RetrainSection& rt = cfg.eval.retrain;
  MetaConfig r = cfg;
  r.algorithm = Algorithm::Fomaml;
  r.model.kind = ModelKind::Discrete;
  r.model.discrete = discrete_config(cfg.model.search);
  r.model.discrete.pool_bn = rt.pool_bn;
  r.model.genotype = g;
  r.task.steps = rt.task_steps;
  r.task.batch_size = rt.batch_size;
  r.task.optimizer = InnerOptimizer::Sgd;
  r.task.sgd_w_lr = rt.lr;
  r.task.sgd_w_grad_clip = 0.f;
  r.task.drop_path_prob = 0.f;
  r.meta.iterations = rt.meta_iterations;
  r.meta.meta_batch_size = rt.meta_batch_size;
  r.meta.warmup_iterations = 0;
  r.meta.task_parallel = false;
  r.meta.optimizer = MetaOptimizer::Adam;
  r.meta.w_lr = rt.meta_lr;
  r.meta.w_weight_decay = rt.meta_weight_decay;
  r.meta.w_anneal = r.meta.a_anneal = false;
  r.meta.adam_beta1 = 0.9f;
  r.meta.adam_beta2 = 0.999f;
  r.meta.prune_every = 0;
  r.meta.auto_maml_split = AutoMamlSplit::None;
  r.eval.mode = EvalMode::Soft;
  r.eval.arch_steps = 0;
  r.eval.weight_steps = rt.steps;
  r.eval.batch_size = rt.batch_size;
  r.eval.drop_path = false;
  r.eval.restore_task_optimizer = false;
  return r;
}

RetrainEvaluator::RetrainEvaluator(const nas::Model& meta_model, const MetaConfig& cfg, uint64_t seed,
                                   TaskSource train_tasks)
    : cfg_(cfg), soft_(meta_model, cfg, seed), train_tasks_(std::move(train_tasks)), seed_(seed) {
  MN_CHECK(cfg_.model.kind == ModelKind::Search && meta_model.alphas(),
           "RetrainEvaluator: decode and retrain needs a search network (model.kind 'search')");
  MN_CHECK(cfg_.eval.retrain.meta_iterations == 0 || train_tasks_,
           "RetrainEvaluator: eval.retrain.meta_iterations is ", cfg_.eval.retrain.meta_iterations,
           " but no meta-train tasks were given to train the decoded networks on");
}

RetrainEvaluator::~RetrainEvaluator() = default;

RetrainEvaluator::Entry& RetrainEvaluator::network_for(const nas::Genotype& g) {
  const std::string key = g.to_text();
  for (auto it = cache_.begin(); it != cache_.end(); ++it)
    if ((*it)->key == key) {
      cache_.splice(cache_.begin(), cache_, it);
      return *cache_.front();
    }
  const MetaConfig rc = retrain_config(cfg_, g);
  auto e = std::make_unique<Entry>();
  e->key = key;
  // From scratch: every network is initialised from the run's seed.
  e->learner = make_meta_learner(rc, soft_.task_learner().model().device());
  const int64_t iters = rc.meta.iterations;
  if (on_new_) on_new_(key, iters);
  std::vector<data::Episode> batch(rc.meta.meta_batch_size);
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& t : batch) t = train_tasks_();
    e->learner->meta_step(batch);
  }
  e->eval = std::make_unique<Evaluator>(e->learner->meta_model(), rc, seed_ ^ kRetrainSalt);
  ++built_;
  cache_.push_front(std::move(e));
  while (static_cast<int>(cache_.size()) > cfg_.eval.retrain.cache) cache_.pop_back();
  return *cache_.front();
}

RetrainTaskResult RetrainEvaluator::evaluate_task(const data::Episode& ep) {
  RetrainTaskResult r;
  r.soft = soft_.evaluate_task(ep);
  const auto g = soft_.task_learner().model().architecture();
  MN_CHECK(g.has_value(), "RetrainEvaluator: the adapted model has no architecture to decode");
  r.soft.genotype = g->to_text();  // also for Auto-MAML, whose alphas every task shares
  Entry& e = network_for(*g);
  r.retrained = e.eval->evaluate_task(ep);
  r.retrained.genotype = r.soft.genotype;
  last_ = &e.eval->task_learner().model();
  return r;
}

namespace {
RetrainReport finish(std::vector<RetrainTaskResult>& rs, int top, int networks) {
  std::vector<TaskEvaluation> a, b;
  for (auto& r : rs) {
    a.push_back(std::move(r.retrained));
    b.push_back(std::move(r.soft));
  }
  RetrainReport rep;
  rep.retrained = summarize(std::move(a), top);
  rep.soft = summarize(std::move(b), top);
  rep.networks = networks;
  return rep;
}
}  // namespace

RetrainReport RetrainEvaluator::evaluate(data::EpisodeSampler& sampler, int n,
                                         const std::function<void(int, const RetrainTaskResult&)>& progress) {
  if (n <= 0) n = cfg_.eval.tasks;
  std::vector<RetrainTaskResult> rs;
  rs.reserve(n);
  const int built0 = built_;
  for (int i = 0; i < n; ++i) {
    rs.push_back(evaluate_task(sampler.sample()));
    if (progress) progress(i + 1, rs.back());
  }
  return finish(rs, cfg_.eval.top_genotypes, built_ - built0);
}

RetrainReport RetrainEvaluator::evaluate(const std::vector<data::Episode>& tasks,
                                         const std::function<void(int, const RetrainTaskResult&)>& progress) {
  std::vector<RetrainTaskResult> rs;
  rs.reserve(tasks.size());
  const int built0 = built_;
  for (size_t i = 0; i < tasks.size(); ++i) {
    rs.push_back(evaluate_task(tasks[i]));
    if (progress) progress(static_cast<int>(i + 1), rs.back());
  }
  return finish(rs, cfg_.eval.top_genotypes, built_ - built0);
}

std::string RetrainReport::to_json() const {
  json j;
  j["mode"] = "retrain";
  j["retrained"] = json::parse(retrained.to_json());
  j["soft"] = json::parse(soft.to_json());
  j["networks"] = networks;
  return j.dump(2);
}

std::string RetrainReport::summary() const {
  std::ostringstream os;
  os << "decode and retrain (" << networks << " network" << (networks == 1 ? "" : "s") << " retrained):\n"
     << retrained.summary() << "soft one-shot model on the same tasks:\n"
     << soft.summary();
  return os.str();
}

// For evaluate_split (retrain_split.cpp): Entry is private to this file.
Evaluator& RetrainEvaluator::network_evaluator(const nas::Genotype& g) { return *network_for(g).eval; }

}  // namespace metanas::meta
