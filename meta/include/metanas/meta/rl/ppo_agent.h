// The RL² recurrent PPO agent (reference: meta-fsl-nas mp_rl2_ppo.PPO, one
// worker). Rollouts are split at episode ends into sequences of seq_len steps
// (zero-padded, masked out of the loss); each sequence is replayed through the
// GRU from the hidden state recorded when it was sampled (truncated BPTT).
#pragma once
#include <memory>

#include "metanas/engine/optim.h"
#include "metanas/engine/random.h"
#include "metanas/meta/rl/actor_critic.h"
#include "metanas/meta/rl/agent.h"

namespace metanas::meta::rl {

// One sampled step.
struct RolloutStep {
  std::vector<float> obs;
  std::vector<int32_t> mask;
  std::vector<float> hidden;  // GRU state before the step
  int32_t prev_action = 0;
  float prev_reward = 0.f;
  int32_t action = 0;
  float value = 0.f, logp = 0.f, reward = 0.f;
  bool done = false;
};

// Sequences of a rollout: [start, start + length) never cross an episode end.
struct Sequence {
  int64_t start = 0;
  int length = 0;
};
std::vector<Sequence> split_sequences(const std::vector<RolloutStep>& steps, int seq_len);

class PpoAgent : public Agent {
 public:
  PpoAgent(int obs_size, int actions, const AgentOptions& opt, uint64_t seed);
  TrialLog train_trial(Env& env) override;
  TrialLog test_trial(Env& env) override;
  AgentKind kind() const override { return AgentKind::Ppo; }
  void save_state(Checkpoint& ck, const std::string& prefix) const override;
  void load_state(const Checkpoint& ck, const std::string& prefix) override;

  // One PPO update over a rollout whose state after the last step has value
  // last_value. Returns the number of optimizer steps. For tests.
  int update(const std::vector<RolloutStep>& steps, float last_value);
  // The loss of one mini-batch of sequences (with the graph), with the
  // advantages of the whole rollout; explore marks the E-RL² sequences.
  Tensor minibatch_loss(const std::vector<RolloutStep>& steps, const std::vector<float>& adv,
                        const std::vector<Sequence>& seqs, const std::vector<bool>& explore) const;
  ActorCritic& model() { return *ac_; }
  Rng& rng() { return rng_; }

 private:
  // Samples until `episodes` episodes ended or max_steps steps; hidden_ carries.
  std::vector<RolloutStep> sample(Env& env, int episodes, int max_steps, TrialLog& log, float* last_value);
  AgentOptions opt_;
  Rng rng_;
  std::unique_ptr<ActorCritic> ac_;
  std::unique_ptr<Adam> adam_;
  std::vector<float> hidden_;
};

}  // namespace metanas::meta::rl
