// First-order MAML (T-NAS: weights and alpha jointly) and Auto-MAML (alpha
// only in the outer loop) against hand-computed double-precision updates on a
// tiny model; warm-up leaves alpha unchanged.
#include <catch2/catch.hpp>

#include "metanas/meta/fomaml.h"
#include "tests/meta/tiny_model.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

constexpr int D = 3, K = 3;

meta::MetaConfig fomaml_config(meta::Algorithm alg) {
  meta::MetaConfig cfg = tiny_config(K);
  cfg.algorithm = alg;
  cfg.task.steps = 2;
  cfg.task.optimizer = meta::InnerOptimizer::Sgd;
  cfg.task.sgd_w_lr = 0.3f;
  cfg.task.sgd_a_lr = 0.2f;
  cfg.task.t_max = 1.0;
  cfg.task.t_min = 0.5;
  cfg.meta.optimizer = meta::MetaOptimizer::Adam;
  cfg.meta.w_lr = 0.01f;
  cfg.meta.a_lr = 0.03f;
  return cfg;
}

// One reference meta-iteration. adapt_alpha: T-NAS (inner SGD on alpha too,
// annealed T); otherwise Auto-MAML (alpha fixed inside tasks, T = t_max).
// mw.b1 < 0 selects plain SGD meta steps with mw.lr / ma.lr.
void reference_step(TinyParams& meta_ref, const std::vector<data::Episode>& eps, bool adapt_alpha,
                    bool update_alpha, RefAdam& mw, RefAdam& ma) {
  TinyParams gsum = meta_ref;
  for (auto* v : gsum.all()) *v = 0;
  double T = 1.0;
  for (const auto& ep : eps) {
    TinyParams p = meta_ref;
    TinyBatch s = tiny_batch(ep.support_x, ep.support_y);
    for (int st = 0; st < 2; ++st) {
      T = adapt_alpha && update_alpha ? (st == 0 ? 1.0 : 0.5) : 1.0;
      TinyParams g = tiny_grad(p, s, T, D, K);  // one joint gradient
      auto pw = tiny_w(p);
      auto gw = tiny_wg(g);
      for (size_t i = 0; i < pw.size(); ++i) *pw[i] -= 0.3 * gw[i];
      if (adapt_alpha && update_alpha)
        for (int i = 0; i < 2; ++i) p.a[i] -= 0.2 * g.a[i];
    }
    // Query gradient at the adapted parameters, at the last step's temperature.
    TinyParams gq = tiny_grad(p, tiny_batch(ep.query_x, ep.query_y), T, D, K);
    auto gs = gsum.all(), gg = gq.all();
    for (size_t i = 0; i < gs.size(); ++i) *gs[i] += *gg[i] / eps.size();
  }
  if (mw.b1 < 0) {  // plain SGD meta-optimizer (scale-sensitive, unlike Adam)
    auto pw = tiny_w(meta_ref);
    auto gw = tiny_wg(gsum);
    for (size_t i = 0; i < pw.size(); ++i) *pw[i] -= mw.lr * gw[i];
    if (update_alpha)
      for (int i = 0; i < 2; ++i) meta_ref.a[i] -= ma.lr * gsum.a[i];
    return;
  }
  mw.step(tiny_w(meta_ref), tiny_wg(gsum));
  if (update_alpha) ma.step(tiny_a(meta_ref), gsum.a);
}

}  // namespace

TEST_CASE("First-order MAML over weights and alpha (T-NAS) matches a hand-computed update", "[meta][fomaml]") {
  Rng rng(21);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  TinyParams meta_ref = TinyParams::of(*model);
  meta::Fomaml learner(fomaml_config(meta::Algorithm::Fomaml), std::move(model));
  RefAdam mw{0.01, 0.9, 0.999}, ma{0.03, 0.9, 0.999};
  const TinyParams start = meta_ref;
  for (int it = 0; it < 3; ++it) {
    std::vector<data::Episode> eps;
    for (int t = 0; t < 2; ++t) eps.push_back(tiny_episode(D, K, 2, 2, rng));
    reference_step(meta_ref, eps, true, true, mw, ma);
    meta::MetaStepStats st = learner.meta_step(eps);
    CHECK(std::isfinite(st.query_loss_value()));
    CHECK(st.query_acc_value() >= 0.f);
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 1e-6);
  }
  // Adam moved every parameter by about lr per step: far above the tolerance.
  CHECK(max_diff(learner.meta_model(), start) > 0.02);
  CHECK(std::abs(learner.meta_model().alphas()->values().to_vector()[0] - start.a[0]) > 0.03);
}

