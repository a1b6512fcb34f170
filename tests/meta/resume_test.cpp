// Resume: 2N meta-iterations straight and N + save + load into fresh objects
// + N give bitwise-identical parameters (REPTILE and first-order MAML, with
// random support batches, drop-path, a warm-up boundary, meta-model pruning
// and Adam states in play); a checkpoint from another algorithm is refused.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "metanas/datasets/synthetic.h"
#include "metanas/engine/error.h"
#include "metanas/meta/learner.h"
#include "tests/meta/fixtures.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

meta::MetaConfig resume_config(meta::Algorithm alg) {
  meta::MetaConfig c = tiny_meta_config(17);  // support batches of 4 drawn with replacement from 6 images
  c.algorithm = alg;
  c.task.drop_path_prob = 0.2f;
  c.meta.warmup_iterations = 3;
  c.meta.prune_every = 2;
  c.meta.prune_threshold = 0.1f;
  if (alg != meta::Algorithm::Reptile) {
    c.task.optimizer = meta::InnerOptimizer::Sgd;
    c.meta.optimizer = meta::MetaOptimizer::Adam;
    c.meta.w_lr = 0.01f;
    c.meta.a_lr = 0.01f;
    c.meta.w_anneal = true;
    c.meta.a_anneal = true;
    c.meta.iterations = 6;
  }
  return c;
}

std::vector<float> all_params(const meta::MetaLearner& l) {
  std::vector<float> v = l.meta_model().weights().values().to_vector();
  const std::vector<float> a = l.meta_model().alphas()->values().to_vector();
  v.insert(v.end(), a.begin(), a.end());
  return v;
}

}  // namespace

TEST_CASE("Resume: 2N iterations equal N + save + load + N, bit for bit", "[meta][resume]") {
  const data::Dataset ds = tiny_synthetic();
  for (auto alg : {meta::Algorithm::Reptile, meta::Algorithm::Fomaml, meta::Algorithm::AutoMaml}) {
    SECTION(meta::algorithm_name(alg)) {
      const meta::MetaConfig cfg = resume_config(alg);
      const int N = 3;
      auto sampler = [&](uint64_t seed) {
        return data::EpisodeSampler(ds, cfg.episodes.ways, cfg.episodes.train_shots, cfg.episodes.queries, seed);
      };
      const std::string path = (std::filesystem::temp_directory_path() /
                                (std::string("metanas_resume_") + meta::algorithm_name(alg) + ".ckpt"))
                                   .string();

      // 2N straight.
      auto a = meta::make_meta_learner(cfg, Device::CPU);
      auto sa = sampler(5);
      meta_train(*a, sa, 2 * N);

      // N, then save the learner and the sampler state.
      std::vector<float> after_n;
      {
        auto b = meta::make_meta_learner(cfg, Device::CPU);
        auto sb = sampler(5);
        meta_train(*b, sb, N);
        after_n = all_params(*b);
        Checkpoint ck;
        ck.set_metadata_json(nlohmann::json{{"sampler", sb.state()}}.dump());
        b->save_state(ck);
        ck.save(path);
      }
      // Fresh objects with other seeds: everything must come from the file.
      meta::MetaConfig other = cfg;
      other.seed = cfg.seed + 1000;
      auto c = meta::make_meta_learner(other, Device::CPU);
      auto sc = sampler(77);
      REQUIRE(all_params(*c) != after_n);
      Checkpoint loaded = Checkpoint::load(path);
      std::remove(path.c_str());
      c->load_state(loaded);
      sc.set_state(nlohmann::json::parse(loaded.metadata_json()).at("sampler").get<std::string>());
      CHECK(c->iteration() == N);
      CHECK(all_params(*c) == after_n);
      meta_train(*c, sc, N);

      CHECK(c->iteration() == 2 * N);
      CHECK(all_params(*c) == all_params(*a));
      CHECK(c->rng().state() == a->rng().state());
      // The run was not trivial: it moved the parameters after N.
      CHECK(all_params(*a) != after_n);
    }
  }
}

TEST_CASE("load_state refuses a checkpoint of another algorithm or model", "[meta][resume]") {
  auto r = meta::make_meta_learner(resume_config(meta::Algorithm::Reptile), Device::CPU);
  auto f = meta::make_meta_learner(resume_config(meta::Algorithm::Fomaml), Device::CPU);
  Checkpoint ck;
  r->save_state(ck);
  CHECK_THROWS_WITH(f->load_state(ck), Catch::Contains("reptile") && Catch::Contains("fomaml"));
  Checkpoint empty;
  CHECK_THROWS_WITH(r->load_state(empty), Catch::Contains("meta_learner"));
  meta::MetaConfig wider = resume_config(meta::Algorithm::Reptile);
  wider.model.search.C = 6;
  auto w = meta::make_meta_learner(wider, Device::CPU);
  CHECK_THROWS_AS(w->load_state(ck), Error);
}
