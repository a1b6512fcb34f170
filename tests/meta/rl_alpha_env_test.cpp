// The alpha-editing environment on planted alpha matrices: observation
// layout, move masking, raise/lower arithmetic, estimation triggers, reward
// rules, episode ends and the best state loaded.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/error.h"
#include "metanas/meta/rl/alpha_env.h"
#include "metanas/nas/search_network.h"

using namespace metanas;
using namespace metanas::meta::rl;
using nas::CellType;

namespace {

nas::SearchConfig tiny() {
  nas::SearchConfig c;
  c.C = 2;
  c.layers = 2;
  c.nodes = 3;
  c.image_size = 8;
  c.num_classes = 2;
  c.stem_multiplier = 1;
  return c;
}

void plant(nas::SearchNetwork& net, CellType t, int node, const std::vector<float>& v) {
  Tensor& a = (*net.alphas())[net.alpha_index(t, node)];
  a.copy_(Tensor::from_vector(v, a.shape()));
}

// Every alpha of both cells 0 (uniform p = 1/7).
void zero_alphas(nas::SearchNetwork& net) { net.alphas()->values().zero_(); }

// Plays back planted accuracies.
struct Planted {
  std::vector<float> accs;
  size_t next = 0;
  float operator()() { return accs.at(next++); }
};

}  // namespace

TEST_CASE("alpha env: observation layout, move mask, illegal moves", "[rl]") {
  Rng rng(1);
  nas::SearchNetwork net(tiny(), rng);
  zero_alphas(net);
  AlphaEnvOptions o;
  o.random_start = false;
  Planted acc{{0.5f}};
  AlphaEnv env(net, CellType::Normal, o, std::ref(acc), rng);
  CHECK(env.obs_size() == 3 + 5 + 7);
  CHECK(env.action_count() == 5 + 14);
  const Observation ob = env.reset();
  // Edge 0 -> 2 (row 0 of node 0): both inputs of node 0 are in its top 2.
  const std::vector<float> head = {0, 2, 1, 1, 1, 0, 1, 1};
  CHECK(std::vector<float>(ob.obs.begin(), ob.obs.begin() + 8) == head);
  for (int k = 0; k < 7; ++k) CHECK(ob.obs[8 + k] == Approx(1.0 / 7));
  const std::vector<int32_t> moves = {1, 1, 0, 1, 1};
  CHECK(std::vector<int32_t>(ob.mask.begin(), ob.mask.begin() + 5) == moves);
  for (int a = 5; a < 19; ++a) CHECK(ob.mask[a] == 1);
  // An illegal move (to the node it stands on) changes nothing.
  const Transition t0 = env.step(2);
  CHECK(t0.next.obs == ob.obs);
  CHECK(env.illegal_moves() == 1);
  CHECK(t0.reward == 0.f);
  // Move 2 -> 1: the new edge is row 1 of node 0; node 1's moves exclude 0.
  const Transition t1 = env.step(1);
  CHECK(t1.next.obs[0] == 2.f);
  CHECK(t1.next.obs[1] == 1.f);
  const std::vector<int32_t> from1 = {0, 0, 1, 1, 1};
  CHECK(std::vector<int32_t>(t1.next.mask.begin(), t1.next.mask.begin() + 5) == from1);
  CHECK(acc.next == 1);  // only the baseline was estimated
}

TEST_CASE("alpha env: the top-2 flag follows the strongest op of each input", "[rl]") {
  Rng rng(2);
  nas::SearchNetwork net(tiny(), rng);
  zero_alphas(net);
  // Node 2 (cell node 4) has inputs 0..3; inputs 1 and 3 get a strong op.
  std::vector<float> a(4 * 7, 0.f);
  a[1 * 7 + 2] = 3.f;
  a[3 * 7 + 5] = 2.f;
  plant(net, CellType::Normal, 2, a);
  AlphaEnvOptions o;
  o.random_start = false;
  Planted acc{{0.1f}};
  AlphaEnv env(net, CellType::Normal, o, std::ref(acc), rng);
  env.reset();                            // 0 -> 2
  CHECK(env.step(4).next.obs[2] == 0.f);  // 2 -> 4: input 2 of node 4 is not in its top 2
  CHECK(env.step(1).next.obs[2] == 1.f);  // 4 -> 1: input 1 is
  CHECK(env.step(3).next.obs[2] == 1.f);  // 1 -> 3: row 1 of node 3 (all rows tie: the lower inputs win)
}

