// The meta-RL agent's pieces: the GRU cell and the PPO loss against
// hand-computed values, GAE against a direct sum, sequence splitting, action
// masking, a bandit that PPO solves within a bounded number of updates (and
// the random agent does not), and bit-exact agent save/load.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/autograd.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/meta/rl/gru.h"
#include "metanas/meta/rl/orthogonal.h"
#include "metanas/meta/rl/ppo_agent.h"
#include "metanas/meta/rl/ppo_loss.h"
#include "metanas/meta/rl/random_agent.h"

using namespace metanas;
using namespace metanas::meta::rl;

namespace {

double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// A small agent for the bandits below: `episodes` one-step episodes per epoch
// (steps_per_epoch = episodes), `test_episodes` in a test trial.
AgentOptions bandit_options(int hidden, int epochs, int episodes, int test_episodes) {
  AgentOptions o;
  o.hidden = hidden;
  o.epochs = epochs;
  o.episodes = episodes;
  o.steps_per_epoch = episodes;
  o.test_episodes = test_episodes;
  return o;
}

// Arm `good` pays 1, the others 0; arm `masked` is never allowed (choosing it
// is counted). One step per episode; the observation is constant.
class Bandit : public Env {
 public:
  Bandit(int arms, int good, int masked) : arms_(arms), good_(good), masked_(masked) {}
  int obs_size() const override { return 1; }
  int action_count() const override { return arms_; }
  Observation reset() override {
    Observation o;
    o.obs = {1.f};
    o.mask.assign(arms_, 1);
    o.mask[masked_] = 0;
    return o;
  }
  Transition step(int a) override {
    if (a == masked_) ++violations;
    Transition t;
    t.next = reset();
    t.reward = a == good_ ? 1.f : 0.f;
    t.done = true;
    return t;
  }
  int violations = 0;

 private:
  int arms_, good_, masked_;
};

double mean(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

}  // namespace

TEST_CASE("GRU cell matches a hand computation of PyTorch's equations", "[rl]") {
  ParamSet ps;
  GruCell gru(ps, "g.", 2, 2);
  ps.finalize();
  // Fill every parameter with distinct small values.
  std::vector<float> all(ps.numel());
  for (int64_t i = 0; i < ps.numel(); ++i) all[i] = 0.05f * static_cast<float>((i * 7) % 11) - 0.25f;
  ps.values().copy_(Tensor::from_vector(all, Shape{ps.numel()}));
  auto P = [&](const std::string& n) { return ps.get("g." + n).to_vector(); };
  const std::vector<float> x = {0.3f, -0.7f, 1.1f, 0.2f}, h = {0.5f, -0.4f, -0.1f, 0.9f};
  const std::vector<float> out = gru.step(Tensor::from_vector(x, Shape{2, 2}), Tensor::from_vector(h, Shape{2, 2})).to_vector();
  for (int n = 0; n < 2; ++n)
    for (int j = 0; j < 2; ++j) {
      auto aff = [&](const char* kind, const char* g, const std::vector<float>& in) {
        const std::vector<float> w = P(std::string("w_") + kind + g), b = P(std::string("b_") + kind + g);
        double s = b[j];
        for (int k = 0; k < 2; ++k) s += static_cast<double>(w[j * 2 + k]) * in[n * 2 + k];
        return s;
      };
      const double r = sig(aff("i", "r", x) + aff("h", "r", h));
      const double z = sig(aff("i", "z", x) + aff("h", "z", h));
      const double nn = std::tanh(aff("i", "n", x) + r * aff("h", "n", h));
      const double ref = (1 - z) * nn + z * h[n * 2 + j];
      CHECK(out[n * 2 + j] == Approx(ref).margin(1e-6));
    }
  // Bad input names the problem.
  CHECK_THROWS_WITH(gru.step(Tensor::zeros(Shape{2, 3}), Tensor::zeros(Shape{2, 2})), Catch::Contains("GruCell"));
}

TEST_CASE("orthogonal init has orthonormal columns (tall) or rows (wide), times the gain", "[rl]") {
  Rng rng(3);
  for (auto [r, c] : {std::pair<int, int>{6, 3}, {3, 6}}) {
    const std::vector<float> w = orthogonal(r, c, 2.f, rng);
    const bool tall = r >= c;
    const int n = tall ? c : r, m = tall ? r : c;
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b) {
        double dot = 0;
        for (int t = 0; t < m; ++t)
          dot += tall ? static_cast<double>(w[t * c + a]) * w[t * c + b] : static_cast<double>(w[a * c + t]) * w[b * c + t];
        CHECK(dot == Approx(a == b ? 4.0 : 0.0).margin(1e-5));
      }
  }
}

