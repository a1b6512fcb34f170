// REPTILE (MetaNAS) against a hand-computed double-precision reference on a
// tiny model; warm-up leaves alpha unchanged; the temperature schedule
// restarts for each task; task-optimizer state persists across tasks.
#include <catch2/catch.hpp>

#include "metanas/meta/reptile.h"
#include "tests/meta/tiny_model.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

constexpr int D = 3, K = 3;

}  // namespace

TEST_CASE("Reptile with the DARTS task optimizer matches a hand-computed update", "[meta][reptile]") {
  Rng rng(11);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  meta::MetaConfig cfg = tiny_config(K);
  cfg.task.steps = 2;
  cfg.task.t_max = 1.0;
  cfg.task.t_min = 0.4;
  cfg.task.darts.w_lr = 0.1f;
  cfg.task.darts.a_lr = 0.05f;
  cfg.task.darts.a_weight_decay = 1e-3f;
  cfg.task.darts.w_grad_clip = 0.1f;  // active for these gradients (checked below)
  cfg.meta.w_lr = 1.0f;
  cfg.meta.a_lr = 0.6f;
  cfg.meta.query_eval = false;
  TinyParams meta_ref = TinyParams::of(*model);
  meta::Reptile learner(cfg, std::move(model));

  // Reference task optimizers: Adam betas (0, 0.999), state kept across tasks.
  RefAdam aw{0.1, 0.0, 0.999};
  aw.clip = 0.1;
  RefAdam aa{0.05, 0.0, 0.999};
  aa.wd = 1e-3;
  bool clip_was_active = false;

  for (int it = 0; it < 2; ++it) {
    std::vector<data::Episode> eps;
    for (int t = 0; t < 3; ++t) eps.push_back(tiny_episode(D, K, 2, 1, rng));
    // Reference meta-iteration.
    std::vector<TinyParams> adapted;
    for (const auto& ep : eps) {
      TinyParams p = meta_ref;
      TinyBatch b = tiny_batch(ep.support_x, ep.support_y);
      for (int s = 0; s < 2; ++s) {
        const double T = s == 0 ? 1.0 : 0.4;
        TinyParams ga = tiny_grad(p, b, T, D, K);  // architecture step first
        aa.step(tiny_a(p), ga.a);
        TinyParams gw = tiny_grad(p, b, T, D, K);  // then the weight step at the new alpha
        double n2 = 0;
        for (double g : tiny_wg(gw)) n2 += g * g;
        clip_was_active |= std::sqrt(n2) > 0.1;
        aw.step(tiny_w(p), tiny_wg(gw));
      }
      adapted.push_back(p);
    }
    TinyParams next = meta_ref;
    auto pn = next.all();
    TinyParams old = meta_ref;
    auto po = old.all();
    const size_t nw = meta_ref.W.size() + meta_ref.b.size();
    for (size_t i = 0; i < pn.size(); ++i) {
      double mean = 0;
      for (auto& a : adapted) mean += *a.all()[i];
      mean /= adapted.size();
      const double lr = i < nw ? 1.0 : 0.6;
      *pn[i] = *po[i] + lr * (mean - *po[i]);
    }
    // The update moves the parameters by much more than the tolerance.
    REQUIRE(max_diff(next, meta_ref) > 1e-2);
    meta_ref = next;

    meta::MetaStepStats st = learner.meta_step(eps);
    CHECK(st.iteration == it + 1);
    CHECK_FALSE(st.warmup);
    CHECK(std::isfinite(st.support_loss_value()));
    CHECK(std::isnan(st.query_loss_value()));  // query evaluation off
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 2e-5);
  }
  CHECK(clip_was_active);
  // The task optimizer's Adam state persisted: 2 iterations x 3 tasks x 2 steps.
  CHECK(learner.task_learner().darts()->w_optimizer().steps() == 12);
}