TEST_CASE("alpha env: raise and lower set logits to log(p) + ln 10 on the current edge only", "[rl]") {
  Rng rng(3);
  nas::SearchNetwork net(tiny(), rng);
  zero_alphas(net);
  AlphaEnvOptions o;
  o.random_start = false;
  Planted acc{{0.5f}};
  AlphaEnv env(net, CellType::Normal, o, std::ref(acc), rng);
  env.reset();
  const std::vector<float> reduce_before = (*net.alphas())[net.alpha_index(CellType::Reduce, 0)].to_vector();
  const Transition t = env.step(5 + 3);  // raise op 3 on edge 0 -> 2 (row 0 of node 0)
  const double u = 1.0 / 7;
  const std::vector<float> a = (*net.alphas())[net.alpha_index(CellType::Normal, 0)].to_vector();
  for (int k = 0; k < 7; ++k) {
    const double raw = (k == 3 ? u + 0.1 : u) + 0.01;
    CHECK(a[k] == Approx(std::log(raw) + std::log(10.0)).margin(1e-5));
    CHECK(a[7 + k] == 0.f);  // row 1 untouched
    CHECK(t.next.obs[8 + k] == Approx(raw / (1.0 + 0.07 + 0.1)).margin(1e-6));
  }
  CHECK((*net.alphas())[net.alpha_index(CellType::Reduce, 0)].to_vector() == reduce_before);
  // Lowering below 0: the step shrinks so that p stays 0.01 (then + 0.01).
  std::vector<float> low(2 * 7, 0.f);
  low[0] = std::log(0.05f);
  for (int k = 1; k < 7; ++k) low[k] = std::log(0.95f / 6);
  plant(net, CellType::Normal, 0, low);
  AlphaEnv env2(net, CellType::Normal, o, std::ref(acc), rng);
  acc.next = 0;
  env2.reset();
  const Transition t2 = env2.step(5 + 7 + 0);  // lower op 0
  const double total = 0.01 + 0.95 + 7 * 0.01;
  CHECK(t2.next.obs[8] == Approx(0.02 / total).margin(1e-5));
  // Raising past 1 stops at 0.99.
  std::vector<float> high(2 * 7, -20.f);
  high[0] = 0.f;
  plant(net, CellType::Normal, 0, high);
  AlphaEnv env3(net, CellType::Normal, o, std::ref(acc), rng);
  acc.next = 0;
  const Observation h0 = env3.reset();
  const Transition t3 = env3.step(5 + 0);
  const double p0 = h0.obs[8], rest = 1.0 - p0;
  CHECK(t3.next.obs[8] == Approx((0.99 + 0.01) / (0.99 + rest + 0.07)).margin(1e-5));
}

TEST_CASE("alpha env: estimation triggers, reward rules, episode end, best state", "[rl]") {
  Rng rng(4);
  nas::SearchNetwork net(tiny(), rng);
  zero_alphas(net);
  AlphaEnvOptions o;
  o.random_start = false;
  o.estimations = 3;
  // The estimator marks the weights with its call number (as a DARTS step
  // would change them) and plays back planted accuracies.
  std::vector<float> accs = {0.5f, 0.6f, 0.55f, 0.9f};
  int calls = 0;
  Tensor& w0 = net.weights()[0];
  auto est = [&]() {
    std::vector<float> w = w0.to_vector();
    w[0] = static_cast<float>(100 + calls);
    w0.copy_(Tensor::from_vector(w, w0.shape()));
    return accs.at(calls++);
  };
  AlphaEnv env(net, CellType::Normal, o, est, rng);
  env.reset();  // baseline 0.5 (call 0); edge 0 -> 2
  CHECK(env.first_baseline() == 0.5f);
  // A move without a change: no estimation.
  CHECK(env.step(3).reward == 0.f);  // 2 -> 3
  CHECK(calls == 1);
  // Change, then move into a new edge: estimate 0.6 > 0.5.
  env.step(5 + 1);
  Transition t = env.step(0);  // 3 -> 0
  CHECK(calls == 2);
  CHECK(t.reward == Approx(0.2 + (0.6 - 0.5) * 0.8 / 0.5 + 0.2 * 1));
  CHECK_FALSE(t.done);
  const std::vector<float> best_alphas = net.alphas()->values().to_vector();
  // Change, then back into the same (already estimated) edge: no estimation.
  env.step(5 + 2);
  env.step(3);  // 0 -> 3: same undirected edge
  CHECK(calls == 2);
  // ... the pending change was consumed by that move: the next move does not estimate.
  CHECK(env.step(4).reward == 0.f);  // 3 -> 4
  CHECK(calls == 2);
  // Change, new edge, lower accuracy than the baseline 0.6: only the per-estimation bonus.
  env.step(5 + 4);
  t = env.step(1);  // 4 -> 1
  CHECK(calls == 3);
  CHECK(t.reward == Approx(0.2 * 2));
  // The third estimation ends the episode (baseline now 0.55).
  env.step(5 + 7 + 6);
  t = env.step(2);  // 1 -> 2
  CHECK(calls == 4);
  CHECK(t.reward == Approx(0.2 + (0.9 - 0.55) * 0.8 / 0.45 + 0.2 * 3));
  CHECK(t.done);
  CHECK(env.best_accuracy() == 0.9f);
  // Reset restores the trial's start state (weights and alphas).
  accs.push_back(0.3f);
  env.reset();
  CHECK(net.alphas()->values().to_vector() != best_alphas);
  CHECK(net.weights()[0].to_vector()[0] == 104.f);  // the new baseline's DARTS step on the start state
  // load_best: the state right after the best estimate (call 3).
  env.load_best();
  CHECK(net.weights()[0].to_vector()[0] == 103.f);
  (void)best_alphas;
}

TEST_CASE("alpha env: max_steps ends an episode, bad options are rejected", "[rl]") {
  Rng rng(5);
  nas::SearchNetwork net(tiny(), rng);
  AlphaEnvOptions o;
  o.max_steps = 3;
  Planted acc{{0.2f, 0.2f}};
  AlphaEnv env(net, CellType::Reduce, o, std::ref(acc), rng);
  const Observation ob = env.reset();
  int a = 5;  // raise op 0: always valid
  CHECK_FALSE(env.step(a).done);
  CHECK_FALSE(env.step(a).done);
  CHECK(env.step(a).done);
  CHECK(ob.obs[0] < ob.obs[1]);  // a random start enters an edge from its lower end
  AlphaEnvOptions bad;
  bad.alpha_step = 1.5f;
  CHECK_THROWS_WITH(AlphaEnv(net, CellType::Normal, bad, std::ref(acc), rng), Catch::Contains("alpha_step"));
  CHECK_THROWS_WITH(env.step(19), Catch::Contains("out of range"));
}
