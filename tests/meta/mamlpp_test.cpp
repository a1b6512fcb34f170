// MAML++ / T-NAS++ options: the multi-step-loss weights against the
// reference formula, LSLR inner updates against a double-precision inner
// loop, the MAML++ meta-gradient (weights, alphas, per-step rates; first and
// second order) against central differences of the exact meta-loss in
// double precision on the tiny model, and per-step batch norm on the MAML++
// 4-conv network (planted per-step parameters, outer-only rows, running
// statistics restored around test tasks).
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/autograd.h"
#include "metanas/meta/evaluator.h"
#include "metanas/meta/fomaml.h"
#include "metanas/meta/mamlpp.h"
#include "metanas/nas/mamlpp_convnet.h"
#include "tests/meta/fixtures.h"
#include "tests/meta/tiny_model.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

constexpr int D = 3, K = 3, N = 3;  // inputs, classes, inner steps

meta::MetaConfig pp_config() {
  meta::MetaConfig cfg = tiny_config(K);
  cfg.algorithm = meta::Algorithm::Fomaml;
  cfg.task.steps = N;
  cfg.task.optimizer = meta::InnerOptimizer::Sgd;
  cfg.task.sgd_w_lr = 0.4f;
  cfg.task.sgd_a_lr = 0.3f;
  cfg.task.t_max = cfg.task.t_min = 1.0;  // T = 1 in every step
  cfg.meta.optimizer = meta::MetaOptimizer::Adam;
  cfg.mamlpp.lslr = true;
  cfg.mamlpp.msl = true;
  cfg.mamlpp.msl_epochs = 4;
  return cfg;
}

// Planted rates: distinct per tensor (fc.w, fc.b, alpha) and step.
std::vector<std::vector<double>> planted_rates() {
  return {{0.5, 0.3, 0.7, 0.2}, {0.25, 0.6, 0.35, 0.1}, {0.4, 0.15, 0.55, 0.3}};
}

void set_rates(meta::InnerLrs& L, const std::vector<std::vector<double>>& r) {
  std::vector<float> v;
  for (const auto& t : r)
    for (double x : t) v.push_back(static_cast<float>(x));
  REQUIRE(static_cast<int64_t>(v.size()) == L.params().numel());
  L.params().values().copy_(Tensor::from_vector(v, Shape{L.params().numel()}));
  L.changed();
}

// The tiny model's inner loop in double: P_{s+1} = P_s - lr[k][s] g_s.
TinyParams ref_adapt(TinyParams p, const TinyBatch& sup, const std::vector<std::vector<double>>& lr, int steps,
                     std::vector<TinyParams>* trace = nullptr) {
  for (int s = 0; s < steps; ++s) {
    const TinyParams g = tiny_grad(p, sup, 1.0, D, K);
    for (size_t i = 0; i < p.W.size(); ++i) p.W[i] -= lr[0][s] * g.W[i];
    for (size_t i = 0; i < p.b.size(); ++i) p.b[i] -= lr[1][s] * g.b[i];
    for (size_t i = 0; i < p.a.size(); ++i) p.a[i] -= lr[2][s] * g.a[i];
    if (trace) trace->push_back(p);
  }
  return p;
}

// The exact MAML++ meta-loss sum_s v_s L_query(P_{s+1}) in double.
double ref_meta_loss(const TinyParams& p0, const TinyBatch& sup, const TinyBatch& qry,
                     const std::vector<std::vector<double>>& lr, const std::vector<double>& v) {
  std::vector<TinyParams> trace;
  ref_adapt(p0, sup, lr, N, &trace);
  double L = 0;
  for (int s = 0; s < N; ++s) L += v[s] * tiny_loss(trace[s], qry, 1.0, D, K);
  return L;
}

}  // namespace

TEST_CASE("MSL importance vector follows the reference formula", "[mamlpp]") {
  // N = 5, msl_epochs = 10: decay 0.02 per epoch, floor 0.006, final cap 0.976.
  auto near = [](const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).margin(1e-12));
  };
  near(meta::msl_importance(5, 10, 0), {0.2, 0.2, 0.2, 0.2, 0.2});
  near(meta::msl_importance(5, 10, 3), {0.14, 0.14, 0.14, 0.14, 0.44});
  near(meta::msl_importance(5, 10, 9), {0.02, 0.02, 0.02, 0.02, 0.92});
  near(meta::msl_importance(5, 10, 10), {0.006, 0.006, 0.006, 0.006, 0.976});
  near(meta::msl_importance(5, 10, 40), {0.006, 0.006, 0.006, 0.006, 0.976});
  meta::MamlppSection p;
  p.msl = true;
  p.msl_epochs = 10;
  near(meta::step_loss_weights(p, 5, 9), {0.02, 0.02, 0.02, 0.02, 0.92});
  near(meta::step_loss_weights(p, 5, 10), {0, 0, 0, 0, 1});  // MSL ends: final step only
  p.msl = false;
  near(meta::step_loss_weights(p, 5, 0), {0, 0, 0, 0, 1});
  p.second_order = true;
  p.first_order_epoch = 2;
  CHECK_FALSE(meta::second_order_at(p, 2));
  CHECK(meta::second_order_at(p, 3));
}

