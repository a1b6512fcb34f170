// Regularized MetaNAS in the meta layer: cosine-power annealing of the meta
// learning rates, the TaskLearner's DARTS- beta and skip-dropout schedules,
// P-DARTS stages (task-local drops, redone for the query) and the skip limit,
// TSE steps, and MetaNAS (REPTILE) / T-NAS meta-steps with the regularizers on.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "metanas/meta/config.h"
#include "metanas/meta/cosine_power.h"
#include "metanas/meta/learner.h"
#include "metanas/meta/task_learner.h"
#include "metanas/nas/search_network.h"
#include "tests/meta/fixtures.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

int pruned_in(const nas::SearchNetwork& net) {
  int n = 0;
  for (float v : net.alphas()->values().to_vector()) n += v <= 0.5f * nas::kPrunedLogit;
  return n;
}

meta::TaskLearnerOptions tiny_options() {
  meta::MetaConfig cfg;
  cfg.model.search = tiny_search_config(2, 2);
  cfg.episodes.ways = 3;
  meta::TaskLearnerOptions o = meta::TaskLearnerOptions::for_training(cfg);
  o.arch_steps = 2;
  o.batch_size = 0;
  o.drop_path_prob = 0.f;
  return o;
}

data::Episode tiny_ep(Rng& rng) { return random_episode(rng, {0, 1, 2, 0, 1, 2}, {0, 1, 2}); }

}  // namespace

TEST_CASE("cosine-power annealing: lr_max through warm-up, lr_min at the end, the power curve between",
          "[meta][regularizers]") {
  using meta::cosine_power_lr;
  REQUIRE(cosine_power_lr(0, 100, 20, 1.0, 1e-8, 2.0) == 1.0);
  REQUIRE(cosine_power_lr(20, 100, 20, 1.0, 1e-8, 2.0) == 1.0);
  REQUIRE(cosine_power_lr(100, 100, 20, 1.0, 1e-8, 2.0) == Approx(1e-8));
  // Half way: c = 1/2, (2^0.5 - 1) / (2 - 1).
  REQUIRE(cosine_power_lr(60, 100, 20, 0.6, 0.0, 2.0) == Approx(0.6 * (std::sqrt(2.0) - 1.0)));
  // p = 10 at a quarter: c = (1 + cos(pi/4)) / 2.
  const double c = 0.5 * (1 + std::cos(3.14159265358979 / 4));
  REQUIRE(cosine_power_lr(40, 100, 20, 1.0, 0.1, 10.0) == Approx(0.1 + 0.9 * (std::pow(10.0, c) - 1) / 9));
  REQUIRE(cosine_power_lr(60, 100, 20, 1.0, 0.0, 1.0) == Approx(0.5));  // p = 1: plain cosine
  REQUIRE_THROWS(cosine_power_lr(1, 10, 0, 1, 0, 0.5));

  meta::MetaConfig cfg;
  cfg.model.search = tiny_search_config(2, 2);
  cfg.episodes.ways = 3;
  cfg.meta.iterations = 10;
  cfg.meta.warmup_iterations = 4;
  cfg.meta.cosine_power = true;
  auto learner = meta::make_meta_learner(cfg, Device::CPU);
  REQUIRE(learner->next_w_lr() == Approx(1.0f));
  REQUIRE(learner->next_a_lr() == Approx(0.6f));
  cfg.meta.w_anneal = true;
  REQUIRE_THROWS_WITH(cfg.validate(), Catch::Contains("cosine_power"));
}

