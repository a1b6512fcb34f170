// Ensemble meta-testing: the averaged prediction against hand-computed
// values, and EnsembleEvaluator against its members' own probabilities.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/ops.h"
#include "metanas/meta/ensemble.h"
#include "tests/meta/tiny_model.h"

using namespace metanas;
using namespace metanas::testing;

TEST_CASE("average_predictions: mean probabilities, arg-max, loss", "[ensemble]") {
  // 2 queries, 3 classes, 2 members. Member A says (0.6, 0.3, 0.1) / (0.2, 0.5, 0.3),
  // member B (0.1, 0.8, 0.1) / (0.1, 0.2, 0.7): averaged (0.35, 0.55, 0.1) / (0.15, 0.35, 0.5).
  const std::vector<std::vector<float>> m = {{0.6f, 0.3f, 0.1f, 0.2f, 0.5f, 0.3f}, {0.1f, 0.8f, 0.1f, 0.1f, 0.2f, 0.7f}};
  const auto e = meta::average_predictions(m, 2, 3, {0, 2});
  const std::vector<float> want = {0.35f, 0.55f, 0.1f, 0.15f, 0.35f, 0.5f};
  for (size_t i = 0; i < want.size(); ++i) CHECK(e.probs[i] == Approx(want[i]).margin(1e-6));
  CHECK(e.predicted == std::vector<int>{1, 2});
  CHECK(e.correct == 1);  // member A alone would get query 0 right and query 1 wrong
  CHECK(e.loss == Approx(-(std::log(0.35) + std::log(0.5)) / 2).epsilon(1e-6));
  CHECK(meta::average_predictions({m[0]}, 2, 3, {0, 2}).predicted == std::vector<int>{0, 1});
  CHECK_THROWS_WITH(meta::average_predictions({m[0], {0.5f}}, 2, 3, {0, 2}),
                    Catch::Contains("a member gave 1 probabilities, expected 6"));
}

TEST_CASE("EnsembleEvaluator averages its members' adapted predictions", "[ensemble]") {
  constexpr int D = 3, K = 3;
  meta::MetaConfig cfg = tiny_config(K);
  cfg.algorithm = meta::Algorithm::Fomaml;
  cfg.task.optimizer = meta::InnerOptimizer::Sgd;
  cfg.task.sgd_w_lr = 0.3f;
  cfg.eval.arch_steps = 1;
  cfg.eval.weight_steps = 1;
  cfg.eval.batch_size = 0;
  cfg.eval.restore_task_optimizer = false;
  Rng r1(1), r2(2), r3(3);
  TinyModel a(D, K, r1), b(D, K, r2);
  meta::Evaluator ea(a, cfg, 4), eb(b, cfg, 4), ea2(a, cfg, 4), eb2(b, cfg, 4);
  const data::Episode ep = tiny_episode(D, K, 2, 4, r3);
  const auto pa = ea2.query_probabilities(ep).to_vector(), pb = eb2.query_probabilities(ep).to_vector();
  meta::EnsembleEvaluator ens({&ea, &eb});
  const meta::TaskEvaluation te = ens.evaluate_task(ep);
  const auto want = meta::average_predictions({pa, pb}, 12, K, ep.query_y.to_int_vector());
  CHECK(te.correct == want.correct);
  CHECK(te.total == 12);
  CHECK(te.loss == Approx(want.loss));
  // The members' own accuracies are those of their probabilities alone.
  CHECK(ens.member_accuracies()[0][0] == Approx(meta::average_predictions({pa}, 12, K, ep.query_y.to_int_vector()).correct / 12.0));
  // A single-member ensemble is that member's evaluation.
  meta::Evaluator ec(a, cfg, 4);
  meta::EnsembleEvaluator one({&ec});
  meta::Evaluator ed(a, cfg, 4);
  CHECK(one.evaluate_task(ep).accuracy == Approx(ed.evaluate_task(ep).accuracy));
}