TEST_CASE("LSLR: per-step per-tensor inner updates match a double-precision inner loop", "[mamlpp]") {
  Rng rng(11);
  TinyModel meta_model(D, K, rng);
  const meta::MetaConfig cfg = pp_config();
  meta::TaskLearner task(meta_model, meta::TaskLearnerOptions::for_training(cfg));
  meta::InnerLrs& L = *task.inner_lrs();
  REQUIRE(L.values() == N + 1);
  REQUIRE(L.params().size() == 3);
  CHECK(L.rate(L.of_weight(0), 0) == Approx(0.4));  // initialised to the task rates
  CHECK(L.rate(L.of_alpha(0), 2) == Approx(0.3));
  const auto lr = planted_rates();
  set_rates(L, lr);
  const data::Episode ep = tiny_episode(D, K, 2, 2, rng);
  task.adapt(ep, rng);
  const TinyParams ref = ref_adapt(TinyParams::of(meta_model), tiny_batch(ep.support_x, ep.support_y), lr, N);
  CHECK(max_diff(task.model(), ref) < 2e-5);
  // One shared rate (the plain Sgd inner loop) would not match.
  const std::vector<std::vector<double>> one(3, std::vector<double>(N + 1, 0.4));
  CHECK(max_diff(task.model(), ref_adapt(TinyParams::of(meta_model), tiny_batch(ep.support_x, ep.support_y), one, N)) >
        1e-3);
}

TEST_CASE("MAML++ meta-gradient matches the exact meta-loss's central differences", "[mamlpp]") {
  Rng rng(5);
  TinyModel meta_model(D, K, rng);
  const data::Episode ep = tiny_episode(D, K, 2, 2, rng);
  const TinyBatch sup = tiny_batch(ep.support_x, ep.support_y), qry = tiny_batch(ep.query_x, ep.query_y);
  const auto lr = planted_rates();
  const int64_t epoch = 1;
  const std::vector<double> v = meta::msl_importance(N, 4, epoch);

  // Exact gradient of the meta-loss in double: weights/alphas and rates.
  const TinyParams p0 = TinyParams::of(meta_model);
  const double h = 1e-5;
  TinyParams gp = p0;
  {
    TinyParams q = p0;
    auto qs = q.all();
    auto gs = gp.all();
    for (size_t i = 0; i < qs.size(); ++i) {
      const double x = *qs[i];
      *qs[i] = x + h;
      const double lp = ref_meta_loss(q, sup, qry, lr, v);
      *qs[i] = x - h;
      const double lm = ref_meta_loss(q, sup, qry, lr, v);
      *qs[i] = x;
      *gs[i] = (lp - lm) / (2 * h);
    }
  }
  std::vector<std::vector<double>> glr(3, std::vector<double>(N + 1, 0.0));
  for (int k = 0; k < 3; ++k)
    for (int s = 0; s < N; ++s) {
      auto l2 = lr;
      l2[k][s] = lr[k][s] + h;
      const double lp = ref_meta_loss(p0, sup, qry, l2, v);
      l2[k][s] = lr[k][s] - h;
      const double lm = ref_meta_loss(p0, sup, qry, l2, v);
      glr[k][s] = (lp - lm) / (2 * h);
    }

  auto run = [&](bool second, TinyParams& g, std::vector<float>& rate_g) {
    meta::MetaConfig cfg = pp_config();
    cfg.mamlpp.second_order = second;
    meta::TaskLearner task(meta_model, meta::TaskLearnerOptions::for_training(cfg));
    set_rates(*task.inner_lrs(), lr);
    meta::MamlppGradient mg(cfg, meta_model, task);
    meta_model.weights().zero_grad();
    meta_model.alphas()->zero_grad();
    mg.zero_rate_grads();
    Rng r(1);
    mg.accumulate(ep, r, false, true, epoch, 1.f);
    g = p0;
    auto gw = meta_model.weights().grads().to_vector(), ga = meta_model.alphas()->grads().to_vector();
    std::vector<float> all(gw);
    all.insert(all.end(), ga.begin(), ga.end());
    auto gs = g.all();
    for (size_t i = 0; i < gs.size(); ++i) *gs[i] = all[i];
    rate_g = task.inner_lrs()->params().grads().to_vector();
  };
  auto max_abs = [](const TinyParams& t) {
    TinyParams c = t;
    double m = 0;
    for (double* x : c.all()) m = std::max(m, std::abs(*x));
    return m;
  };
  const double scale = max_abs(gp);
  REQUIRE(scale > 1e-2);

  TinyParams g2;
  std::vector<float> r2;
  run(true, g2, r2);
  CHECK(max_diff(g2, gp) < 2e-3 * scale);
  for (int k = 0; k < 3; ++k) {
    for (int s = 0; s < N; ++s) CHECK(r2[k * (N + 1) + s] == Approx(glr[k][s]).margin(2e-3 * scale));
    CHECK(r2[k * (N + 1) + N] == 0.f);  // the (N+1)-th rate is not used in training
  }

  // First order: visibly different for the weights, exact for the last step's rates.
  TinyParams g1;
  std::vector<float> r1;
  run(false, g1, r1);
  CHECK(max_diff(g1, gp) > 2e-2 * scale);
  for (int k = 0; k < 3; ++k) CHECK(r1[k * (N + 1) + N - 1] == Approx(glr[k][N - 1]).margin(2e-3 * scale));
}

