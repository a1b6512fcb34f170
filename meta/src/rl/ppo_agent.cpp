// RL² recurrent PPO: sampling with a carried GRU state, sequence splitting,
// E-RL² value zeroing, clipped PPO updates.
#include "metanas/meta/rl/ppo_agent.h"

#include <algorithm>
#include <cmath>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/meta/rl/ppo_loss.h"

namespace metanas::meta::rl {

std::vector<Sequence> split_sequences(const std::vector<RolloutStep>& steps, int seq_len) {
  MN_CHECK(seq_len > 0, "split_sequences: seq_len must be positive, got ", seq_len);
  std::vector<Sequence> out;
  const int64_t T = static_cast<int64_t>(steps.size());
  int64_t ep_start = 0;
  for (int64_t t = 0; t < T; ++t) {
    if (!steps[t].done && t != T - 1) continue;
    for (int64_t s = ep_start; s <= t; s += seq_len)
      out.push_back({s, static_cast<int>(std::min<int64_t>(seq_len, t + 1 - s))});
    ep_start = t + 1;
  }
  return out;
}

PpoAgent::PpoAgent(int obs_size, int actions, const AgentOptions& opt, uint64_t seed) : opt_(opt), rng_(seed) {
  opt_.validate();
  ac_ = std::make_unique<ActorCritic>(obs_size, actions, opt_.hidden, rng_);
  adam_ = std::make_unique<Adam>(ac_->params(), opt_.lr, 0.9f, 0.999f, opt_.adam_eps);
  adam_->max_grad_norm = opt_.grad_clip;
}

std::vector<RolloutStep> PpoAgent::sample(Env& env, int episodes, int max_steps, TrialLog& log, float* last_value) {
  const int A = ac_->actions(), O = ac_->obs_size(), H = ac_->hidden();
  MN_CHECK(env.obs_size() == O && env.action_count() == A, "PpoAgent: the environment has ", env.obs_size(),
           " observations and ", env.action_count(), " actions, the agent ", O, " and ", A);
  // Only the policy runs without a graph: the environment may train (the
  // alpha environment's DARTS estimation step).
  std::vector<RolloutStep> steps;
  Observation ob = env.reset();
  int32_t prev_a = 0;
  float prev_r = 0.f, ep_ret = 0.f;
  int done_eps = 0;
  auto forward = [&](const Observation& o) {
    NoGradGuard ng;
    return ac_->step(Tensor::from_vector(o.obs, Shape{1, O}), {prev_a}, Tensor::from_vector({prev_r}, Shape{1, 1}),
                     Tensor::from_vector(hidden_, Shape{1, H}));
  };
  for (int t = 0; t < max_steps && done_eps < episodes; ++t) {
    RolloutStep s;
    s.obs = ob.obs;
    s.mask = opt_.use_mask ? ob.mask : std::vector<int32_t>(A, 1);
    s.hidden = hidden_;
    s.prev_action = prev_a;
    s.prev_reward = prev_r;
    const AcOutput out = forward(ob);
    std::vector<float> lp;
    {
      NoGradGuard ng;
      lp = log_softmax(out.logits, Tensor::from_ints(s.mask, Shape{1, A})).to_vector();
    }
    std::vector<float> probs(A);
    for (int a = 0; a < A; ++a) probs[a] = std::exp(lp[a]);
    s.action = sample_index(probs, rng_.uniform_double());
    s.logp = lp[s.action];
    s.value = out.value.item();
    hidden_ = out.hidden.to_vector();
    const Transition tr = env.step(s.action);
    s.reward = tr.reward;
    s.done = tr.done;
    prev_a = s.action;
    prev_r = tr.reward;
    ep_ret += tr.reward;
    ++log.steps;
    steps.push_back(std::move(s));
    if (tr.done) {
      log.episode_returns.push_back(ep_ret);
      ep_ret = 0.f;
      ++done_eps;
      if (done_eps < episodes) ob = env.reset();
    } else {
      ob = tr.next;
    }
  }
  if (last_value) *last_value = steps.empty() || steps.back().done ? 0.f : forward(ob).value.item();
  return steps;
}

Tensor PpoAgent::minibatch_loss(const std::vector<RolloutStep>& steps, const std::vector<float>& adv,
                                const std::vector<Sequence>& seqs, const std::vector<bool>& explore) const {
  const int64_t S = static_cast<int64_t>(seqs.size());
  const int A = ac_->actions(), O = ac_->obs_size(), H = ac_->hidden(), L = opt_.seq_len;
  MN_CHECK(S > 0 && static_cast<int64_t>(explore.size()) == S, "PpoAgent: empty or inconsistent mini-batch");
  // Advantage normalisation over the padded mini-batch (padding counts as 0),
  // with the unbiased std, as the reference.
  double s1 = 0, s2 = 0;
  for (const Sequence& q : seqs)
    for (int k = 0; k < q.length; ++k) {
      s1 += adv[q.start + k];
      s2 += static_cast<double>(adv[q.start + k]) * adv[q.start + k];
    }
  const double n = static_cast<double>(S * L);
  const double mean = s1 / n;
  const double var = n > 1 ? std::max(0.0, (s2 - n * mean * mean) / (n - 1)) : 0.0;
  const double sd = std::sqrt(var) + 1e-8;

  std::vector<float> h0(static_cast<size_t>(S * H));
  int max_len = 0;
  for (int64_t i = 0; i < S; ++i) {
    std::copy(steps[seqs[i].start].hidden.begin(), steps[seqs[i].start].hidden.end(), h0.begin() + i * H);
    max_len = std::max(max_len, seqs[i].length);
  }
  Tensor h = Tensor::from_vector(h0, Shape{S, H});
  PpoSums sums;
  float count = 0.f;
  for (int t = 0; t < max_len; ++t) {
    std::vector<float> obs(static_cast<size_t>(S * O), 0.f), prev_r(S, 0.f);
    std::vector<int32_t> prev_a(S, 0);
    PpoRows r;
    r.actions.assign(S, 0);
    r.mask.assign(static_cast<size_t>(S * A), 1);
    r.logp_old.assign(S, 0.f);
    r.norm_adv.assign(S, static_cast<float>((0.0 - mean) / sd));
    r.adv.assign(S, 0.f);
    r.old_values.assign(S, 0.f);
    r.loss_mask.assign(S, 0.f);
    for (int64_t i = 0; i < S; ++i) {
      if (t >= seqs[i].length) continue;
      const int64_t k = seqs[i].start + t;
      const RolloutStep& st = steps[k];
      std::copy(st.obs.begin(), st.obs.end(), obs.begin() + i * O);
      prev_a[i] = st.prev_action;
      prev_r[i] = st.prev_reward;
      r.actions[i] = st.action;
      std::copy(st.mask.begin(), st.mask.end(), r.mask.begin() + i * A);
      r.logp_old[i] = st.logp;
      r.norm_adv[i] = static_cast<float>((adv[k] - mean) / sd);
      r.adv[i] = adv[k];
      r.old_values[i] = explore[i] ? 0.f : st.value;
      r.loss_mask[i] = 1.f;
      count += 1.f;
    }
    const AcOutput out = ac_->step(Tensor::from_vector(obs, Shape{S, O}), prev_a, Tensor::from_vector(prev_r, Shape{S, 1}), h);
    h = out.hidden;
    accumulate(sums, ppo_block_sums(out.logits, out.value, r, opt_.clip));
  }
  return ppo_loss(sums, count, opt_.value_coef, opt_.entropy_coef);
}

int PpoAgent::update(const std::vector<RolloutStep>& steps, float last_value) {
  if (steps.empty()) return 0;
  std::vector<float> rewards, values;
  std::vector<uint8_t> dones;
  for (const RolloutStep& s : steps) {
    rewards.push_back(s.reward);
    values.push_back(s.value);
    dones.push_back(s.done ? 1 : 0);
  }
  const std::vector<float> adv = gae(rewards, values, dones, last_value, opt_.gamma, opt_.lambda);
  const std::vector<Sequence> seqs = split_sequences(steps, opt_.seq_len);
  const int64_t N = static_cast<int64_t>(seqs.size());
  int updates = 0;
  for (int pass = 0; pass < opt_.update_passes; ++pass) {
    std::vector<int64_t> perm(N);
    for (int64_t i = 0; i < N; ++i) perm[i] = i;
    for (int64_t i = N - 1; i > 0; --i) std::swap(perm[i], perm[rng_.below(static_cast<uint64_t>(i + 1))]);
    int64_t start = 0;
    for (int b = 0; b < opt_.minibatches; ++b) {
      const int64_t n = N / opt_.minibatches + (b < N % opt_.minibatches ? 1 : 0);
      if (n == 0) continue;
      std::vector<Sequence> mb;
      for (int64_t i = start; i < start + n; ++i) mb.push_back(seqs[perm[i]]);
      start += n;
      std::vector<bool> explore(n, false);
      if (opt_.exploration) {
        // p of the n sequences, drawn without replacement.
        const int64_t p = static_cast<int64_t>(static_cast<double>(n) * opt_.exploration_fraction);
        std::vector<int64_t> idx(n);
        for (int64_t i = 0; i < n; ++i) idx[i] = i;
        for (int64_t i = 0; i < p; ++i) {
          std::swap(idx[i], idx[i + static_cast<int64_t>(rng_.below(static_cast<uint64_t>(n - i)))]);
          explore[idx[i]] = true;
        }
      }
      adam_->zero_grad();
      minibatch_loss(steps, adv, mb, explore).backward();
      adam_->step();
      ++updates;
    }
  }
  return updates;
}

TrialLog PpoAgent::train_trial(Env& env) {
  TrialLog log;
  hidden_.assign(static_cast<size_t>(ac_->hidden()), 0.f);
  for (int e = 0; e < opt_.epochs; ++e) {
    float last_value = 0.f;
    const std::vector<RolloutStep> steps = sample(env, opt_.episodes, opt_.steps_per_epoch, log, &last_value);
    log.updates += update(steps, last_value);
  }
  return log;
}

TrialLog PpoAgent::test_trial(Env& env) {
  TrialLog log;
  hidden_.assign(static_cast<size_t>(ac_->hidden()), 0.f);
  sample(env, opt_.test_episodes, opt_.test_episodes * opt_.steps_per_epoch, log, nullptr);
  return log;
}

void PpoAgent::save_state(Checkpoint& ck, const std::string& prefix) const {
  ck.put_params(prefix + "ac.", ac_->params());
  adam_->save_state(ck, prefix + "opt.");
  put_string(ck, prefix + "rng", rng_.state());
}

void PpoAgent::load_state(const Checkpoint& ck, const std::string& prefix) {
  MN_CHECK(ck.has(prefix + "rng"), "PpoAgent: the checkpoint has no PPO agent state under '", prefix, "'");
  ck.get_params(prefix + "ac.", ac_->params());
  adam_->load_state(ck, prefix + "opt.");
  rng_.set_state(get_string(ck, prefix + "rng"));
}

}  // namespace metanas::meta::rl
