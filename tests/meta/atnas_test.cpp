// AT-NAS: configuration, only the sampled path moves in a meta-step, bitwise
// resume with the population, the meta-test search and its report, and a
// planted answer the evolution must find.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "metanas/datasets/synthetic.h"
#include "metanas/engine/error.h"
#include "metanas/meta/atnas.h"
#include "metanas/meta/learner.h"
#include "tests/meta/fixtures.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

meta::MetaConfig atnas_config() {
  meta::MetaConfig c = tiny_atnas_config(5);
  c.task.drop_path_prob = 0.f;
  c.atnas.population = 3;
  c.atnas.crossovers = 1;
  c.atnas.fitness_steps = 2;
  c.eval.batch_size = 0;
  return c;
}

// "cellK.nodeI.inJ.<op>" of a search-network parameter; empty for stem,
// preprocessing and classifier.
std::string edge_op(const std::string& name) {
  const size_t in = name.find(".in");
  if (in == std::string::npos) return "";
  const size_t dot = name.find('.', in + 3);
  const size_t end = name.find('.', dot + 1);
  return name.substr(0, end);
}

}  // namespace

TEST_CASE("atnas config: parses, round-trips and rejects bad settings", "[atnas]") {
  meta::MetaConfig c = atnas_config();
  REQUIRE_NOTHROW(c.validate());
  REQUIRE(meta::MetaConfig::from_json(c.to_json()) == c);
  REQUIRE(meta::parse_algorithm("at-nas") == meta::Algorithm::Atnas);
  auto bad = [&](const char* patch) {
    meta::MetaConfig d = c;
    d.merge_json(patch);
    d.validate();
  };
  REQUIRE_THROWS_WITH(bad(R"({"task": {"optimizer": "adam"}})"), Catch::Contains("task.optimizer 'sgd'"));
  REQUIRE_THROWS_WITH(bad(R"({"atnas": {"meta_update": "maml"}})"), Catch::Contains("atnas.meta_update"));
  REQUIRE_THROWS_WITH(bad(R"({"atnas": {"sampling": "x"}})"), Catch::Contains("atnas.sampling"));
  REQUIRE_THROWS_WITH(bad(R"({"atnas": {"top_k": 0}})"), Catch::Contains("atnas.top_k"));
  REQUIRE_THROWS_WITH(bad(R"({"atnas": {"fitness_stem": "frozen"}})"), Catch::Contains("atnas.fitness_stem"));
  REQUIRE_THROWS_WITH(bad(R"({"atnas": {"mutation_prob": 2}})"), Catch::Contains("atnas.mutation_prob"));
  REQUIRE_THROWS_WITH(bad(R"({"atnas": {"popsize": 3}})"), Catch::Contains("popsize"));
  REQUIRE_THROWS_WITH(bad(R"({"model": {"kind": "convnet4", "convnet4": {"num_classes": 3}}})"), Catch::Contains("model.kind 'search'"));
}

TEST_CASE("atnas meta-step: only the sampled path's weights move", "[atnas]") {
  for (const char* update : {"reptile", "fomaml"}) {
    meta::MetaConfig c = atnas_config();
    c.atnas.meta_update = update;
    c.meta.meta_batch_size = 1;
    if (std::string(update) == "fomaml") c.meta.w_lr = 0.1f;
    auto l = meta::make_meta_learner(c);
    data::EpisodeSampler s(tiny_synthetic(), 3, 2, 2, 4);
    const std::vector<float> before = l->meta_model().weights().values().to_vector();
    meta_train(*l, s, 1);
    const std::vector<float> after = l->meta_model().weights().values().to_vector();
    auto& at = dynamic_cast<meta::Atnas&>(*l);
    REQUIRE(at.last_encodings().size() == 1u);
    const nas::Genotype g = at.space().decode(at.last_encodings()[0]);
    // The chosen (cell, node, input, op) prefixes.
    std::set<std::string> chosen;
    const std::vector<int> reds = c.model.search.resolved_reductions();
    for (int k = 0; k < c.model.search.layers; ++k) {
      const bool red = std::count(reds.begin(), reds.end(), k) > 0;
      const auto& cell = red ? g.reduce : g.normal;
      for (size_t i = 0; i < cell.size(); ++i)
        for (const auto& e : cell[i])
          chosen.insert("cell" + std::to_string(k) + ".node" + std::to_string(i) + ".in" +
                        std::to_string(e.input) + "." + nas::primitive_name(e.op));
    }
    const ParamSet& W = l->meta_model().weights();
    int moved_chosen = 0, chosen_params = 0;
    for (int p = 0; p < W.size(); ++p) {
      const std::string eo = edge_op(W.name(p));
      bool moved = false;
      for (int64_t i = W.offset(p); i < W.offset(p) + W.shape(p).numel(); ++i) moved |= before[i] != after[i];
      if (eo.empty()) continue;
      if (chosen.count(eo)) {
        ++chosen_params;
        moved_chosen += moved;
      } else {
        INFO(update << ": " << W.name(p) << " is not on the sampled path");
        REQUIRE_FALSE(moved);
      }
    }
    REQUIRE(chosen_params > 0);
    REQUIRE(moved_chosen > 0);  // the path itself did train
  }
}