namespace {
nas::ConvNet4ppConfig pp_net_config() {
  nas::ConvNet4ppConfig c;
  c.image_size = 16;
  c.num_classes = 3;
  c.channels = 4;
  c.bn_steps = 3;
  return c;
}

// First-order MAML on the ConvNet4pp above for 3-way tasks: `steps` plain-SGD
// inner steps on the whole support set, no drop-path, warm-up or pruning.
meta::MetaConfig pp_meta_config(int steps) {
  meta::MetaConfig cfg;
  cfg.algorithm = meta::Algorithm::Fomaml;
  cfg.model.kind = meta::ModelKind::ConvNet4pp;
  cfg.model.convnet4pp = pp_net_config();
  cfg.episodes.ways = 3;
  cfg.task.steps = steps;
  cfg.task.batch_size = 0;
  cfg.task.optimizer = meta::InnerOptimizer::Sgd;
  cfg.task.drop_path_prob = 0.f;
  cfg.meta.warmup_iterations = 0;
  cfg.meta.prune_every = 0;
  return cfg;
}
}  // namespace

TEST_CASE("ConvNet4pp: each step uses its own BN row (planted difference)", "[mamlpp]") {
  Rng rng(3);
  nas::ConvNet4pp net(pp_net_config(), rng);
  ParamSet& W = net.weights();
  const int g = W.index_of("block0.bn.weight"), b = W.index_of("block1.bn.bias");
  CHECK(net.outer_only(g));
  CHECK(net.outer_only(b));
  CHECK_FALSE(net.outer_only(W.index_of("block0.conv")));
  CHECK(W.shape(g) == Shape{3, 4});
  // Plant different parameters in row 1.
  std::vector<float> gv = W[g].to_vector(), bv = W[b].to_vector();
  for (int c = 0; c < 4; ++c) gv[4 + c] = 0.5f + 0.4f * c, bv[4 + c] = 0.3f - 0.2f * c;
  W[g].detach().copy_(Tensor::from_vector(gv, Shape{3, 4}));
  W[b].detach().copy_(Tensor::from_vector(bv, Shape{3, 4}));
  const Tensor x = Tensor::rand_uniform(Shape{5, 1, 16, 16}, rng, 0.f, 1.f);
  NoGradGuard ng;
  nas::ForwardContext c0, c1, c2, c9;
  c1.step = 1;
  c2.step = 2;
  c9.step = 9;  // beyond bn_steps: the last row
  const auto y0 = net.forward(x, c0).to_vector(), y1 = net.forward(x, c1).to_vector();
  const auto y2 = net.forward(x, c2).to_vector(), y9 = net.forward(x, c9).to_vector();
  CHECK(y0 == y2);  // rows 0 and 2 are both the initial ones
  CHECK(y9 == y2);
  double d = 0;
  for (size_t i = 0; i < y0.size(); ++i) d = std::max(d, std::abs(double(y0[i]) - y1[i]));
  CHECK(d > 1e-3);
  // Row 1's values moved into row 0 reproduce step 1's output at step 0.
  auto clone = net.clone();
  ParamSet& W2 = clone->weights();
  std::vector<float> g2 = gv, b2 = bv;
  for (int c = 0; c < 4; ++c) g2[c] = gv[4 + c], b2[c] = bv[4 + c];
  W2[g].detach().copy_(Tensor::from_vector(g2, Shape{3, 4}));
  W2[b].detach().copy_(Tensor::from_vector(b2, Shape{3, 4}));
  CHECK(clone->forward(x, c0).to_vector() == y1);
}

