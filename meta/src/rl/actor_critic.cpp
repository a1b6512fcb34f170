// RL² recurrent actor-critic from engine ops.
#include "metanas/meta/rl/actor_critic.h"

#include <cmath>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/meta/rl/orthogonal.h"

namespace metanas::meta::rl {

namespace {
void init_linear(ParamSet& ps, const std::string& name, float gain, Rng& rng) {
  Tensor& w = ps.get(name + ".w");
  w.copy_(Tensor::from_vector(orthogonal(w.dim(0), w.dim(1), gain, rng), w.shape()));
  ps.get(name + ".b").zero_();
}
}  // namespace

ActorCritic::ActorCritic(int obs_size, int actions, int hidden, Rng& rng)
    : obs_(obs_size), actions_(actions), hidden_(hidden) {
  MN_CHECK(obs_size > 0 && actions > 0 && hidden > 0, "ActorCritic: sizes must be positive, got obs ", obs_size,
           ", actions ", actions, ", hidden ", hidden);
  ps_.add("enc.w", Shape{hidden, obs_size});
  ps_.add("enc.b", Shape{hidden});
  gru_ = std::make_unique<GruCell>(ps_, "gru.", hidden + actions + 1, hidden);
  ps_.add("pi.w", Shape{actions, hidden});
  ps_.add("pi.b", Shape{actions});
  ps_.add("v.w", Shape{1, hidden});
  ps_.add("v.b", Shape{1});
  ps_.finalize();
  // The reference's order of construction: encoder, GRU, policy, value.
  init_linear(ps_, "enc", std::sqrt(2.f), rng);
  gru_->init(std::sqrt(2.f), rng);
  init_linear(ps_, "pi", std::sqrt(0.01f), rng);
  init_linear(ps_, "v", 1.f, rng);
}

AcOutput ActorCritic::step(const Tensor& obs, const std::vector<int32_t>& prev_action, const Tensor& prev_reward,
                           const Tensor& hidden) const {
  const int64_t B = obs.dim(0);
  MN_CHECK(obs.ndim() == 2 && obs.dim(1) == obs_, "ActorCritic: obs must be [B, ", obs_, "], got ", obs.describe());
  MN_CHECK(static_cast<int64_t>(prev_action.size()) == B, "ActorCritic: ", prev_action.size(),
           " previous actions for ", B, " rows");
  MN_CHECK(prev_reward.ndim() == 2 && prev_reward.dim(0) == B && prev_reward.dim(1) == 1,
           "ActorCritic: prev_reward must be [", B, ", 1], got ", prev_reward.describe());
  std::vector<float> oh(static_cast<size_t>(B * actions_), 0.f);
  for (int64_t i = 0; i < B; ++i) {
    MN_CHECK(prev_action[i] >= 0 && prev_action[i] < actions_, "ActorCritic: previous action ", prev_action[i],
             " out of range [0, ", actions_, ")");
    oh[i * actions_ + prev_action[i]] = 1.f;
  }
  ParamSet& p = const_cast<ParamSet&>(ps_);
  const Tensor e = relu(linear(obs, p.get("enc.w"), p.get("enc.b")));
  const Tensor onehot = Tensor::from_vector(oh, Shape{B, actions_});
  const Tensor x = concat_channels({e.reshape(Shape{B, hidden_, 1, 1}), onehot.reshape(Shape{B, actions_, 1, 1}),
                                    prev_reward.reshape(Shape{B, 1, 1, 1})})
                       .reshape(Shape{B, hidden_ + actions_ + 1});
  AcOutput out;
  out.hidden = gru_->step(x, hidden);
  out.logits = linear(out.hidden, p.get("pi.w"), p.get("pi.b"));
  out.value = linear(out.hidden, p.get("v.w"), p.get("v.b")).reshape(Shape{B});
  return out;
}

}  // namespace metanas::meta::rl
