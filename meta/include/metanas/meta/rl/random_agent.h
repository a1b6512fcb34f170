// The random baseline (reference: mp_random.RandomAgent): uniform over the
// valid actions (over all actions without masking); never learns.
#pragma once
#include "metanas/engine/random.h"
#include "metanas/meta/rl/agent.h"

namespace metanas::meta::rl {

class RandomAgent : public Agent {
 public:
  RandomAgent(int actions, const AgentOptions& opt, uint64_t seed);
  TrialLog train_trial(Env& env) override;
  TrialLog test_trial(Env& env) override;
  AgentKind kind() const override { return AgentKind::Random; }
  void save_state(Checkpoint& ck, const std::string& prefix) const override;
  void load_state(const Checkpoint& ck, const std::string& prefix) override;

 private:
  void run(Env& env, int episodes, int max_steps, TrialLog& log);
  int actions_;
  AgentOptions opt_;
  Rng rng_;
};

}  // namespace metanas::meta::rl
