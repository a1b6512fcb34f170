// The meta-RL pre-optimisation inside meta-training and meta-testing: the
// agent edits each task's alphas before adaptation, its state rides in the
// checkpoint (bit-exact resume), meta-testing runs test episodes without
// updates, and the configuration section is checked.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "metanas/datasets/synthetic.h"
#include "metanas/engine/error.h"
#include "metanas/meta/evaluator.h"
#include "metanas/meta/learner.h"
#include "metanas/meta/rl/meta_rl.h"
#include "metanas/meta/rl/ppo_agent.h"
#include "tests/meta/fixtures.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

meta::MetaConfig rl_config(meta::rl::AgentKind kind) {
  meta::MetaConfig c = tiny_meta_config(5);
  c.eval.arch_steps = 1;
  c.eval.weight_steps = 1;
  c.meta_rl.agent = kind;
  c.meta_rl.agent_opt.hidden = 8;
  c.meta_rl.agent_opt.epochs = 2;
  c.meta_rl.agent_opt.episodes = 2;
  c.meta_rl.agent_opt.steps_per_epoch = 16;
  c.meta_rl.agent_opt.test_episodes = 2;
  c.meta_rl.agent_opt.seq_len = 4;
  c.meta_rl.env.max_steps = 8;
  c.meta_rl.env.estimations = 2;
  c.meta_rl.env.alpha_step = 0.3f;
  return c;
}

meta::rl::MetaRlPreOptimizer& hook(meta::TaskLearner& t) {
  return dynamic_cast<meta::rl::MetaRlPreOptimizer&>(*t.pre_optimizer());
}

std::vector<float> agent_params(meta::TaskLearner& t) {
  return dynamic_cast<meta::rl::PpoAgent&>(hook(t).agent()).model().params().values().to_vector();
}

}  // namespace

TEST_CASE("meta-RL: the agent trains across tasks and its state resumes bit for bit", "[rl][meta]") {
  const data::Dataset ds = tiny_synthetic();
  const meta::MetaConfig cfg = rl_config(meta::rl::AgentKind::Ppo);
  auto sampler = [&](uint64_t seed) {
    return data::EpisodeSampler(ds, cfg.episodes.ways, cfg.episodes.train_shots, cfg.episodes.queries, seed);
  };
  auto a = meta::make_meta_learner(cfg, Device::CPU);
  REQUIRE(a->task_learner().pre_optimizer() != nullptr);
  const std::vector<float> agent0 = agent_params(a->task_learner());
  auto sa = sampler(9);
  a->meta_step(draw_tasks(sa, 2));
  // The agent learned (PPO updates) and logged both tasks.
  CHECK(agent_params(a->task_learner()) != agent0);
  const auto& logs = hook(a->task_learner()).logs();
  REQUIRE(logs.size() == 2);
  CHECK(logs[0].episodes == 2 * 2 * 2);  // two cells x epochs x episodes
  CHECK(logs[0].updates > 0);
  CHECK(logs[0].sparse_before > 0);
  // Resume: 1 + save + load + 1 == 2 straight.
  Checkpoint ck;
  a->save_state(ck);
  CHECK(ck.has("meta_rl.agent.rng"));
  auto b = meta::make_meta_learner(cfg, Device::CPU);
  b->load_state(ck);
  auto sb = sampler(9);
  draw_tasks(sb, 2);  // the same next tasks
  a->meta_step(draw_tasks(sa, 2));
  b->meta_step(draw_tasks(sb, 2));
  CHECK(agent_params(b->task_learner()) == agent_params(a->task_learner()));
  CHECK(b->meta_model().alphas()->values().to_vector() == a->meta_model().alphas()->values().to_vector());
  CHECK(b->meta_model().weights().values().to_vector() == a->meta_model().weights().values().to_vector());
  // A checkpoint without agent state is refused by a learner with an agent.
  auto plain = meta::make_meta_learner(rl_config(meta::rl::AgentKind::None), Device::CPU);
  Checkpoint none;
  plain->save_state(none);
  CHECK_THROWS_WITH(b->load_state(none), Catch::Contains("no meta-RL agent state"));
}