TEST_CASE("First-order MAML: the alphas' meta Adam has its own betas (T-NAS theta: 0.5, 0.999)", "[meta][fomaml]") {
  Rng rng(23);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  TinyParams meta_ref = TinyParams::of(*model);
  meta::MetaConfig cfg = fomaml_config(meta::Algorithm::Fomaml);
  cfg.meta.a_adam_beta1 = 0.5f;
  cfg.meta.a_adam_beta2 = 0.99f;
  meta::Fomaml learner(cfg, std::move(model));
  RefAdam mw{0.01, 0.9, 0.999}, ma{0.03, 0.5, 0.99};
  RefAdam mw_same{0.01, 0.9, 0.999}, ma_same{0.03, 0.9, 0.999};
  TinyParams same_betas = meta_ref;
  for (int it = 0; it < 3; ++it) {
    std::vector<data::Episode> eps;
    for (int t = 0; t < 2; ++t) eps.push_back(tiny_episode(D, K, 2, 2, rng));
    reference_step(meta_ref, eps, true, true, mw, ma);
    reference_step(same_betas, eps, true, true, mw_same, ma_same);
    learner.meta_step(eps);
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 1e-6);
  }
  // With shared betas the alphas would have gone elsewhere (the test can fail).
  CHECK(max_diff(learner.meta_model(), same_betas) > 1e-4);
}

TEST_CASE("Auto-MAML adapts alpha only in the outer loop", "[meta][fomaml]") {
  Rng rng(22);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  TinyModel* tiny = model.get();
  TinyParams meta_ref = TinyParams::of(*model);
  meta::Fomaml learner(fomaml_config(meta::Algorithm::AutoMaml), std::move(model));
  CHECK(learner.algorithm() == meta::Algorithm::AutoMaml);
  RefAdam mw{0.01, 0.9, 0.999}, ma{0.03, 0.9, 0.999};
  for (int it = 0; it < 2; ++it) {
    std::vector<data::Episode> eps;
    for (int t = 0; t < 3; ++t) eps.push_back(tiny_episode(D, K, 1, 2, rng));
    reference_step(meta_ref, eps, false, true, mw, ma);
    tiny->temperature_log().clear();
    learner.meta_step(eps);
    // No architecture adaptation inside tasks: T stays at t_max.
    for (float t : tiny->temperature_log()) CHECK(t == 1.0f);
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 1e-6);
  }
}

TEST_CASE("First-order MAML warm-up leaves alpha unchanged", "[meta][fomaml]") {
  Rng rng(23);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  TinyParams meta_ref = TinyParams::of(*model);
  meta::MetaConfig cfg = fomaml_config(meta::Algorithm::Fomaml);
  cfg.meta.warmup_iterations = 1;
  meta::Fomaml learner(cfg, std::move(model));
  RefAdam mw{0.01, 0.9, 0.999}, ma{0.03, 0.9, 0.999};
  const std::vector<float> a0 = learner.meta_model().alphas()->values().to_vector();
  std::vector<data::Episode> eps = {tiny_episode(D, K, 2, 2, rng), tiny_episode(D, K, 2, 2, rng)};
  reference_step(meta_ref, eps, true, false, mw, ma);
  meta::MetaStepStats st = learner.meta_step(eps);
  CHECK(st.warmup);
  CHECK(learner.meta_model().alphas()->values().to_vector() == a0);
  CHECK(max_diff(learner.meta_model(), meta_ref) < 1e-6);
  // The next step (after warm-up) moves alpha with a fresh alpha Adam state.
  eps = {tiny_episode(D, K, 2, 2, rng)};
  reference_step(meta_ref, eps, true, true, mw, ma);
  learner.meta_step(eps);
  CHECK(learner.meta_model().alphas()->values().to_vector() != a0);
  CHECK(max_diff(learner.meta_model(), meta_ref) < 1e-6);
}

TEST_CASE("First-order MAML with an SGD meta-optimizer takes the mean query gradient", "[meta][fomaml]") {
  Rng rng(24);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  TinyParams meta_ref = TinyParams::of(*model);
  meta::MetaConfig cfg = fomaml_config(meta::Algorithm::Fomaml);
  cfg.meta.optimizer = meta::MetaOptimizer::Sgd;
  cfg.meta.w_lr = 0.5f;
  cfg.meta.a_lr = 0.4f;
  meta::Fomaml learner(cfg, std::move(model));
  RefAdam mw{0.5, -1.0, 0.0}, ma{0.4, -1.0, 0.0};
  const TinyParams start = meta_ref;
  for (int it = 0; it < 2; ++it) {
    std::vector<data::Episode> eps;
    for (int t = 0; t < 3; ++t) eps.push_back(tiny_episode(D, K, 2, 2, rng));
    reference_step(meta_ref, eps, true, true, mw, ma);
    learner.meta_step(eps);
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 2e-6);
  }
  CHECK(max_diff(learner.meta_model(), start) > 1e-2);
}

