// Decode and retrain (eval.mode = retrain, the T-NAS / Auto-MAML evaluation):
// the scored network is the discrete network of the decoded genotype, built
// anew per genotype (cached), meta-trained on the given meta-train tasks, and
// its accuracy is its own (a planted task a frozen one-shot model cannot
// solve is solved by the retrained network); the configuration keys validate.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "metanas/engine/error.h"
#include "metanas/meta/retrain_evaluator.h"
#include "metanas/nas/builtin_genotypes.h"
#include "metanas/nas/search_network.h"
#include "tests/meta/fixtures.h"

using namespace metanas;
using namespace metanas::testing;
using Catch::Matchers::Contains;

namespace {

meta::MetaConfig retrain_config() {
  meta::MetaConfig cfg;
  cfg.model.kind = meta::ModelKind::Search;
  cfg.model.search = tiny_search_config(2, 2);
  cfg.episodes.ways = 3;
  cfg.task.optimizer = meta::InnerOptimizer::Sgd;
  cfg.task.sgd_w_lr = 0.f;  // the one-shot model stays at its meta state
  cfg.task.sgd_a_lr = 0.f;
  cfg.task.drop_path_prob = 0.f;
  cfg.eval.arch_steps = 1;
  cfg.eval.weight_steps = 0;
  cfg.eval.batch_size = 0;
  cfg.eval.restore_task_optimizer = false;
  cfg.eval.mode = meta::EvalMode::Retrain;
  cfg.eval.retrain.steps = 2;
  cfg.eval.retrain.lr = 0.05f;
  return cfg;
}

// Alphas drawn wide so that their arg-max genotype is random.
void plant_alphas(nas::Model& m, Rng& rng) {
  ParamSet& a = *m.alphas();
  a.values().copy_(Tensor::randn(a.values().shape(), rng, 3.f));
}

// Support = query: a network that fits the support set scores 100%.
data::Episode memorize_episode(Rng& rng, int shots) {
  std::vector<int32_t> y;
  for (int c = 0; c < 3; ++c)
    for (int s = 0; s < shots; ++s) y.push_back(c);
  data::Episode ep = random_episode(rng, y, y);
  ep.query_x = ep.support_x;
  ep.query_y = ep.support_y;
  return ep;
}

}  // namespace

TEST_CASE("Retrain: the scored network is the decoded genotype's discrete network, one per genotype",
          "[meta][retrain]") {
  const meta::MetaConfig cfg = retrain_config();
  Rng rng(31);
  nas::SearchNetwork meta_model(cfg.model.search, rng);
  meta::RetrainEvaluator ev(meta_model, cfg, 5);
  CHECK(ev.last_network() == nullptr);

  plant_alphas(meta_model, rng);
  const std::string g1 = meta_model.architecture()->to_text();
  const data::Episode ep = random_episode(rng, {0, 1, 2}, {0, 1, 2, 0, 1, 2});
  const meta::RetrainTaskResult r1 = ev.evaluate_task(ep);
  // Alphas do not move (lr 0), so the decoded genotype is the meta model's.
  CHECK(r1.soft.genotype == g1);
  CHECK(r1.retrained.genotype == g1);
  REQUIRE(ev.last_network() != nullptr);
  CHECK(ev.last_network()->kind() == "discrete");
  CHECK(ev.last_network()->alphas() == nullptr);
  CHECK(ev.last_network()->architecture()->to_text() == g1);
  CHECK(r1.retrained.total == 6);
  CHECK(ev.networks_built() == 1);

  // Another architecture: a second network; the first again: from the cache.
  std::string g2 = g1;
  for (int tries = 0; tries < 10 && g2 == g1; ++tries) {
    plant_alphas(meta_model, rng);
    g2 = meta_model.architecture()->to_text();
  }
  REQUIRE(g2 != g1);
  const meta::RetrainTaskResult r2 = ev.evaluate_task(ep);
  CHECK(r2.retrained.genotype == g2);
  CHECK(ev.last_network()->architecture()->to_text() == g2);
  CHECK(ev.networks_built() == 2);
  const nas::Model* second = ev.last_network();
  meta::RetrainTaskResult r2b = ev.evaluate_task(ep);
  CHECK(ev.networks_built() == 2);
  CHECK(ev.last_network() == second);
  // The same network, fine-tuned from the same state on the same task.
  CHECK(r2b.retrained.accuracy == r2.retrained.accuracy);
  CHECK(r2b.retrained.loss == Approx(r2.retrained.loss).epsilon(1e-6));
}