TEST_CASE("TaskLearner: DARTS- beta per step and at the query; skip dropout only while meta-training",
          "[meta][regularizers]") {
  Rng rng(1);
  meta::TaskLearnerOptions o = tiny_options();
  nas::SearchConfig sc = tiny_search_config(2, 2);
  sc.aux_skip = true;
  nas::SearchNetwork meta_net(sc, rng);
  o.arch_steps = 5;
  {
    meta::TaskLearner tl(meta_net, o);
    const float want[] = {1.f, 0.8f, 0.6f, 0.4f, 0.2f};
    for (int s = 0; s < 5; ++s) REQUIRE(tl.step_context(s, false, nullptr).aux_skip_beta == Approx(want[s]));
    REQUIRE(tl.final_context().aux_skip_beta == 0.f);
  }
  o.reg.aux_beta_schedule = "fixed";
  o.reg.aux_beta = 0.7f;
  o.reg.skip_dropout = {0.5f};
  {
    meta::TaskLearner tl(meta_net, o);
    REQUIRE(tl.step_context(3, false, nullptr).aux_skip_beta == 0.7f);
    REQUIRE(tl.final_context().aux_skip_beta == 0.7f);
    REQUIRE(tl.step_context(2, false, nullptr).skip_dropout == Approx(0.5f * std::exp(-0.4f)));
    REQUIRE(tl.final_context().skip_dropout == 0.f);
    Rng r(2);
    data::Episode ep = tiny_ep(r);
    tl.adapt(ep, r);
    REQUIRE(std::isfinite(tl.evaluate_query(ep).loss.item()));
  }
  meta::MetaConfig cfg;
  cfg.task.reg.skip_dropout = {0.5f};
  REQUIRE(meta::TaskLearnerOptions::for_training(cfg).reg.skip_dropout.size() == 1);
  REQUIRE(meta::TaskLearnerOptions::for_evaluation(cfg).reg.skip_dropout.empty());
}

TEST_CASE("TaskLearner: P-DARTS stages drop ops task-locally, redo them for the query, limit skips",
          "[meta][regularizers]") {
  Rng rng(3);
  meta::TaskLearnerOptions o = tiny_options();
  o.reg.stages = 3;
  o.reg.keep_ops = {5, 4};
  o.reg.skip_limit = 1;
  nas::SearchNetwork meta_net(tiny_search_config(2, 2), rng);
  meta::TaskLearner tl(meta_net, o);
  REQUIRE(tl.options().arch_steps == 6);  // 3 stages of 2 steps
  Rng r(4);
  data::Episode ep = tiny_ep(r);
  meta::AdaptResult ar = tl.adapt(ep, r);
  REQUIRE(ar.steps == 6);
  auto& net = dynamic_cast<nas::SearchNetwork&>(tl.model());
  REQUIRE(pruned_in(net) == 0);  // undone: the meta update sees no drop
  tl.evaluate_query(ep);
  // 2 cell types x (2 + 3) rows, 3 of 7 ops dropped per row (a skip the
  // limit lowers in a dropped row lands below the pruned logits as well).
  REQUIRE(pruned_in(net) >= 2 * 5 * 3);
  REQUIRE(pruned_in(net) <= 2 * 5 * 3 + 4);
  int skips = 0;
  for (const auto& node : net.genotype().normal)
    for (const auto& e : node) skips += e.op == nas::Primitive::SkipConnect;
  REQUIRE(skips <= 1);
  // Warm-up: no architecture steps, so no drops.
  tl.adapt(ep, r, /*warmup=*/true);
  tl.evaluate_query(ep);
  REQUIRE(pruned_in(net) == 0);
}

