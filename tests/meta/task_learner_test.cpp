// TaskLearner: support mini-batches (whole set vs random draws), fixed
// architectures, gumbel-softmax evaluation, and clear errors for bad episodes.
#include <catch2/catch.hpp>

#include "metanas/engine/error.h"
#include "metanas/meta/task_learner.h"
#include "metanas/nas/discrete_network.h"
#include "metanas/nas/search_network.h"
#include "tests/meta/fixtures.h"
#include "tests/meta/tiny_model.h"

using namespace metanas;
using namespace metanas::testing;

namespace {
constexpr int D = 3, K = 3;

std::vector<float> adapted_after(const nas::Model& meta_model, const meta::TaskLearnerOptions& o,
                                 const data::Episode& ep, uint64_t seed) {
  meta::TaskLearner tl(meta_model, o);
  Rng rng(seed);
  tl.adapt(ep, rng);
  return tl.model().weights().values().to_vector();
}
}  // namespace

TEST_CASE("TaskLearner draws support batches from the learner's Rng", "[meta][task]") {
  Rng rng(61);
  TinyModel m(D, K, rng);
  data::Episode ep = tiny_episode(D, K, 4, 1, rng);  // 12 support images
  meta::TaskLearnerOptions o = meta::TaskLearnerOptions::for_training(tiny_config(K));
  o.arch_steps = 3;
  o.darts.w_lr = 0.05f;

  // Whole support set: no draws, the result does not depend on the Rng.
  o.batch_size = 0;
  CHECK(adapted_after(m, o, ep, 1) == adapted_after(m, o, ep, 2));
  o.batch_size = 12;  // == |S|: the whole set as well (MetaNAS uses no sampler then)
  CHECK(adapted_after(m, o, ep, 1) == adapted_after(m, o, ep, 3));
  const std::vector<float> whole = adapted_after(m, o, ep, 1);

  // Random batches: reproducible per seed, different across seeds.
  for (bool repl : {true, false}) {
    o.batch_size = 5;
    o.with_replacement = repl;
    CHECK(adapted_after(m, o, ep, 1) == adapted_after(m, o, ep, 1));
    CHECK(adapted_after(m, o, ep, 1) != adapted_after(m, o, ep, 2));
    CHECK(adapted_after(m, o, ep, 1) != whole);
  }
  // Without replacement a batch cannot exceed the support set.
  o.batch_size = 13;
  o.with_replacement = false;
  meta::TaskLearner tl(m, o);
  Rng r(1);
  CHECK_THROWS_WITH(tl.adapt(ep, r), Catch::Contains("batch_size 13") && Catch::Contains("12 images"));
}

TEST_CASE("TaskLearner copies the meta state in for every task and leaves the meta model alone", "[meta][task]") {
  Rng rng(62);
  TinyModel m(D, K, rng);
  meta::TaskLearnerOptions o = meta::TaskLearnerOptions::for_training(tiny_config(K));
  meta::TaskLearner tl(m, o);
  data::Episode ep = tiny_episode(D, K, 2, 1, rng);
  const std::vector<float> w0 = m.weights().values().to_vector();
  tl.adapt(ep, rng);
  CHECK(tl.model().weights().values().to_vector() != w0);
  CHECK(m.weights().values().to_vector() == w0);
  tl.reset_to_meta();
  CHECK(tl.model().weights().values().to_vector() == w0);
  CHECK(tl.model().alphas()->values().to_vector() == m.alphas()->values().to_vector());
}

TEST_CASE("TaskLearner adapts fixed architectures and gumbel-softmax search networks", "[meta][task]") {
  Rng rng(63);
  data::Episode ep = random_episode(rng, {0, 0, 1, 1, 2, 2}, {0, 1, 2});
  meta::MetaConfig cfg;
  cfg.task.steps = 2;
  cfg.task.batch_size = 4;

  SECTION("ConvNet4 (no alphas), both inner optimizers") {
    ep = random_episode(rng, {0, 0, 1, 1, 2, 2}, {0, 1, 2}, 16);
    nas::ConvNet4Config cc;
    cc.image_size = 16;
    cc.num_classes = 3;
    cc.channels = 4;
    nas::ConvNet4 net(cc, rng);
    for (auto opt : {meta::InnerOptimizer::Adam, meta::InnerOptimizer::Sgd}) {
      cfg.task.optimizer = opt;
      meta::TaskLearner tl(net, meta::TaskLearnerOptions::for_training(cfg));
      meta::AdaptResult r = tl.adapt(ep, rng);
      CHECK(r.steps == 2);
      CHECK(std::isfinite(r.last_support_loss.item()));
      CHECK(tl.model().weights().values().to_vector() != net.weights().values().to_vector());
      meta::QueryResult q = tl.evaluate_query(ep);
      CHECK(std::isfinite(q.loss.item()));
    }
  }
  SECTION("gumbel-softmax search network") {
    nas::SearchNetwork net(tiny_search_config(1, 1), rng);
    cfg.task.normalizer = nas::Normalizer::GumbelSoftmax;
    meta::TaskLearner tl(net, meta::TaskLearnerOptions::for_training(cfg));
    tl.adapt(ep, rng);
    CHECK(std::isfinite(tl.evaluate_query(ep).loss.item()));
    CHECK(tl.model().alphas()->values().to_vector() != net.alphas()->values().to_vector());
  }
}

TEST_CASE("TaskLearner rejects malformed episodes with a clear message", "[meta][task]") {
  Rng rng(64);
  TinyModel m(D, K, rng);
  meta::TaskLearner tl(m, meta::TaskLearnerOptions::for_training(tiny_config(K)));
  data::Episode ep = tiny_episode(D, K, 2, 1, rng);
  data::Episode bad = ep;
  bad.support_y = Tensor::from_ints({0, 1}, Shape{2});
  CHECK_THROWS_WITH(tl.adapt(bad, rng), Catch::Contains("label counts"));
  bad = ep;
  bad.support_x = Tensor::zeros(Shape{6, D});
  CHECK_THROWS_WITH(tl.adapt(bad, rng), Catch::Contains("[N, C, H, W]"));
  bad = ep;
  bad.query_x = Tensor();
  CHECK_THROWS_WITH(tl.adapt(bad, rng), Catch::Contains("undefined"));
  meta::TaskLearnerOptions o = meta::TaskLearnerOptions::for_training(tiny_config(K));
  o.arch_steps = 0;
  o.weight_steps = 0;
  CHECK_THROWS_WITH(meta::TaskLearner(m, o), Catch::Contains("at least one step"));
}