TEST_CASE("Auto-MAML with the image split: theta from the held tasks first, then w under the new theta",
          "[meta][fomaml]") {
  Rng rng(25);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  TinyParams meta_ref = TinyParams::of(*model);
  meta::MetaConfig cfg = fomaml_config(meta::Algorithm::AutoMaml);
  cfg.meta.auto_maml_split = meta::AutoMamlSplit::Images;
  meta::Fomaml learner(cfg, std::move(model));
  CHECK(learner.wants_search_tasks());
  RefAdam mw{0.01, 0.9, 0.999}, ma{0.03, 0.9, 0.999};
  // Weights-only adaptation (T = t_max), then the query gradient.
  auto query_grad = [&](const data::Episode& ep) {
    TinyParams p = meta_ref;
    const TinyBatch s = tiny_batch(ep.support_x, ep.support_y);
    for (int st = 0; st < 2; ++st) {
      const TinyParams g = tiny_grad(p, s, 1.0, D, K);
      auto pw = tiny_w(p);
      const auto gw = tiny_wg(g);
      for (size_t i = 0; i < pw.size(); ++i) *pw[i] -= 0.3 * gw[i];
    }
    return tiny_grad(p, tiny_batch(ep.query_x, ep.query_y), 1.0, D, K);
  };
  for (int it = 0; it < 2; ++it) {
    std::vector<data::Episode> train, search;
    for (int t = 0; t < 2; ++t) train.push_back(tiny_episode(D, K, 1, 2, rng));
    for (int t = 0; t < 3; ++t) search.push_back(tiny_episode(D, K, 1, 2, rng));
    CHECK_THROWS_WITH(learner.meta_step(train), Catch::Matchers::Contains("meta_step_split"));
    std::vector<double> ga(2, 0.0);
    for (const auto& ep : search) {
      const TinyParams g = query_grad(ep);
      for (int i = 0; i < 2; ++i) ga[i] += g.a[i] / search.size();
    }
    ma.step(tiny_a(meta_ref), ga);  // theta first ...
    std::vector<double> gw;
    for (const auto& ep : train) {  // ... then w, adapted under the new theta
      const std::vector<double> g = tiny_wg(query_grad(ep));
      if (gw.empty()) gw.assign(g.size(), 0.0);
      for (size_t i = 0; i < g.size(); ++i) gw[i] += g[i] / train.size();
    }
    mw.step(tiny_w(meta_ref), gw);
    learner.meta_step_split(train, search);
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 1e-6);
  }
  // Without the split option the split step is refused.
  meta::Fomaml plain(fomaml_config(meta::Algorithm::AutoMaml),
                     std::make_unique<TinyModel>(D, K, rng));
  std::vector<data::Episode> one = {tiny_episode(D, K, 1, 2, rng)};
  CHECK_THROWS_WITH(plain.meta_step_split(one, one), Catch::Matchers::Contains("auto_maml_split"));
}

TEST_CASE("First-order MAML: meta.w_weight_decay is the weights' meta Adam L2 decay (T-NAS retraining: 3e-4)",
          "[meta][fomaml]") {
  Rng rng(25);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  TinyParams meta_ref = TinyParams::of(*model);
  meta::MetaConfig cfg = fomaml_config(meta::Algorithm::Fomaml);
  cfg.meta.w_weight_decay = 0.5f;  // large, so that the decay term moves the update measurably
  meta::Fomaml learner(cfg, std::move(model));
  // torch.optim.Adam(weight_decay=wd): g + wd * p enters both moments; the alphas keep their own (0).
  RefAdam mw{0.01, 0.9, 0.999}, ma{0.03, 0.9, 0.999};
  mw.wd = 0.5;
  RefAdam mw_plain{0.01, 0.9, 0.999}, ma_plain{0.03, 0.9, 0.999};
  TinyParams no_decay = meta_ref;
  for (int it = 0; it < 3; ++it) {
    std::vector<data::Episode> eps;
    for (int t = 0; t < 2; ++t) eps.push_back(tiny_episode(D, K, 2, 2, rng));
    reference_step(meta_ref, eps, true, true, mw, ma);
    reference_step(no_decay, eps, true, true, mw_plain, ma_plain);
    learner.meta_step(eps);
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 1e-6);
  }
  CHECK(max_diff(learner.meta_model(), no_decay) > 1e-4);  // the test can fail
  meta::MetaConfig bad = fomaml_config(meta::Algorithm::Fomaml);
  bad.meta.optimizer = meta::MetaOptimizer::Sgd;
  bad.meta.w_weight_decay = 0.1f;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("meta.w_weight_decay"));
}
