// The PPO objective of the reference's recurrent PPO (mp_rl2_ppo.PPO), for one
// block of rows (one time step of a mini-batch of sequences), and GAE.
//
// Per row i with loss mask m_i (0 on padding):
//   logp_i  = log_softmax(logits_i, action mask_i)[a_i]
//   ratio_i = exp(logp_i - logp_old_i)
//   pi_i    = min(ratio_i * A_i, clamp(ratio_i, 1 - c, 1 + c) * A_i)     (A: normalised advantage)
//   R_i     = V_old_i + adv_i                                            (adv: raw GAE advantage)
//   Vc_i    = V_old_i + clamp(V_i - V_old_i, -c, c)
//   v_i     = max((V_i - R_i)^2, (Vc_i - R_i)^2)
//   ent_i   = -sum_a p_ia log p_ia over the allowed actions
// and the mini-batch loss is
//   -( sum m pi / n - vf * sum m v / n + ent_coef * sum m ent / n ),  n = max(1, sum m).
#pragma once
#include <cstdint>
#include <vector>

#include "metanas/engine/tensor.h"

namespace metanas::meta::rl {

// The host data of one block of B rows.
struct PpoRows {
  std::vector<int32_t> actions;   // [B]
  std::vector<int32_t> mask;      // [B * A], non-zero = allowed
  std::vector<float> logp_old;    // [B]
  std::vector<float> norm_adv;    // [B] normalised advantages
  std::vector<float> adv;         // [B] raw advantages
  std::vector<float> old_values;  // [B] (zeroed for E-RL2 exploration sequences)
  std::vector<float> loss_mask;   // [B]
};

// Masked sums of the three terms over a block (scalar tensors).
struct PpoSums {
  Tensor pi, v, ent;
};

// logits [B, A] and values [B] carry the autograd graph.
PpoSums ppo_block_sums(const Tensor& logits, const Tensor& values, const PpoRows& rows, float clip);

// Accumulates b into a (undefined a: takes b).
void accumulate(PpoSums& a, const PpoSums& b);

// The loss from the sums over a mini-batch of `count` unmasked rows.
Tensor ppo_loss(const PpoSums& s, float count, float value_coef, float entropy_coef);

// Generalised advantage estimation over one trajectory (done[t]: the episode
// ended with step t, so nothing is bootstrapped across it):
//   A_t = delta_t + gamma lambda (1 - done_t) A_{t+1},
//   delta_t = r_t + gamma (1 - done_t) V_{t+1} - V_t,  V_T = last_value.
std::vector<float> gae(const std::vector<float>& rewards, const std::vector<float>& values,
                       const std::vector<uint8_t>& dones, float last_value, float gamma, float lambda);

}  // namespace metanas::meta::rl