TEST_CASE("TaskLearner: the skip limit before the query, the paper's rule or the released one",
          "[meta][regularizers]") {
  // Planted meta alphas (2 nodes, normal rows r = 0..4): every row prefers skip
  // (1 + 0.1 r) over sep_conv_3x3 (0.5), column 1 is -0.01 r, and the input pairs
  // derive rows 0, 1 (node 0) and 3, 4 (node 1: inputs 1, 2). A warm-up
  // adaptation leaves the alphas as planted.
  auto derived_skips = [](bool released) {
    Rng rng(3);
    meta::TaskLearnerOptions o = tiny_options();
    o.reg.skip_limit = 2;
    o.reg.skip_limit_released = released;
    nas::SearchNetwork meta_net(tiny_search_config(2, 2), rng);
    ParamSet& A = *meta_net.alphas();
    std::vector<float> a = A.values().to_vector();
    int r = 0;
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < i + 2; ++j, ++r) {
        const int64_t o7 = A.offset(meta_net.alpha_index(nas::CellType::Normal, i)) + j * 7;
        for (int k = 0; k < 7; ++k) a[o7 + k] = 0.f;
        a[o7 + 2] = 1.f + 0.1f * static_cast<float>(r);
        a[o7 + 5] = 0.5f;
        a[o7 + 1] = -0.01f * static_cast<float>(r);
      }
      const auto pairs = nas::SearchNetwork::input_pairs(i + 2);
      const std::pair<int, int> want = i == 0 ? std::make_pair(0, 1) : std::make_pair(1, 2);
      for (size_t q = 0; q < pairs.size(); ++q)
        a[A.offset(meta_net.pair_index(nas::CellType::Normal, i)) + static_cast<int64_t>(q)] = pairs[q] == want ? 5.f : 0.f;
    }
    A.values().copy_(Tensor::from_vector(a, A.values().shape()));
    meta::TaskLearner tl(meta_net, o);
    Rng r2(4);
    data::Episode ep = tiny_ep(r2);
    tl.adapt(ep, r2, /*warmup=*/true);
    tl.evaluate_query(ep);
    std::vector<int> rows;
    const int first[2] = {0, 2};
    const nas::Genotype g = dynamic_cast<nas::SearchNetwork&>(tl.model()).genotype();
    for (int i = 0; i < 2; ++i)
      for (const auto& e : g.normal[static_cast<size_t>(i)])
        if (e.op == nas::Primitive::SkipConnect) rows.push_back(first[i] + e.input);
    std::sort(rows.begin(), rows.end());
    return rows;
  };
  REQUIRE(derived_skips(false) == std::vector<int>{3, 4});  // the M = 2 strongest skips
  // Released: visits r = 4, 3, 2, 1 lowering rows 3, 2, 1, 0; stops at 1 < M.
  REQUIRE(derived_skips(true) == std::vector<int>{4});
}

TEST_CASE("MetaNAS (REPTILE) and T-NAS meta-steps with the regularizers", "[meta][regularizers]") {
  for (const char* alg : {"reptile", "fomaml"}) {
    meta::MetaConfig cfg;
    cfg.algorithm = meta::parse_algorithm(alg);
    cfg.model.search = tiny_search_config(2, 2);
    cfg.model.search.aux_skip = true;
    cfg.model.search.mixed_op = "max_w";
    cfg.model.search.partial_channels = 2;
    cfg.model.search.edge_normalization = true;
    cfg.episodes.ways = 3;
    cfg.task.steps = 2;
    cfg.task.batch_size = 0;
    cfg.task.reg.stages = 2;
    cfg.task.reg.keep_ops = {4};
    cfg.task.reg.skip_dropout = {0.f, 0.3f};
    if (cfg.algorithm == meta::Algorithm::Reptile) {
      cfg.task.reg.tse_steps = 1;
    } else {
      cfg.task.optimizer = meta::InnerOptimizer::Sgd;
      cfg.meta.optimizer = meta::MetaOptimizer::Adam;
    }
    cfg.meta.warmup_iterations = 0;
    cfg.meta.meta_batch_size = 2;
    cfg.meta.cosine_power = true;
    cfg.meta.iterations = 4;
    auto learner = meta::make_meta_learner(cfg, Device::CPU);
    const std::vector<float> a0 = learner->meta_model().alphas()->values().to_vector();
    Rng r(5);
    std::vector<data::Episode> tasks = {tiny_ep(r), tiny_ep(r)};
    INFO(alg);
    meta::MetaStepStats st = learner->meta_step(tasks);
    REQUIRE(std::isfinite(st.query_loss_value()));
    const std::vector<float> a1 = learner->meta_model().alphas()->values().to_vector();
    REQUIRE(a1 != a0);
    for (float v : a1) REQUIRE(std::fabs(v) < 100.f);  // no task-local drop reached the meta model
  }
  // Round trip of the new configuration keys, and a typo is an error.
  meta::MetaConfig cfg;
  cfg.task.reg.tse_steps = 2;
  cfg.meta.cosine_power = true;
  REQUIRE(meta::MetaConfig::from_json(cfg.to_json()) == cfg);
  REQUIRE_THROWS_WITH(meta::MetaConfig::from_json("{\"task\": {\"reg\": {\"stage\": 3}}}"),
                      Catch::Contains("unknown key 'stage'"));
  meta::MetaConfig bad;
  bad.task.reg.tse_steps = 1;
  bad.task.optimizer = meta::InnerOptimizer::Sgd;
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("tse_steps"));
}