TEST_CASE("meta-RL: the pre-optimised task model starts adaptation from the agent's best state", "[rl][meta]") {
  const data::Dataset ds = tiny_synthetic();
  meta::MetaConfig cfg = rl_config(meta::rl::AgentKind::Random);
  auto l = meta::make_meta_learner(cfg, Device::CPU);
  auto s = data::EpisodeSampler(ds, cfg.episodes.ways, cfg.episodes.train_shots, cfg.episodes.queries, 4);
  const data::Episode ep = draw_tasks(s, 1)[0];
  meta::TaskLearner& t = l->task_learner();
  t.reset_to_meta();
  t.pre_optimizer()->before_adapt(ep, false);
  const auto& log = hook(t).logs().back();
  // Estimations ran (one DARTS step each) and the loaded state is not the meta state.
  CHECK(log.estimations > 0);
  CHECK(t.model().alphas()->values().to_vector() != l->meta_model().alphas()->values().to_vector());
  CHECK(log.final_acc >= 0.f);
  CHECK(log.final_acc <= 1.f);
}

TEST_CASE("meta-RL: meta-testing runs the agent's test episodes without updating it", "[rl][meta]") {
  const data::Dataset ds = tiny_synthetic();
  meta::MetaConfig cfg = rl_config(meta::rl::AgentKind::Ppo);
  auto l = meta::make_meta_learner(cfg, Device::CPU);
  Checkpoint ck;
  l->save_state(ck);
  meta::Evaluator ev(l->meta_model(), cfg, 3);
  REQUIRE(ev.task_learner().pre_optimizer() != nullptr);
  CHECK_FALSE(hook(ev.task_learner()).training());
  ev.set_pre_optimizer_state(ck);
  const std::vector<float> before = agent_params(ev.task_learner());
  data::EpisodeSampler s(ds, cfg.episodes.ways, cfg.episodes.shots, cfg.episodes.queries, 8);
  const meta::EvalReport r = ev.evaluate(s, 2);
  CHECK(r.tasks.size() == 2);
  CHECK(agent_params(ev.task_learner()) == before);
  const auto& logs = hook(ev.task_learner()).logs();
  REQUIRE(logs.size() == 2);
  CHECK(logs[0].episodes == 2 * cfg.meta_rl.agent_opt.test_episodes);
  CHECK(logs[0].updates == 0);
  const nlohmann::json sum = nlohmann::json::parse(meta::rl::summarize_logs(logs));
  CHECK(sum.at("tasks") == 2);
  CHECK(sum.contains("mean_estimate_gain"));
}

TEST_CASE("meta-RL: the configuration section round-trips and bad values are named", "[rl][meta]") {
  meta::MetaConfig c = rl_config(meta::rl::AgentKind::Ppo);
  c.meta_rl.env.disable_pairwise_alphas = true;
  CHECK(meta::MetaConfig::from_json(c.to_json()) == c);
  CHECK(nlohmann::json::parse(c.to_json()).at("meta_rl").at("disable_pairwise_alphas") == true);
  CHECK_THROWS_WITH(meta::MetaConfig::from_json(R"({"meta_rl": {"agentt": "ppo"}})"),
                    Catch::Contains("meta_rl.agentt"));
  CHECK_THROWS_WITH(meta::MetaConfig::from_json(R"({"meta_rl": {"agent": "sac"}})"),
                    Catch::Contains("unknown meta-RL agent"));
  CHECK_THROWS_WITH(meta::MetaConfig::from_json(R"({"meta_rl": {"clip": 2.0}})"), Catch::Contains("meta_rl.clip"));
  meta::MetaConfig conv = c;
  conv.model.kind = meta::ModelKind::ConvNet4;
  conv.model.convnet4.num_classes = 3;
  CHECK_THROWS_WITH(conv.validate(), Catch::Contains("needs model.kind 'search'"));
  meta::MetaConfig par = c;
  par.meta.task_parallel = true;
  CHECK_THROWS_WITH(par.validate(), Catch::Contains("task_parallel"));
}

