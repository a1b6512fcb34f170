// Meta-RL agents over an Env (meta/rl/env.h): the RL² recurrent PPO agent and
// the random baseline (the reference's `--agent ppo|random`).
//
// A trial is what the agent does for one task (one environment):
//   train_trial: `epochs` times { reset the env, sample up to steps_per_epoch
//     steps or `episodes` episodes, then (PPO) update }; the recurrent state
//     starts at zero at the trial's start and carries across its episodes and
//     epochs (RL²);
//   test_trial: `test_episodes` episodes with no update.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metanas/engine/checkpoint.h"
#include "metanas/meta/rl/env.h"

namespace metanas::meta::rl {

enum class AgentKind { None, Ppo, Random };
const char* agent_kind_name(AgentKind k);  // "none", "ppo", "random"
AgentKind parse_agent_kind(const std::string& s);

struct AgentOptions {
  // Trial shape (reference: 3 epochs of 4 episodes / 800 steps; 4 test episodes).
  int epochs = 3;
  int episodes = 4;
  int steps_per_epoch = 800;
  int test_episodes = 4;
  bool use_mask = true;  // masked categorical policy (invalid actions never drawn)
  // PPO (reference values).
  int hidden = 256;
  float gamma = 0.99f;
  float lambda = 0.97f;
  float lr = 3e-4f;
  float adam_eps = 1e-5f;
  float clip = 0.2f;
  float value_coef = 0.25f;
  float entropy_coef = 0.01f;
  int minibatches = 4;
  // Passes over the mini-batches per update (the reference loops
  // n_mini_batch times over its generator: 4 x 4 optimizer steps).
  int update_passes = 4;
  int seq_len = 16;  // truncated BPTT length
  float grad_clip = 0.5f;
  // E-RL²: in every mini-batch the old values of this fraction of the
  // sequences are zeroed (so their return targets are the advantages alone).
  bool exploration = true;
  float exploration_fraction = 0.3f;
  void validate() const;
};

struct TrialLog {
  std::vector<float> episode_returns;  // completed episodes
  int64_t steps = 0;
  int updates = 0;  // optimizer steps
};

class Agent {
 public:
  virtual ~Agent() = default;
  virtual TrialLog train_trial(Env& env) = 0;
  virtual TrialLog test_trial(Env& env) = 0;
  virtual AgentKind kind() const = 0;
  virtual void save_state(Checkpoint& ck, const std::string& prefix) const = 0;
  virtual void load_state(const Checkpoint& ck, const std::string& prefix) = 0;
};

// Draws an index with probability probs[i] (>= 0, summing to ~1) from u in [0, 1).
int sample_index(const std::vector<float>& probs, double u);

std::unique_ptr<Agent> make_agent(AgentKind kind, int obs_size, int actions, const AgentOptions& opt,
                                  uint64_t seed);

// A std::string stored as an int32 tensor (generator states in checkpoints).
void put_string(Checkpoint& ck, const std::string& name, const std::string& s);
std::string get_string(const Checkpoint& ck, const std::string& name);

}  // namespace metanas::meta::rl
