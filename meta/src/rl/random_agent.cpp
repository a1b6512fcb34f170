// Random baseline agent.
#include "metanas/meta/rl/random_agent.h"

#include "metanas/engine/error.h"

namespace metanas::meta::rl {

RandomAgent::RandomAgent(int actions, const AgentOptions& opt, uint64_t seed)
    : actions_(actions), opt_(opt), rng_(seed) {
  opt_.validate();
}

void RandomAgent::run(Env& env, int episodes, int max_steps, TrialLog& log) {
  MN_CHECK(env.action_count() == actions_, "RandomAgent: the environment has ", env.action_count(),
           " actions, the agent ", actions_);
  Observation ob = env.reset();
  float ret = 0.f;
  int done = 0;
  for (int t = 0; t < max_steps && done < episodes; ++t) {
    std::vector<int> valid;
    for (int a = 0; a < actions_; ++a)
      if (!opt_.use_mask || ob.mask[a] != 0) valid.push_back(a);
    MN_CHECK(!valid.empty(), "RandomAgent: no valid action");
    const Transition tr = env.step(valid[rng_.below(valid.size())]);
    ret += tr.reward;
    ++log.steps;
    if (tr.done) {
      log.episode_returns.push_back(ret);
      ret = 0.f;
      if (++done < episodes) ob = env.reset();
    } else {
      ob = tr.next;
    }
  }
}

TrialLog RandomAgent::train_trial(Env& env) {
  TrialLog log;
  for (int e = 0; e < opt_.epochs; ++e) run(env, opt_.episodes, opt_.steps_per_epoch, log);
  return log;
}

TrialLog RandomAgent::test_trial(Env& env) {
  TrialLog log;
  run(env, opt_.test_episodes, opt_.test_episodes * opt_.steps_per_epoch, log);
  return log;
}

void RandomAgent::save_state(Checkpoint& ck, const std::string& prefix) const {
  put_string(ck, prefix + "rng", rng_.state());
}

void RandomAgent::load_state(const Checkpoint& ck, const std::string& prefix) {
  MN_CHECK(ck.has(prefix + "rng"), "RandomAgent: the checkpoint has no agent state under '", prefix, "'");
  rng_.set_state(get_string(ck, prefix + "rng"));
}

}  // namespace metanas::meta::rl
