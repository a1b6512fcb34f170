// The meta-RL pre-optimisation hook: two agent trials per task (normal, then
// reduce cell), the best estimated state loaded into the task model.
#include "metanas/meta/rl/meta_rl.h"

#include <nlohmann/json.hpp>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::meta::rl {

MetaRlPreOptimizer::MetaRlPreOptimizer(const MetaRlSection& cfg, const nas::DartsOptions& darts, bool training)
    : cfg_(cfg), darts_opt_(darts), training_(training), rng_(cfg.seed) {
  MN_CHECK(cfg.agent != AgentKind::None, "MetaRlPreOptimizer: meta_rl.agent is 'none'");
  darts_opt_.warmup = false;
}

MetaRlPreOptimizer::~MetaRlPreOptimizer() = default;

void MetaRlPreOptimizer::attach(nas::Model& task_model, const nas::ForwardContext& base_ctx,
                                const nas::ForwardContext& report_ctx) {
  net_ = dynamic_cast<nas::SearchNetwork*>(&task_model);
  MN_CHECK(net_ != nullptr, "meta_rl: the agent edits architecture weights, but the task model is a '",
           task_model.kind(), "' model (needs a search network)");
  ctx_ = base_ctx;
  ctx_.rng = &rng_;
  report_ctx_ = report_ctx;
  darts_ = std::make_unique<nas::DartsTaskOptimizer>(*net_, darts_opt_);
  auto est = [this]() { return estimate(); };
  normal_ = std::make_unique<AlphaEnv>(*net_, nas::CellType::Normal, cfg_.env, est, rng_);
  reduce_ = std::make_unique<AlphaEnv>(*net_, nas::CellType::Reduce, cfg_.env, est, rng_);
  // The agent's generator is its own (seeded apart from the environments').
  agent_ = make_agent(cfg_.agent, normal_->obs_size(), normal_->action_count(), cfg_.agent_opt, cfg_.seed + 1);
}

float MetaRlPreOptimizer::estimate() {
  // disable_pairwise_alphas: the pair weights keep their values through the
  // step (their Adam moments still advance), so the accuracy below and every
  // state the environments keep carry the pair weights they started from.
  std::vector<std::pair<int, Tensor>> pairs;
  if (cfg_.env.disable_pairwise_alphas)
    for (nas::CellType t : {nas::CellType::Normal, nas::CellType::Reduce})
      for (int i = 0; i < net_->config().nodes; ++i) {
        const int k = net_->pair_index(t, i);
        pairs.push_back({k, (*net_->alphas())[k].clone()});
      }
  darts_->step(batch_, batch_, ctx_);
  for (const auto& [k, v] : pairs) (*net_->alphas())[k].copy_(v);
  NoGradGuard ng;
  nas::ForwardContext c = ctx_;
  c.drop_path_prob = 0.f;
  return accuracy(net_->forward(batch_.x, c), batch_.y).item();
}

void MetaRlPreOptimizer::before_adapt(const data::Episode& ep, bool warmup) {
  MN_CHECK(net_ != nullptr, "MetaRlPreOptimizer: before_adapt before attach");
  if (warmup && !cfg_.during_warmup) return;
  batch_ = nas::Batch{ep.support_x, ep.support_y};
  MetaRlTaskLog log;
  log.sparse_before = net_->sparse_param_count(report_ctx_);
  double ret_sum = 0;
  float final_acc = 0.f;
  bool first = true;
  for (AlphaEnv* env : {normal_.get(), reduce_.get()}) {
    env->begin_trial();
    const TrialLog t = training_ ? agent_->train_trial(*env) : agent_->test_trial(*env);
    env->load_best();
    if (first) log.baseline_acc = env->first_baseline();
    first = false;
    if (env->best_accuracy() > 0.f) final_acc = env->best_accuracy();
    for (float r : t.episode_returns) ret_sum += r;
    log.episodes += static_cast<int>(t.episode_returns.size());
    log.estimations += env->estimations_in_trial();
    log.updates += t.updates;
  }
  log.final_acc = final_acc > 0.f ? final_acc : log.baseline_acc;
  log.mean_return = log.episodes ? ret_sum / log.episodes : 0.0;
  log.sparse_after = net_->sparse_param_count(report_ctx_);
  batch_ = nas::Batch{};
  logs_.push_back(log);
}

void MetaRlPreOptimizer::save_state(Checkpoint& ck, const std::string& prefix) const {
  MN_CHECK(agent_ != nullptr, "MetaRlPreOptimizer: save_state before attach");
  put_string(ck, prefix + "kind", agent_kind_name(cfg_.agent));
  put_string(ck, prefix + "rng", rng_.state());
  agent_->save_state(ck, prefix + "agent.");
  darts_->save_state(ck, prefix + "darts.");
}

void MetaRlPreOptimizer::load_state(const Checkpoint& ck, const std::string& prefix) {
  MN_CHECK(agent_ != nullptr, "MetaRlPreOptimizer: load_state before attach");
  MN_CHECK(ck.has(prefix + "kind"), "meta_rl: the checkpoint has no meta-RL agent state ('", prefix,
           "*'): it was not trained with meta_rl.agent '", agent_kind_name(cfg_.agent), "'");
  const std::string kind = get_string(ck, prefix + "kind");
  MN_CHECK(kind == agent_kind_name(cfg_.agent), "meta_rl: the checkpoint holds a '", kind,
           "' agent but the configuration asks for '", agent_kind_name(cfg_.agent), "'");
  rng_.set_state(get_string(ck, prefix + "rng"));
  agent_->load_state(ck, prefix + "agent.");
  darts_->load_state(ck, prefix + "darts.");
}

std::string summarize_logs(const std::vector<MetaRlTaskLog>& logs) {
  nlohmann::json j;
  const double n = static_cast<double>(logs.size());
  double ret = 0, base = 0, fin = 0, est = 0, sb = 0, sa = 0, eps = 0;
  for (const MetaRlTaskLog& l : logs) {
    ret += l.mean_return;
    base += l.baseline_acc;
    fin += l.final_acc;
    est += l.estimations;
    sb += static_cast<double>(l.sparse_before);
    sa += static_cast<double>(l.sparse_after);
    eps += l.episodes;
  }
  j["tasks"] = logs.size();
  if (n > 0) {
    j["episodes_per_task"] = eps / n;
    j["mean_episode_return"] = ret / n;
    j["mean_baseline_estimate"] = base / n;
    j["mean_final_estimate"] = fin / n;
    j["mean_estimate_gain"] = (fin - base) / n;
    j["mean_estimations"] = est / n;
    j["mean_sparse_params_before"] = sb / n;
    j["mean_sparse_params_after"] = sa / n;
  }
  return j.dump();
}

std::shared_ptr<MetaRlPreOptimizer> make_meta_rl(const MetaConfig& cfg, bool training) {
  if (cfg.meta_rl.agent == AgentKind::None) return nullptr;
  return std::make_shared<MetaRlPreOptimizer>(cfg.meta_rl, cfg.task.darts, training);
}

}  // namespace metanas::meta::rl
