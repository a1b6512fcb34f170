// Agent kinds, options, the factory and small shared helpers.
#include "metanas/meta/rl/agent.h"

#include "metanas/engine/error.h"
#include "metanas/engine/tensor.h"
#include "metanas/meta/rl/ppo_agent.h"
#include "metanas/meta/rl/random_agent.h"

namespace metanas::meta::rl {

const char* agent_kind_name(AgentKind k) {
  switch (k) {
    case AgentKind::None: return "none";
    case AgentKind::Ppo: return "ppo";
    case AgentKind::Random: return "random";
  }
  return "?";
}

AgentKind parse_agent_kind(const std::string& s) {
  if (s == "none") return AgentKind::None;
  if (s == "ppo") return AgentKind::Ppo;
  if (s == "random") return AgentKind::Random;
  MN_THROW("unknown meta-RL agent '", s, "' (valid: none, ppo, random)");
}

void AgentOptions::validate() const {
  MN_CHECK(epochs >= 1 && episodes >= 1 && steps_per_epoch >= 1 && test_episodes >= 1,
           "meta_rl: epochs, episodes, steps_per_epoch and test_episodes must be >= 1, got ", epochs, ", ", episodes,
           ", ", steps_per_epoch, ", ", test_episodes);
  MN_CHECK(hidden >= 1, "meta_rl.hidden must be >= 1, got ", hidden);
  MN_CHECK(gamma >= 0.f && gamma <= 1.f && lambda >= 0.f && lambda <= 1.f,
           "meta_rl: gamma and lambda must lie in [0, 1], got ", gamma, ", ", lambda);
  MN_CHECK(lr > 0.f && adam_eps > 0.f, "meta_rl: lr and adam_eps must be positive, got ", lr, ", ", adam_eps);
  MN_CHECK(clip > 0.f && clip < 1.f, "meta_rl.clip must lie in (0, 1), got ", clip);
  MN_CHECK(value_coef >= 0.f && entropy_coef >= 0.f, "meta_rl: value_coef and entropy_coef must be >= 0");
  MN_CHECK(minibatches >= 1 && update_passes >= 1 && seq_len >= 1,
           "meta_rl: minibatches, update_passes and seq_len must be >= 1, got ", minibatches, ", ", update_passes,
           ", ", seq_len);
  MN_CHECK(grad_clip >= 0.f, "meta_rl.grad_clip must be >= 0 (0 = off), got ", grad_clip);
  MN_CHECK(exploration_fraction >= 0.f && exploration_fraction <= 1.f,
           "meta_rl.exploration_fraction must lie in [0, 1], got ", exploration_fraction);
}

int sample_index(const std::vector<float>& probs, double u) {
  MN_CHECK(!probs.empty(), "sample_index: no probabilities");
  double total = 0;
  for (float p : probs) total += p;
  const double target = u * total;
  double c = 0;
  int last = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0.f) continue;  // masked actions are never drawn
    last = static_cast<int>(i);
    c += probs[i];
    if (target < c) return last;
  }
  MN_CHECK(last >= 0, "sample_index: every probability is zero");
  return last;
}

std::unique_ptr<Agent> make_agent(AgentKind kind, int obs_size, int actions, const AgentOptions& opt,
                                  uint64_t seed) {
  switch (kind) {
    case AgentKind::Ppo: return std::make_unique<PpoAgent>(obs_size, actions, opt, seed);
    case AgentKind::Random: return std::make_unique<RandomAgent>(actions, opt, seed);
    case AgentKind::None: break;
  }
  MN_THROW("make_agent: no agent for kind '", agent_kind_name(kind), "'");
}

void put_string(Checkpoint& ck, const std::string& name, const std::string& s) {
  std::vector<int32_t> v(s.begin(), s.end());
  if (v.empty()) v.push_back(0);
  ck.put(name, Tensor::from_ints(v, Shape{static_cast<int64_t>(v.size())}));
}

std::string get_string(const Checkpoint& ck, const std::string& name) {
  MN_CHECK(ck.has(name), "checkpoint entry '", name, "' is missing");
  std::string s;
  for (int32_t c : ck.get(name).to_int_vector())
    if (c != 0) s.push_back(static_cast<char>(c));
  return s;
}

}  // namespace metanas::meta::rl