TEST_CASE("Reptile with an Adam meta-optimizer uses -mean(delta) as the gradient", "[meta][reptile]") {
  Rng rng(5);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  meta::MetaConfig cfg = tiny_config(K);
  cfg.task.steps = 1;
  cfg.task.optimizer = meta::InnerOptimizer::Sgd;  // plain SGD inner loop: easy to follow by hand
  cfg.task.sgd_w_lr = 0.2f;
  cfg.task.sgd_a_lr = 0.1f;
  cfg.task.t_max = cfg.task.t_min = 1.0;
  cfg.meta.optimizer = meta::MetaOptimizer::Adam;
  cfg.meta.w_lr = 0.01f;
  cfg.meta.a_lr = 0.02f;
  cfg.meta.query_eval = false;
  TinyParams meta_ref = TinyParams::of(*model);
  meta::Reptile learner(cfg, std::move(model));
  RefAdam mw{0.01, 0.9, 0.999}, ma{0.02, 0.9, 0.999};

  for (int it = 0; it < 2; ++it) {
    std::vector<data::Episode> eps;
    for (int t = 0; t < 2; ++t) eps.push_back(tiny_episode(D, K, 2, 1, rng));
    TinyParams gsum = meta_ref;
    for (auto* v : gsum.all()) *v = 0;
    for (const auto& ep : eps) {
      TinyParams p = meta_ref;
      TinyParams g = tiny_grad(p, tiny_batch(ep.support_x, ep.support_y), 1.0, D, K);
      auto pp = p.all(), gg = g.all(), gs = gsum.all(), m0 = meta_ref.all();
      const size_t nw = p.W.size() + p.b.size();
      for (size_t i = 0; i < pp.size(); ++i) {
        *pp[i] -= (i < nw ? 0.2 : 0.1) * *gg[i];
        *gs[i] += (*m0[i] - *pp[i]) / eps.size();  // -mean(delta)
      }
    }
    mw.step(tiny_w(meta_ref), tiny_wg(gsum));
    ma.step(tiny_a(meta_ref), gsum.a);
    learner.meta_step(eps);
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 2e-6);
  }
}

TEST_CASE("Reptile warm-up leaves alpha unchanged and holds T at t_max", "[meta][reptile]") {
  Rng rng(3);
  TinyModel* tiny = nullptr;
  meta::MetaConfig cfg = tiny_config(K);
  cfg.task.steps = 3;
  cfg.task.t_max = 2.0;
  cfg.task.t_min = 0.5;
  cfg.meta.warmup_iterations = 2;
  cfg.meta.query_eval = true;
  for (auto opt : {meta::MetaOptimizer::Sgd, meta::MetaOptimizer::Adam}) {
    cfg.meta.optimizer = opt;
    Rng r2(3);
    auto m2 = std::make_unique<TinyModel>(D, K, r2);
    tiny = m2.get();
    meta::Reptile learner(cfg, std::move(m2));
    const std::vector<float> a0 = learner.meta_model().alphas()->values().to_vector();
    const std::vector<float> w0 = learner.meta_model().weights().values().to_vector();
    for (int it = 0; it < 2; ++it) {
      REQUIRE(learner.in_warmup());
      tiny->temperature_log().clear();
      std::vector<data::Episode> eps = {tiny_episode(D, K, 2, 2, rng), tiny_episode(D, K, 2, 2, rng)};
      meta::MetaStepStats st = learner.meta_step(eps);
      CHECK(st.warmup);
      // Bitwise unchanged alphas, changed weights.
      CHECK(learner.meta_model().alphas()->values().to_vector() == a0);
      CHECK(learner.meta_model().weights().values().to_vector() != w0);
      // Every forward (weight steps and query evaluations) at t_max.
      REQUIRE_FALSE(tiny->temperature_log().empty());
      for (float t : tiny->temperature_log()) CHECK(t == 2.0f);
      CHECK(std::isfinite(st.query_acc_value()));
    }
    // After warm-up the architecture moves.
    REQUIRE_FALSE(learner.in_warmup());
    std::vector<data::Episode> eps = {tiny_episode(D, K, 2, 2, rng)};
    CHECK_FALSE(learner.meta_step(eps).warmup);
    CHECK(learner.meta_model().alphas()->values().to_vector() != a0);
  }
}

TEST_CASE("The temperature schedule restarts for each task", "[meta][reptile]") {
  Rng rng(8);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  auto* tiny = model.get();
  meta::MetaConfig cfg = tiny_config(K);
  cfg.task.steps = 3;
  cfg.task.t_max = 1.0;
  cfg.task.t_min = 0.1;
  cfg.meta.query_eval = true;
  meta::Reptile learner(cfg, std::move(model));
  std::vector<data::Episode> eps = {tiny_episode(D, K, 1, 1, rng), tiny_episode(D, K, 1, 1, rng),
                                    tiny_episode(D, K, 1, 1, rng)};
  tiny->temperature_log().clear();
  learner.meta_step(eps);
  // Per task: (arch forward, weight forward) at T = 1, 0.55, 0.1, then the
  // query evaluation at the final temperature; and again from 1 for the next task.
  const std::vector<float> per_task = {1.f, 1.f, 0.55f, 0.55f, 0.1f, 0.1f, 0.1f};
  const auto& log = tiny->temperature_log();
  REQUIRE(log.size() == per_task.size() * eps.size());
  for (size_t i = 0; i < log.size(); ++i) {
    INFO("forward " << i);
    CHECK(log[i] == Approx(per_task[i % per_task.size()]).epsilon(1e-6));
  }
}