TEST_CASE("PPO loss matches a hand computation (clipping, value clipping, masked entropy, padding)", "[rl]") {
  // 3 rows, 3 actions; row 1 masks action 2; row 2 is padding.
  const std::vector<float> lg = {0.2f, -0.1f, 0.4f, 1.0f, 0.5f, 3.0f, 0.f, 0.f, 0.f};
  const std::vector<float> val = {0.9f, -0.2f, 5.f};
  PpoRows r;
  r.actions = {2, 0, 0};
  r.mask = {1, 1, 1, 1, 1, 0, 1, 1, 1};
  r.logp_old = {-1.5f, -0.2f, 0.f};
  r.norm_adv = {0.8f, -1.3f, 0.f};
  r.adv = {0.5f, -0.6f, 0.f};
  r.old_values = {0.4f, 0.3f, 0.f};
  r.loss_mask = {1.f, 1.f, 0.f};
  const float clip = 0.2f, vf = 0.25f, ec = 0.01f;
  Tensor L = Tensor::from_vector(lg, Shape{3, 3}).set_requires_grad();
  Tensor V = Tensor::from_vector(val, Shape{3}).set_requires_grad();
  const Tensor loss = ppo_loss(ppo_block_sums(L, V, r, clip), 2.f, vf, ec);

  double pi = 0, vl = 0, ent = 0;
  for (int i = 0; i < 2; ++i) {
    const int na = i == 1 ? 2 : 3;
    double mx = -1e9, se = 0;
    for (int a = 0; a < na; ++a) mx = std::max(mx, static_cast<double>(lg[i * 3 + a]));
    for (int a = 0; a < na; ++a) se += std::exp(lg[i * 3 + a] - mx);
    auto lp = [&](int a) { return lg[i * 3 + a] - mx - std::log(se); };
    const double ratio = std::exp(lp(r.actions[i]) - r.logp_old[i]);
    const double cr = std::min(std::max(ratio, 1.0 - clip), 1.0 + clip);
    pi += std::min(ratio * r.norm_adv[i], cr * r.norm_adv[i]);
    const double R = r.old_values[i] + r.adv[i];
    const double vc = r.old_values[i] + std::min(std::max(static_cast<double>(val[i] - r.old_values[i]), -0.2), 0.2);
    vl += std::max((val[i] - R) * (val[i] - R), (vc - R) * (vc - R));
    for (int a = 0; a < na; ++a) ent -= std::exp(lp(a)) * lp(a);
  }
  const double ref = -(pi / 2 - vf * vl / 2 + ec * ent / 2);
  CHECK(loss.item() == Approx(ref).margin(1e-5));
  // Row 0's ratio is clipped from above (exp(-0.61 + 1.5) > 1.2 with A > 0):
  // no policy gradient reaches row 0's logits from the clipped term, but the
  // entropy does; the padded row gets no gradient at all.
  loss.backward();
  const std::vector<float> gL = L.grad().to_vector(), gV = V.grad().to_vector();
  for (int a = 0; a < 3; ++a) CHECK(gL[6 + a] == 0.f);
  CHECK(gV[2] == 0.f);
  CHECK(gL[5] == 0.f);  // masked action
  // Finite differences of the loss in the value of row 1 (double reference).
  auto loss_at = [&](float v1) {
    NoGradGuard ng;
    std::vector<float> vv = val;
    vv[1] = v1;
    return ppo_loss(ppo_block_sums(Tensor::from_vector(lg, Shape{3, 3}), Tensor::from_vector(vv, Shape{3}), r, clip),
                    2.f, vf, ec)
        .item();
  };
  const float e = 1e-2f;
  CHECK(gV[1] == Approx((loss_at(val[1] + e) - loss_at(val[1] - e)) / (2 * e)).margin(2e-3));
}

