// Meta-testing: report statistics (mean, 95% CI, sparse-parameter histogram,
// genotype counts), A + B adaptation steps, each task starting from the same
// meta and task-optimizer state, non-transductive batch norm, one-shot runs.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/meta/evaluator.h"
#include "metanas/meta/reptile.h"
#include "metanas/nas/search_network.h"
#include "tests/meta/fixtures.h"
#include "tests/meta/tiny_model.h"

using namespace metanas;
using namespace metanas::testing;

TEST_CASE("summarize computes mean, 95% CI, sparse counts and genotype counts", "[meta][eval]") {
  std::vector<meta::TaskEvaluation> t(4);
  const double acc[4] = {0.5, 1.0, 0.75, 0.25};
  const int64_t sp[4] = {100, 300, 200, 300};
  const char* g[4] = {"g1", "g2", "g1", "g3"};
  for (int i = 0; i < 4; ++i) {
    t[i].accuracy = acc[i];
    t[i].loss = i;
    t[i].sparse_params = sp[i];
    t[i].genotype = g[i];
  }
  meta::EvalReport r = meta::summarize(t, 2);
  CHECK(r.mean_accuracy == Approx(0.625));
  // Population std: sqrt(mean of squared deviations).
  const double sd = std::sqrt((0.125 * 0.125 * 2 + 0.375 * 0.375 * 2) / 4);
  CHECK(r.std_accuracy == Approx(sd));
  CHECK(r.ci95 == Approx(1.96 * sd / 2.0));
  CHECK(r.mean_loss == Approx(1.5));
  CHECK(r.sparse_min == 100);
  CHECK(r.sparse_max == 300);
  CHECK(r.sparse_mean == Approx(225.0));
  REQUIRE(r.genotype_counts.size() == 2);
  CHECK(r.genotype_counts[0] == std::make_pair(std::string("g1"), 2));
  CHECK(r.genotype_counts[1] == std::make_pair(std::string("g2"), 1));  // tie with g3: first seen first
  CHECK(r.distinct_genotypes == 3);
  auto h = r.sparse_histogram(2);
  REQUIRE(h.size() == 2);
  CHECK(h[0].first == 100);
  CHECK(h[0].second == 1);  // 100
  CHECK(h[1].second == 3);  // 200, 300, 300
  CHECK(r.to_json().find("\"ci95\"") != std::string::npos);
  CHECK(r.summary().find("62.50%") != std::string::npos);
  CHECK(meta::summarize({}).tasks.empty());
}

namespace {
constexpr int D = 3, K = 3;

meta::MetaConfig eval_config() {
  meta::MetaConfig c = tiny_config(K);
  c.task.t_max = 1.0;
  c.task.t_min = 0.5;
  c.task.darts.w_lr = 0.05f;
  c.task.darts.a_lr = 0.05f;
  c.eval.arch_steps = 2;
  c.eval.weight_steps = 3;
  c.eval.batch_size = 0;
  c.eval.prune_threshold = -1.f;
  return c;
}
}  // namespace

