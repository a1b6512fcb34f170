// MetaConfig: MetaNAS defaults, JSON round trip, partial merges, and clear
// errors for unknown keys, wrong types and invalid values.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "metanas/engine/error.h"
#include "metanas/meta/config.h"

using namespace metanas;
using meta::MetaConfig;

namespace {
std::string error_of(const std::string& json_text) {
  try {
    MetaConfig::from_json(json_text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("MetaConfig defaults are MetaNAS's Omniglot 20-way 1-shot setting", "[meta][config]") {
  MetaConfig c;
  REQUIRE_NOTHROW(c.validate());
  CHECK(c.algorithm == meta::Algorithm::Reptile);
  CHECK(c.model.kind == meta::ModelKind::Search);
  CHECK(c.model.search.C == 28);
  CHECK(c.model.search.layers == 4);
  CHECK(c.model.search.nodes == 3);
  CHECK(c.episodes.ways == 20);
  CHECK(c.episodes.shots == 1);
  CHECK(c.meta.meta_batch_size == 10);
  CHECK(c.task.steps == 5);
  CHECK(c.task.darts.w_lr == 0.005f);
  CHECK(c.task.darts.a_lr == 0.005f);
  CHECK(c.meta.w_lr == 1.0f);
  CHECK(c.meta.a_lr == 0.6f);
  CHECK(c.task.t_max == 1.0);
  CHECK(c.task.t_min == 0.05);
  CHECK(c.meta.iterations == 30000);
  CHECK(c.meta.warmup_iterations == 15000);
  CHECK(c.eval.arch_steps == 50);
  CHECK(c.eval.weight_steps == 50);
  CHECK(c.eval.tasks == 600);
}

TEST_CASE("MetaConfig JSON round trip preserves every field", "[meta][config]") {
  MetaConfig c;
  c.algorithm = meta::Algorithm::AutoMaml;
  c.seed = 12345678901ull;
  c.model.search.C = 16;
  c.model.convnet4.channels = 32;
  c.model.genotype = nas::Genotype::from_text(
      "Genotype(normal=[[('conv_3x3', 0), ('skip_connect', 1)]], normal_concat=range(2, 3), "
      "reduce=[[('max_pool_3x3', 0), ('sep_conv_3x3', 1)]], reduce_concat=range(2, 3))");
  c.task.batch_size = 0;
  c.task.optimizer = meta::InnerOptimizer::Sgd;
  c.task.darts.w_lr = 0.0123f;
  c.task.darts.second_order = true;
  c.task.sgd_a_lr = 0.07f;
  c.task.t_min = 0.1;
  c.task.normalizer = nas::Normalizer::ReluSoftmax;
  c.meta.optimizer = meta::MetaOptimizer::Adam;
  c.meta.w_anneal = true;
  c.meta.a_lr = 0.3f;
  c.meta.prune_every = 0;
  c.eval.non_transductive_bn = true;
  c.eval.arch_steps = 0;
  REQUIRE_NOTHROW(c.validate());
  const std::string text = c.to_json();
  MetaConfig back = MetaConfig::from_json(text);
  CHECK(back == c);
  CHECK(back.to_json() == text);
  CHECK(back.task.darts.w_lr == 0.0123f);
  CHECK(back.model.genotype == c.model.genotype);
  // Floats are written in their short form.
  CHECK(text.find("0.0123") != std::string::npos);
  CHECK(text.find("0.004999") == std::string::npos);
  // A change is visible to ==.
  back.eval.tasks = 601;
  CHECK(back != c);
}

TEST_CASE("MetaConfig merges partial JSON over the defaults", "[meta][config]") {
  MetaConfig c = MetaConfig::from_json(R"({"task": {"steps": 7, "darts": {"a_lr": 0.001}},
                                            "model": {"search": {"C": 12}}, "algorithm": "tnas"})");
  CHECK(c.task.steps == 7);
  CHECK(c.task.darts.a_lr == 0.001f);
  CHECK(c.task.darts.w_lr == 0.005f);  // untouched nested default
  CHECK(c.model.search.C == 12);
  CHECK(c.model.search.layers == 4);
  CHECK(c.algorithm == meta::Algorithm::Fomaml);
  c.merge_json(R"({"meta": {"w_lr": 0.5}})");
  CHECK(c.meta.w_lr == 0.5f);
  CHECK(c.task.steps == 7);
}

TEST_CASE("MetaConfig rejects unknown keys, bad types and invalid values clearly", "[meta][config]") {
  std::string e = error_of(R"({"task": {"stpes": 5}})");
  CHECK(e.find("unknown key 'task.stpes'") != std::string::npos);
  CHECK(e.find("steps") != std::string::npos);  // lists the valid keys
  e = error_of(R"({"colour": 1})");
  CHECK(e.find("unknown key 'colour'") != std::string::npos);
  e = error_of(R"({"task": {"darts": {"w_lrr": 0.1}}})");
  CHECK(e.find("task.darts") != std::string::npos);
  CHECK(e.find("w_lrr") != std::string::npos);
  e = error_of(R"({"model": {"search": {"chanels": 3}}})");
  CHECK(e.find("model.search") != std::string::npos);
  CHECK(e.find("chanels") != std::string::npos);
  e = error_of(R"({"meta": {"iterations": "many"}})");
  CHECK(e.find("meta.iterations") != std::string::npos);
  e = error_of(R"({"meta": {"iterations": 2.5}})");
  CHECK(e.find("meta.iterations") != std::string::npos);
  e = error_of(R"({"task": {"steps": 99999999999}})");
  CHECK(e.find("task.steps") != std::string::npos);
  CHECK(e.find("out of range") != std::string::npos);
  e = error_of(R"({"seed": -1})");
  CHECK(e.find("seed") != std::string::npos);
  e = error_of(R"({"algorithm": "maml2"})");
  CHECK(e.find("algorithm") != std::string::npos);
  CHECK(e.find("maml2") != std::string::npos);
  e = error_of(R"({"task": {"t_min": 2.0}})");
  CHECK(e.find("t_min") != std::string::npos);
  e = error_of(R"({"episodes": {"ways": 5}})");  // model still has 20 classes
  CHECK(e.find("ways") != std::string::npos);
  e = error_of("{not json");
  CHECK(e.find("invalid JSON") != std::string::npos);
  e = error_of(R"({"task": 3})");
  CHECK(e.find("'task' must be a JSON object") != std::string::npos);
  // merge_json leaves the configuration untouched when it throws.
  MetaConfig c;
  CHECK_THROWS_AS(c.merge_json(R"({"task": {"steps": 9, "bogus": 1}})"), Error);
  CHECK(c.task.steps == 5);
}

TEST_CASE("MetaConfig save/load round trip and build_model", "[meta][config]") {
  MetaConfig c;
  c.model.kind = meta::ModelKind::ConvNet4;
  c.model.convnet4.num_classes = 5;
  c.model.convnet4.channels = 8;
  c.episodes.ways = 5;
  const std::string path = "/tmp/metanas_meta_config_test.json";
  c.save(path);
  MetaConfig back = MetaConfig::load(path);
  CHECK(back == c);
  std::remove(path.c_str());
  CHECK_THROWS_WITH(MetaConfig::load("/nonexistent/x.json"), Catch::Contains("/nonexistent/x.json"));
  Rng rng(1);
  auto m = meta::build_model(back.model, rng);
  CHECK(m->kind() == "convnet4");
  CHECK(m->num_classes() == 5);
  CHECK(m->alphas() == nullptr);
}
