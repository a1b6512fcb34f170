// PPO clipped objective with clipped value loss and entropy bonus; GAE.
#include "metanas/meta/rl/ppo_loss.h"

#include <algorithm>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::meta::rl {

PpoSums ppo_block_sums(const Tensor& logits, const Tensor& values, const PpoRows& r, float clip) {
  MN_CHECK(logits.ndim() == 2, "ppo_block_sums: logits must be [B, A], got ", logits.describe());
  const int64_t B = logits.dim(0), A = logits.dim(1);
  MN_CHECK(static_cast<int64_t>(r.actions.size()) == B && static_cast<int64_t>(r.mask.size()) == B * A &&
               static_cast<int64_t>(r.logp_old.size()) == B && static_cast<int64_t>(r.norm_adv.size()) == B &&
               static_cast<int64_t>(r.adv.size()) == B && static_cast<int64_t>(r.old_values.size()) == B &&
               static_cast<int64_t>(r.loss_mask.size()) == B,
           "ppo_block_sums: row data does not match logits ", logits.describe());
  MN_CHECK(values.ndim() == 1 && values.dim(0) == B, "ppo_block_sums: values must be [", B, "], got ",
           values.describe());
  const Device d = logits.device();
  const Shape rows{B};
  const Tensor lm = Tensor::from_vector(r.loss_mask, rows, d);
  const Tensor adv_n = Tensor::from_vector(r.norm_adv, rows, d);

  const Tensor logp_all = log_softmax(logits, Tensor::from_ints(r.mask, Shape{B, A}, d));
  const Tensor logp = gather_cols(logp_all, Tensor::from_ints(r.actions, rows, d));
  const Tensor ratio = exp(sub(logp, Tensor::from_vector(r.logp_old, rows, d)));
  const Tensor surr = minimum(mul(ratio, adv_n), mul(clamp(ratio, 1.f - clip, 1.f + clip), adv_n));

  std::vector<float> ret(B);
  for (int64_t i = 0; i < B; ++i) ret[i] = r.old_values[i] + r.adv[i];
  const Tensor v_old = Tensor::from_vector(r.old_values, rows, d);
  const Tensor R = Tensor::from_vector(ret, rows, d);
  const Tensor e1 = sub(values, R);
  const Tensor e2 = sub(add(v_old, clamp(sub(values, v_old), -clip, clip)), R);
  const Tensor a = mul(e1, e1), b = mul(e2, e2);
  const Tensor vmax = sub(add(a, b), minimum(a, b));  // max(a, b)

  std::vector<float> lm_rows(static_cast<size_t>(B * A));
  for (int64_t i = 0; i < B; ++i) std::fill_n(lm_rows.begin() + i * A, A, r.loss_mask[i]);
  // Masked entries have log p = -1e30 and p = 0 exactly: their products are 0.
  const Tensor plogp = mul(exp(logp_all), logp_all);

  PpoSums s;
  s.pi = sum(mul(surr, lm));
  s.v = sum(mul(vmax, lm));
  s.ent = mul_scalar(sum(mul(plogp, Tensor::from_vector(lm_rows, Shape{B, A}, d))), -1.f);
  return s;
}

void accumulate(PpoSums& a, const PpoSums& b) {
  if (!a.pi.defined()) {
    a = b;
    return;
  }
  a.pi = add(a.pi, b.pi);
  a.v = add(a.v, b.v);
  a.ent = add(a.ent, b.ent);
}

Tensor ppo_loss(const PpoSums& s, float count, float value_coef, float entropy_coef) {
  const float inv = 1.f / std::max(1.f, count);
  // -(pi - vf v + ent_coef ent) / n
  Tensor t = add(s.pi, mul_scalar(s.v, -value_coef));
  t = add(t, mul_scalar(s.ent, entropy_coef));
  return mul_scalar(t, -inv);
}

std::vector<float> gae(const std::vector<float>& rewards, const std::vector<float>& values,
                       const std::vector<uint8_t>& dones, float last_value, float gamma, float lambda) {
  const size_t T = rewards.size();
  MN_CHECK(values.size() == T && dones.size() == T, "gae: ", T, " rewards, ", values.size(), " values, ",
           dones.size(), " done flags");
  std::vector<float> adv(T);
  float next_value = last_value, next_adv = 0.f;
  for (size_t k = T; k-- > 0;) {
    const float keep = dones[k] ? 0.f : 1.f;
    next_value *= keep;
    next_adv *= keep;
    const float delta = rewards[k] + gamma * next_value - values[k];
    next_adv = delta + gamma * lambda * next_adv;
    adv[k] = next_adv;
    next_value = values[k];
  }
  return adv;
}

}  // namespace metanas::meta::rl