TEST_CASE("Evaluator adapts A + B steps from the meta state and scores the query set", "[meta][eval]") {
  Rng rng(31);
  TinyModel meta_model(D, K, rng);
  const std::vector<float> w0 = meta_model.weights().values().to_vector();
  const std::vector<float> a0 = meta_model.alphas()->values().to_vector();
  meta::Evaluator ev(meta_model, eval_config());
  data::Episode ep = tiny_episode(D, K, 2, 4, rng);

  meta_model.temperature_log().clear();
  meta::TaskEvaluation te = ev.evaluate_task(ep);
  // A = 2 steps with an architecture forward and a weight forward, annealing
  // 1 -> 0.5; B = 3 weight-only steps at 0.5; the query forward at 0.5.
  const std::vector<float> expect = {1.f, 1.f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  CHECK(meta_model.temperature_log() == expect);
  auto* darts = ev.task_learner().darts();
  REQUIRE(darts);
  CHECK(darts->a_optimizer()->steps() == 2);
  CHECK(darts->w_optimizer().steps() == 5);
  // The meta model is untouched.
  CHECK(meta_model.weights().values().to_vector() == w0);
  CHECK(meta_model.alphas()->values().to_vector() == a0);

  // Accuracy and loss agree with the adapted task model, computed by hand.
  TinyParams p = TinyParams::of(ev.task_learner().model());
  TinyBatch q = tiny_batch(ep.query_x, ep.query_y);
  CHECK(te.loss == Approx(tiny_loss(p, q, 0.5, D, K)).epsilon(1e-5));
  {
    NoGradGuard ng;
    nas::ForwardContext ctx = ev.task_learner().final_context();
    std::vector<float> logits = ev.task_learner().model().forward(ep.query_x, ctx).to_vector();
    int correct = 0;
    for (int n = 0; n < 12; ++n) {
      int best = 0;
      for (int k = 1; k < K; ++k)
        if (logits[n * K + k] > logits[n * K + best]) best = k;
      correct += best == q.y[n];
    }
    CHECK(te.correct == correct);
    CHECK(te.total == 12);
    CHECK(te.accuracy == Approx(correct / 12.0));
  }
  CHECK(te.sparse_params == meta_model.weights().numel());
  CHECK(te.genotype.empty());  // not a search network

  // Every task starts from the same state: evaluating again repeats exactly.
  meta::TaskEvaluation again = ev.evaluate_task(ep);
  CHECK(again.loss == te.loss);
  CHECK(again.accuracy == te.accuracy);

  // Warm-up evaluation: weights only, T = t_max throughout.
  ev.set_warmup(true);
  meta_model.temperature_log().clear();
  ev.evaluate_task(ep);
  CHECK(ev.task_learner().model().alphas()->values().to_vector() == a0);
  CHECK(meta_model.temperature_log() == std::vector<float>(6, 1.f));  // 5 weight steps + query
}

TEST_CASE("Evaluator restores the meta-training task-optimizer state before each task", "[meta][eval]") {
  Rng rng(32);
  meta::MetaConfig cfg = eval_config();
  meta::Reptile learner(cfg, std::make_unique<TinyModel>(D, K, rng));
  learner.meta_step({tiny_episode(D, K, 2, 1, rng), tiny_episode(D, K, 2, 1, rng)});
  Checkpoint ck;
  learner.save_state(ck);
  REQUIRE(learner.task_learner().darts()->w_optimizer().steps() == 10);

  data::Episode e1 = tiny_episode(D, K, 2, 3, rng), e2 = tiny_episode(D, K, 2, 3, rng);
  meta::Evaluator ev(learner.meta_model(), cfg);
  ev.set_task_optimizer_state(ck);
  const double l1 = ev.evaluate_task(e1).loss;
  // Adam's step count continues from the training state (10 + 5 steps).
  CHECK(ev.task_learner().darts()->w_optimizer().steps() == 15);
  const double l2 = ev.evaluate_task(e2).loss;
  // Order does not matter: each task starts from the restored state.
  meta::Evaluator ev2(learner.meta_model(), cfg);
  ev2.set_task_optimizer_state(ck);
  CHECK(ev2.evaluate_task(e2).loss == l2);
  CHECK(ev2.evaluate_task(e1).loss == l1);
  // Without the state each task starts fresh, which adapts differently.
  meta::Evaluator fresh(learner.meta_model(), cfg);
  CHECK(fresh.evaluate_task(e1).loss != l1);
  CHECK(fresh.task_learner().darts()->w_optimizer().steps() == 5);
}

TEST_CASE("Non-transductive batch norm evaluates each query image with the support set", "[meta][eval]") {
  nas::SearchConfig sc = tiny_search_config(1, 1);
  sc.reduction_layers = {0};
  Rng rng(41);
  nas::SearchNetwork net(sc, rng);
  meta::MetaConfig cfg;
  cfg.model.search = sc;
  cfg.episodes.ways = 3;
  cfg.task.drop_path_prob = 0.f;
  cfg.eval.arch_steps = 1;
  cfg.eval.weight_steps = 1;
  cfg.eval.batch_size = 0;
  meta::TaskLearner tl(net, meta::TaskLearnerOptions::for_evaluation(cfg));
  // Support 3 x 2 images, 4 queries.
  data::Episode ep = random_episode(rng, {0, 0, 1, 1, 2, 2}, {0, 1, 2, 1});
  tl.adapt(ep, rng);
  NoGradGuard ng;
  meta::QueryResult nt = tl.evaluate_query(ep, true);
  meta::QueryResult tr = tl.evaluate_query(ep, false);

  // Reference: one forward per query over [support; query_i], its last row.
  const nas::ForwardContext ctx = tl.final_context();
  const std::vector<float> sx = ep.support_x.to_vector(), qx = ep.query_x.to_vector();
  const std::vector<int32_t> qy = ep.query_y.to_int_vector();
  double loss = 0;
  int correct = 0;
  for (int i = 0; i < 4; ++i) {
    std::vector<float> in = sx;
    in.insert(in.end(), qx.begin() + i * 64, qx.begin() + (i + 1) * 64);
    std::vector<float> z = tl.model().forward(Tensor::from_vector(in, Shape{7, 1, 8, 8}), ctx).to_vector();
    const float* row = z.data() + 6 * 3;
    double m = std::max({row[0], row[1], row[2]}), se = 0;
    for (int k = 0; k < 3; ++k) se += std::exp(row[k] - m);
    loss += -(row[qy[i]] - m - std::log(se));
    const int best = int(std::max_element(row, row + 3) - row);
    correct += best == qy[i];
  }
  CHECK(nt.loss.item() == Approx(loss / 4).epsilon(1e-5));
  CHECK(nt.acc.item() == Approx(correct / 4.0));
  // Batch statistics differ between the two modes.
  CHECK(std::abs(nt.loss.item() - tr.loss.item()) > 1e-4);
}

TEST_CASE("One-shot runs report per-run and overall error; search networks report genotypes", "[meta][eval]") {
  nas::SearchConfig sc = tiny_search_config(2, 2);
  Rng rng(51);
  nas::SearchNetwork net(sc, rng);
  meta::MetaConfig cfg;
  cfg.model.search = sc;
  cfg.episodes.ways = 3;
  cfg.eval.arch_steps = 2;
  cfg.eval.weight_steps = 1;
  cfg.eval.batch_size = 0;
  meta::Evaluator ev(net, cfg);
  std::vector<data::Episode> runs;
  for (int r = 0; r < 3; ++r) runs.push_back(random_episode(rng, {0, 1, 2}, {0, 1, 2}));
  meta::RunsReport rep = ev.evaluate_runs(runs, {"a", "b", "c"});
  REQUIRE(rep.runs.size() == 3);
  CHECK(rep.runs[1].name == "b");
  int wrong = 0;
  double mean = 0;
  for (const auto& r : rep.runs) {
    CHECK(r.total == 3);
    CHECK(r.error == Approx(1.0 - r.correct / 3.0));
    wrong += r.total - r.correct;
    mean += r.error / 3;
  }
  CHECK(rep.overall_error == Approx(wrong / 9.0));
  CHECK(rep.mean_error == Approx(mean));
  CHECK(rep.detail.tasks.size() == 3);
  for (const auto& t : rep.detail.tasks) {
    CHECK_FALSE(t.genotype.empty());
    CHECK_NOTHROW(nas::Genotype::from_text(t.genotype));
    CHECK(t.sparse_params > 0);
    CHECK(t.sparse_params <= net.weights().numel());
  }
  CHECK(rep.detail.distinct_genotypes >= 1);
  CHECK(rep.summary().find("b: error") != std::string::npos);
  CHECK_THROWS_AS(ev.evaluate_runs(runs, {"only one"}), Error);
}
