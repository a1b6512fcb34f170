// The RL² recurrent actor-critic of the reference's recurrent PPO
// (meta-fsl-nas mp_core.ActorCritic):
//   e   = relu(Linear(obs -> H))                      orthogonal init, gain sqrt 2
//   h'  = GRU([e, one_hot(previous action), previous reward], h)   gain sqrt 2
//   logits = Linear(h' -> actions)                    gain 0.1 (= sqrt 0.01)
//   value  = Linear(h' -> 1)                          gain 1
// Biases start at zero. Policy and value share the GRU state.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"
#include "metanas/meta/rl/gru.h"

namespace metanas::meta::rl {

struct AcOutput {
  Tensor logits;  // [B, actions]
  Tensor value;   // [B]
  Tensor hidden;  // [B, H]
};

class ActorCritic {
 public:
  ActorCritic(int obs_size, int actions, int hidden, Rng& rng);
  // One recurrent step for B rows: obs [B, obs], prev_action int32 [B] (the
  // one-hot is built here), prev_reward [B, 1], hidden [B, H].
  AcOutput step(const Tensor& obs, const std::vector<int32_t>& prev_action, const Tensor& prev_reward,
                const Tensor& hidden) const;
  ParamSet& params() { return ps_; }
  const ParamSet& params() const { return ps_; }
  int obs_size() const { return obs_; }
  int actions() const { return actions_; }
  int hidden() const { return hidden_; }

 private:
  int obs_, actions_, hidden_;
  ParamSet ps_;
  std::unique_ptr<GruCell> gru_;
};

}  // namespace metanas::meta::rl