TEST_CASE("Retrain scores the retrained network, not the one-shot model (planted task)", "[meta][retrain]") {
  meta::MetaConfig cfg = retrain_config();
  cfg.eval.retrain.steps = 60;
  cfg.eval.retrain.lr = 0.1f;
  Rng rng(32);
  nas::SearchNetwork meta_model(cfg.model.search, rng);
  meta::RetrainEvaluator ev(meta_model, cfg, 7);
  const data::Episode ep = memorize_episode(rng, 4);
  const meta::RetrainTaskResult r = ev.evaluate_task(ep);
  // The one-shot model is untrained and frozen; the decoded network trained
  // 60 steps on the support set fits it, and the query set is that set.
  INFO("soft " << r.soft.accuracy << ", retrained " << r.retrained.accuracy);
  CHECK(r.retrained.accuracy == 1.0);
  CHECK(r.soft.accuracy < 0.75);
  CHECK(r.retrained.loss < r.soft.loss);

  // With one tiny step the retrained network has not fitted the task.
  meta::MetaConfig few = cfg;
  few.eval.retrain.steps = 1;
  few.eval.retrain.lr = 1e-4f;
  meta::RetrainEvaluator ev1(meta_model, few, 7);
  CHECK(ev1.evaluate_task(ep).retrained.accuracy < 1.0);

  // The report keeps both scores and the per-task genotypes.
  const meta::RetrainReport rep = ev.evaluate(std::vector<data::Episode>{ep, ep});
  CHECK(rep.retrained.mean_accuracy == 1.0);
  CHECK(rep.soft.mean_accuracy == Approx(r.soft.accuracy));
  const auto j = nlohmann::json::parse(rep.to_json());
  CHECK(j["mode"] == "retrain");
  CHECK(j["retrained"]["per_task"][1]["genotype"] == r.soft.genotype);
  CHECK(j["soft"]["per_task"][0]["accuracy"].get<double>() == Approx(r.soft.accuracy));
  CHECK(j["retrained"].contains("ci95"));
  CHECK(rep.networks == 0);  // cached from the first task
}

TEST_CASE("Retrain meta-trains each decoded network on meta-train tasks first", "[meta][retrain]") {
  meta::MetaConfig cfg = retrain_config();
  cfg.eval.retrain.meta_iterations = 3;
  cfg.eval.retrain.meta_batch_size = 2;
  cfg.eval.retrain.task_steps = 1;
  cfg.eval.retrain.meta_lr = 0.01f;
  Rng rng(33);
  nas::SearchNetwork meta_model(cfg.model.search, rng);
  CHECK_THROWS_WITH(meta::RetrainEvaluator(meta_model, cfg, 1), Contains("meta-train tasks"));
  int drawn = 0;
  Rng task_rng(9);
  meta::RetrainEvaluator ev(meta_model, cfg, 1, [&] {
    ++drawn;
    return random_episode(task_rng, {0, 1, 2}, {0, 1, 2});
  });
  const data::Episode ep = random_episode(rng, {0, 1, 2}, {0, 1, 2});
  const meta::RetrainTaskResult a = ev.evaluate_task(ep);
  CHECK(drawn == 6);  // 3 iterations x 2 tasks
  ev.evaluate_task(ep);
  CHECK(drawn == 6);  // the same genotype: no second meta-training
  // Without meta-training the same network scores differently.
  meta::MetaConfig none = cfg;
  none.eval.retrain.meta_iterations = 0;
  meta::RetrainEvaluator ev0(meta_model, none, 1);
  const meta::RetrainTaskResult b = ev0.evaluate_task(ep);
  CHECK(a.retrained.genotype == b.retrained.genotype);
  CHECK(a.retrained.loss != b.retrained.loss);
  // The retraining configuration: FOMAML on the decoded discrete network.
  const meta::MetaConfig rc = meta::RetrainEvaluator::retrain_config(cfg, *meta_model.architecture());
  CHECK(rc.algorithm == meta::Algorithm::Fomaml);
  CHECK(rc.model.kind == meta::ModelKind::Discrete);
  CHECK(rc.model.discrete.C == cfg.model.search.C);
  CHECK(rc.model.discrete.layers == cfg.model.search.layers);
  CHECK(rc.eval.weight_steps == cfg.eval.retrain.steps);
  CHECK(rc.eval.arch_steps == 0);
  CHECK(rc.meta.meta_batch_size == 2);
}