TEST_CASE("GAE equals the direct discounted sum of TD errors within each episode", "[rl]") {
  const std::vector<float> rw = {0.5f, 0.f, 1.f, 0.2f, -0.3f, 0.7f};
  const std::vector<float> v = {0.1f, 0.4f, -0.2f, 0.3f, 0.6f, 0.05f};
  const std::vector<uint8_t> d = {0, 0, 1, 0, 0, 0};
  const float g = 0.99f, l = 0.97f, last = 0.8f;
  const std::vector<float> adv = gae(rw, v, d, last, g, l);
  for (size_t t = 0; t < rw.size(); ++t) {
    double a = 0, f = 1;
    for (size_t k = t; k < rw.size(); ++k) {
      const double next = d[k] ? 0.0 : (k + 1 < rw.size() ? v[k + 1] : last);
      a += f * (rw[k] + g * next - v[k]);
      if (d[k]) break;
      f *= g * l;
    }
    CHECK(adv[t] == Approx(a).margin(1e-5));
  }
}

TEST_CASE("rollouts split into sequences at episode ends and every seq_len steps", "[rl]") {
  std::vector<RolloutStep> s(9);
  s[4].done = true;
  const std::vector<Sequence> q = split_sequences(s, 3);
  REQUIRE(q.size() == 4);
  CHECK((q[0].start == 0 && q[0].length == 3));
  CHECK((q[1].start == 3 && q[1].length == 2));
  CHECK((q[2].start == 5 && q[2].length == 3));
  CHECK((q[3].start == 8 && q[3].length == 1));
}

TEST_CASE("masked sampling never selects an invalid action", "[rl]") {
  Rng rng(1);
  for (int i = 0; i < 2000; ++i) {
    const int a = sample_index({0.f, 0.5f, 0.f, 0.5f}, rng.uniform_double());
    CHECK((a == 1 || a == 3));
  }
  CHECK(sample_index({0.f, 1.f, 0.f}, 0.999999) == 1);
  AgentOptions o = bandit_options(8, 2, 64, 64);
  Bandit b(4, 1, 3);
  PpoAgent ppo(1, 4, o, 5);
  ppo.train_trial(b);
  ppo.test_trial(b);
  RandomAgent rnd(4, o, 5);
  rnd.train_trial(b);
  CHECK(b.violations == 0);
  // Without the mask the random agent does pick the invalid arm.
  o.use_mask = false;
  RandomAgent unmasked(4, o, 5);
  unmasked.train_trial(b);
  CHECK(b.violations > 0);
}

TEST_CASE("PPO solves a 5-armed bandit within a bounded number of updates, the random agent does not", "[rl]") {
  AgentOptions o = bandit_options(16, 1, 32, 100);
  o.seq_len = 8;
  o.lr = 3e-3f;
  Bandit b(5, 2, 4);
  PpoAgent ppo(1, 5, o, 11);
  int trials = 0, updates = 0;
  double ret = 0;
  for (; trials < 30; ++trials) {
    updates += ppo.train_trial(b).updates;
    ret = mean(ppo.test_trial(b).episode_returns);
    if (ret >= 0.9) break;
  }
  INFO("trials " << trials << ", updates " << updates << ", test return " << ret);
  CHECK(ret >= 0.9);
  CHECK(updates <= 30 * 16);
  RandomAgent rnd(5, o, 11);
  const double rr = mean(rnd.test_trial(b).episode_returns);
  CHECK(rr < 0.5);
  CHECK(rr > 0.1);  // about 1/4 (four valid arms)
}

TEST_CASE("a PPO agent saved and loaded continues bit for bit", "[rl]") {
  AgentOptions o = bandit_options(8, 1, 16, AgentOptions{}.test_episodes);
  o.seq_len = 4;
  Bandit b(3, 0, 2);
  PpoAgent a(1, 3, o, 9);
  a.train_trial(b);
  Checkpoint ck;
  a.save_state(ck, "rl.");
  PpoAgent c(1, 3, o, 1234);
  c.load_state(ck, "rl.");
  a.train_trial(b);
  c.train_trial(b);
  CHECK(a.model().params().values().to_vector() == c.model().params().values().to_vector());
  Checkpoint empty;
  CHECK_THROWS_WITH(c.load_state(empty, "rl."), Catch::Contains("no PPO agent state"));
  CHECK_THROWS_WITH(parse_agent_kind("sac"), Catch::Contains("unknown meta-RL agent"));
}
