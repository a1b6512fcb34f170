// The meta-RL agent's per-task logs as JSON for the programs' logs and
// reports (null when the configuration has no agent).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "metanas/meta/rl/meta_rl.h"
#include "metanas/meta/task_pre_optimizer.h"

namespace metanas::cli {

// Summary of the hook's logs since the last call (clears them when clear).
inline nlohmann::json meta_rl_summary(meta::TaskPreOptimizer* pre, bool clear = true) {
  auto* rl = dynamic_cast<meta::rl::MetaRlPreOptimizer*>(pre);
  if (!rl) return nullptr;
  nlohmann::json j = nlohmann::json::parse(meta::rl::summarize_logs(rl->logs()));
  j["agent"] = meta::rl::agent_kind_name(rl->agent().kind());
  if (clear) rl->clear_logs();
  return j;
}

// One log line from a summary.
inline std::string meta_rl_line(const nlohmann::json& j) {
  if (j.is_null() || !j.contains("mean_episode_return")) return {};
  char buf[400];
  std::snprintf(buf, sizeof(buf),
                "meta_rl (%s, %d tasks): episode return %.3f, estimate %.4f -> %.4f (gain %+.4f), "
                "%.1f estimations/task, sparse params %.0f -> %.0f",
                j["agent"].get<std::string>().c_str(), j["tasks"].get<int>(), j["mean_episode_return"].get<double>(),
                j["mean_baseline_estimate"].get<double>(), j["mean_final_estimate"].get<double>(),
                j["mean_estimate_gain"].get<double>(), j["mean_estimations"].get<double>(),
                j["mean_sparse_params_before"].get<double>(), j["mean_sparse_params_after"].get<double>());
  return buf;
}

}  // namespace metanas::cli