TEST_CASE("meta-RL: disable_pairwise_alphas keeps planted pair weights through the estimations", "[rl][meta]") {
  const data::Dataset ds = tiny_synthetic();
  // Planted architecture: op alphas 0 (uniform), pair weights 0.3 (k + 1) / (node + 1) - 0.5.
  auto plant = [](nas::SearchNetwork& net) {
    net.alphas()->values().zero_();
    for (nas::CellType type : {nas::CellType::Normal, nas::CellType::Reduce})
      for (int i = 0; i < net.config().nodes; ++i) {
        Tensor& p = (*net.alphas())[net.pair_index(type, i)];
        std::vector<float> v(static_cast<size_t>(p.numel()));
        for (size_t k = 0; k < v.size(); ++k) v[k] = 0.3f * static_cast<float>(k + 1) / static_cast<float>(i + 1) - 0.5f;
        p.copy_(Tensor::from_vector(v, p.shape()));
      }
  };
  auto pairs_of = [](nas::SearchNetwork& net) {
    std::vector<std::vector<float>> out;
    for (nas::CellType type : {nas::CellType::Normal, nas::CellType::Reduce})
      for (int i = 0; i < net.config().nodes; ++i) out.push_back((*net.alphas())[net.pair_index(type, i)].to_vector());
    return out;
  };
  auto ops_of = [](nas::SearchNetwork& net) {
    std::vector<std::vector<float>> out;
    for (nas::CellType type : {nas::CellType::Normal, nas::CellType::Reduce})
      for (int i = 0; i < net.config().nodes; ++i) out.push_back((*net.alphas())[net.alpha_index(type, i)].to_vector());
    return out;
  };
  for (const bool disable : {false, true}) {
    INFO("disable_pairwise_alphas " << disable);
    meta::MetaConfig cfg = rl_config(meta::rl::AgentKind::Random);
    cfg.meta_rl.env.disable_pairwise_alphas = disable;
    auto l = meta::make_meta_learner(cfg, Device::CPU);
    auto s = data::EpisodeSampler(ds, cfg.episodes.ways, cfg.episodes.train_shots, cfg.episodes.queries, 4);
    const data::Episode ep = draw_tasks(s, 1)[0];
    meta::TaskLearner& t = l->task_learner();
    t.reset_to_meta();
    auto& net = dynamic_cast<nas::SearchNetwork&>(t.model());
    plant(net);
    const auto pairs0 = pairs_of(net);
    const auto ops0 = ops_of(net);
    t.pre_optimizer()->before_adapt(ep, false);
    REQUIRE(hook(t).logs().back().estimations > 0);
    // The op alphas moved (the agent's edits and the DARTS steps) either way ...
    CHECK(ops_of(net) != ops0);
    // ... the pair weights only without the switch.
    if (disable)
      CHECK(pairs_of(net) == pairs0);
    else
      CHECK(pairs_of(net) != pairs0);
  }
  // The switch leaves the action space and masks alone (the reference's
  // environment has no pair-weight actions).
  Rng rng(3);
  nas::SearchNetwork net(tiny_search_config(2, 3), rng);
  plant(net);
  meta::rl::AlphaEnvOptions on, off;
  on.disable_pairwise_alphas = true;
  on.random_start = off.random_start = false;
  meta::rl::AlphaEnv a(net, nas::CellType::Normal, on, [] { return 0.5f; }, rng);
  meta::rl::AlphaEnv b(net, nas::CellType::Normal, off, [] { return 0.5f; }, rng);
  CHECK(a.action_count() == b.action_count());
  const meta::rl::Observation oa = a.reset(), ob = b.reset();
  CHECK(oa.obs == ob.obs);
  CHECK(oa.mask == ob.mask);
}