TEST_CASE("MAML++ on ConvNet4pp: BN rows are outer-only and get the gradient of the steps that use them",
          "[mamlpp]") {
  meta::MetaConfig cfg = pp_meta_config(3);
  cfg.task.sgd_w_lr = 0.1f;
  cfg.meta.optimizer = meta::MetaOptimizer::Adam;
  cfg.mamlpp.lslr = true;
  Rng rng(8);
  const data::Episode ep = random_episode(rng, {0, 1, 2, 0, 1, 2}, {0, 1, 2, 2}, 16);
  // Row r of block0.bn.weight's meta-gradient, as max |.|.
  auto row_grads = [&](bool msl, bool second) {
    cfg.mamlpp.msl = msl;
    cfg.mamlpp.second_order = second;
    Rng mr(cfg.seed);
    auto meta_model = meta::build_model(cfg.model, mr);
    meta::TaskLearner task(*meta_model, meta::TaskLearnerOptions::for_training(cfg));
    meta::MamlppGradient mg(cfg, *meta_model, task);
    meta_model->weights().zero_grad();
    mg.zero_rate_grads();
    Rng r(2);
    mg.accumulate(ep, r, false, false, 0, 1.f);
    ParamSet& W = meta_model->weights();
    const int gi = W.index_of("block0.bn.weight");
    // The inner loop never moves the BN parameters.
    CHECK(task.model().weights()[gi].to_vector() == W[gi].to_vector());
    const auto gv = W[gi].grad().to_vector();
    std::vector<double> rows(3, 0.0);
    for (int s = 0; s < 3; ++s)
      for (int c = 0; c < 4; ++c) rows[s] = std::max(rows[s], std::abs(double(gv[s * 4 + c])));
    return rows;
  };
  const auto fo = row_grads(false, false);
  CHECK(fo[0] == 0.0);
  CHECK(fo[1] == 0.0);
  CHECK(fo[2] > 1e-6);
  const auto msl = row_grads(true, false);
  CHECK(msl[0] > 1e-6);
  CHECK(msl[1] > 1e-6);
  const auto so = row_grads(false, true);  // second order: through the support steps too
  CHECK(so[0] > 1e-7);
  CHECK(so[1] > 1e-7);
}

TEST_CASE("ConvNet4pp: running statistics are updated in training and restored around test tasks", "[mamlpp]") {
  meta::MetaConfig cfg = pp_meta_config(2);
  cfg.eval.arch_steps = 0;
  cfg.eval.weight_steps = 2;
  cfg.eval.batch_size = 0;
  Rng rng(4);
  auto model = meta::build_model(cfg.model, rng);
  auto& net = dynamic_cast<nas::ConvNet4pp&>(*model);
  const auto before = net.running_mean(0).to_vector();
  const data::Episode ep = random_episode(rng, {0, 1, 2}, {0, 1, 2}, 16);
  meta::Evaluator ev(*model, cfg);
  ev.evaluate_task(ep);
  CHECK(net.running_mean(0).to_vector() == before);  // restored
  meta::TaskLearner task(*model, meta::TaskLearnerOptions::for_training(cfg));
  task.adapt(ep, rng);
  const auto after = net.running_mean(0).to_vector();  // shared with the clone, momentum 0.1
  CHECK(after != before);
  CHECK(std::equal(after.begin() + 8, after.end(), before.begin() + 8));  // row 2 of 3 untouched (2 steps)
}

TEST_CASE("MAML++ learner: rates are learned and survive save/load", "[mamlpp]") {
  Rng rng(21);
  meta::MetaConfig cfg = pp_config();
  cfg.mamlpp.second_order = true;
  cfg.mamlpp.epoch_iterations = 1;
  std::vector<data::Episode> eps = {tiny_episode(D, K, 2, 2, rng), tiny_episode(D, K, 2, 2, rng)};
  auto make = [&]() {
    Rng mr(9);
    return std::make_unique<meta::Fomaml>(cfg, std::make_unique<TinyModel>(D, K, mr));
  };
  auto a = make();
  const auto r0 = a->task_learner().inner_lrs()->params().values().to_vector();
  a->meta_step(eps);
  const auto r1 = a->task_learner().inner_lrs()->params().values().to_vector();
  CHECK(r1 != r0);
  Checkpoint ck;
  a->save_state(ck);
  auto b = make();
  b->load_state(ck);
  CHECK(b->task_learner().inner_lrs()->params().values().to_vector() == r1);
  a->meta_step(eps);
  b->meta_step(eps);
  CHECK(a->meta_model().weights().values().to_vector() == b->meta_model().weights().values().to_vector());
  CHECK(a->task_learner().inner_lrs()->params().values().to_vector() ==
        b->task_learner().inner_lrs()->params().values().to_vector());
}