TEST_CASE("atnas resume: 2N iterations equal N + save + load + N with the population", "[atnas][resume]") {
  for (const char* update : {"reptile", "fomaml"}) {
    meta::MetaConfig c = atnas_config();
    c.atnas.meta_update = update;
    const std::string path =
        (std::filesystem::temp_directory_path() / (std::string("atnas_resume_") + update + ".ckpt")).string();
    auto straight = meta::make_meta_learner(c);
    data::EpisodeSampler s1(tiny_synthetic(), 3, 2, 2, 4);
    meta_train(*straight, s1, 6);  // 12 tasks: several generations of 3 candidates

    auto first = meta::make_meta_learner(c);
    data::EpisodeSampler s2(tiny_synthetic(), 3, 2, 2, 4);
    meta_train(*first, s2, 3);
    first->save(path);
    const std::string sampler_state = s2.state();
    auto second = meta::make_meta_learner(c);
    second->load(path);
    data::EpisodeSampler s3(tiny_synthetic(), 3, 2, 2, 4);
    s3.set_state(sampler_state);
    meta_train(*second, s3, 3);
    std::filesystem::remove(path);

    const auto& a = dynamic_cast<meta::Atnas&>(*straight);
    const auto& b = dynamic_cast<meta::Atnas&>(*second);
    REQUIRE(a.evolution().generation_index() >= 2);
    REQUIRE(straight->meta_model().weights().values().to_vector() ==
            second->meta_model().weights().values().to_vector());
    REQUIRE(a.evolution().to_json() == b.evolution().to_json());
    REQUIRE(straight->rng().state() == second->rng().state());
  }
}

TEST_CASE("atnas meta-test: per-task search, report with genotypes, params and times", "[atnas]") {
  meta::MetaConfig c = atnas_config();
  c.episodes.shots = 2;
  auto l = meta::make_meta_learner(c);
  data::EpisodeSampler s(tiny_synthetic(), 3, 2, 2, 4);
  meta_train(*l, s, 2);
  auto& at = dynamic_cast<meta::Atnas&>(*l);
  std::vector<nas::Encoding> seeds;
  for (const auto& e : at.evolution().elite()) seeds.push_back(e.encoding);
  meta::AtnasSearcher searcher(at.supernet(), c, 7, seeds);
  int generations_seen = 0;
  const meta::AtnasReport rep = searcher.evaluate(draw_tasks(s, 2), {},
                                                  [&](int, const nas::Evolution&) { ++generations_seen; });
  REQUIRE(rep.tasks.size() == 2u);
  REQUIRE(generations_seen == 2 * (c.atnas.generations + 1));
  for (const auto& t : rep.tasks) {
    REQUIRE(t.evaluations > 0);
    REQUIRE(t.generations == c.atnas.generations + 1);
    REQUIRE(t.search_seconds > 0.0);
    REQUIRE(t.eval.genotype == at.space().decode(t.best).to_text());
    REQUIRE(t.eval.sparse_params > 0);
    REQUIRE(t.eval.sparse_params < at.supernet().weights().numel());
    REQUIRE(t.eval.total == 6);
  }
  const nlohmann::json j = nlohmann::json::parse(rep.to_json());
  REQUIRE(j.at("atnas").at("tasks").size() == 2u);
  REQUIRE(j.at("atnas").contains("mean_search_seconds"));
  REQUIRE(rep.summary.ci95 >= 0.0);
}

TEST_CASE("atnas holdout split: per class, the last shots score", "[atnas]") {
  Rng rng(1);
  data::Episode ep = random_episode(rng, {0, 0, 0, 1, 1, 1}, {0, 1});
  ep.ways = 2;
  ep.shots = 3;
  ep.queries = 1;
  const data::Episode s = meta::holdout_split(ep, 1);
  REQUIRE(s.support_y.to_int_vector() == std::vector<int32_t>{0, 0, 1, 1});
  REQUIRE(s.query_y.to_int_vector() == std::vector<int32_t>{0, 1});
  const std::vector<float> x = ep.support_x.to_vector(), q = s.query_x.to_vector();
  REQUIRE(std::vector<float>(x.begin() + 2 * 64, x.begin() + 3 * 64) == std::vector<float>(q.begin(), q.begin() + 64));
  const data::Episode one = meta::holdout_split(ep, 3);  // shots <= h: support scores itself
  REQUIRE(one.query_y.to_int_vector() == ep.support_y.to_int_vector());
}