TEST_CASE("eval.mode, eval.retrain and meta.auto_maml_split validate and round-trip", "[meta][retrain][config]") {
  meta::MetaConfig cfg = retrain_config();
  const meta::MetaConfig back = meta::MetaConfig::from_json(cfg.to_json());
  CHECK(back == cfg);
  CHECK(back.eval.mode == meta::EvalMode::Retrain);
  CHECK_THROWS_WITH(meta::MetaConfig::from_json(R"({"eval": {"mode": "hard"}})"),
                    Contains("eval.mode") && Contains("soft, retrain"));
  CHECK_THROWS_WITH(meta::MetaConfig::from_json(R"({"eval": {"retrain": {"stepz": 3}}})"),
                    Contains("eval.retrain.stepz"));
  meta::MetaConfig bad = cfg;
  bad.eval.retrain.steps = 0;
  CHECK_THROWS_WITH(bad.validate(), Contains("eval.retrain.steps"));
  bad = cfg;
  bad.eval.retrain.lr = 0.f;
  CHECK_THROWS_WITH(bad.validate(), Contains("eval.retrain.lr"));
  bad = cfg;
  bad.model.kind = meta::ModelKind::ConvNet4;
  bad.model.convnet4.num_classes = 3;
  CHECK_THROWS_WITH(bad.validate(), Contains("retrain") && Contains("search"));
  bad.eval.mode = meta::EvalMode::Soft;
  CHECK_NOTHROW(bad.validate());
  bad = cfg;
  bad.meta.auto_maml_split = meta::AutoMamlSplit::Images;
  CHECK_THROWS_WITH(bad.validate(), Contains("auto_maml_split") && Contains("reptile"));
  bad.algorithm = meta::Algorithm::AutoMaml;
  CHECK_NOTHROW(bad.validate());
  bad.meta.auto_maml_train_portion = 1.0;
  CHECK_THROWS_WITH(bad.validate(), Contains("auto_maml_train_portion"));
  CHECK_THROWS_WITH(meta::MetaConfig::from_json(R"({"algorithm": "auto_maml", "meta": {"auto_maml_split": "classes"}})"),
                    Contains("none, images"));
}

TEST_CASE("Retrain: the decoded network mirrors the T-NAS cell options; the retraining's Adam decays the weights",
          "[meta][retrain]") {
  meta::MetaConfig cfg = retrain_config();
  cfg.model.search.node_inputs = "all";
  cfg.model.search.channel_scale = 2;
  cfg.model.search.stem = "pooled";
  cfg.model.search.reduce_pad_odd = true;
  cfg.model.search.reduction_layers = {1};
  cfg.eval.retrain.meta_weight_decay = 3e-4f;
  cfg.eval.retrain.pool_bn = false;
  REQUIRE_NOTHROW(cfg.validate());
  const nas::DiscreteConfig d = meta::RetrainEvaluator::discrete_config(cfg.model.search);
  CHECK(d.channel_scale == 2);
  CHECK(d.stem == "pooled");
  CHECK(d.reduce_pad_odd);
  CHECK(d.resolved_reductions() == std::vector<int>{1});
  const meta::MetaConfig r = meta::RetrainEvaluator::retrain_config(cfg, nas::builtin_genotype("metanas_og_v2"));
  CHECK(r.meta.w_weight_decay == 3e-4f);
  CHECK(r.meta.optimizer == meta::MetaOptimizer::Adam);
  CHECK(!r.model.discrete.pool_bn);
  nas::DiscreteConfig d_bare = d;
  d_bare.pool_bn = false;
  CHECK(r.model.discrete == d_bare);
  meta::MetaConfig bad = cfg;
  bad.eval.retrain.meta_weight_decay = -1.f;
  CHECK_THROWS_WITH(bad.validate(), Contains("eval.retrain.meta_weight_decay"));
}
