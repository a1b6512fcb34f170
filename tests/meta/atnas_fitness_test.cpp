// AT-NAS batched fitness evaluation: with the shared (frozen) stem, the
// cached stem outputs give the same fitness values and the same whole search,
// bit for bit, as recomputing the stem for every candidate, in any order of
// candidates; the frozen stem differs from the adapted one.
#include <catch2/catch.hpp>

#include <algorithm>

#include "metanas/engine/error.h"
#include "metanas/meta/atnas.h"
#include "metanas/meta/learner.h"
#include "tests/meta/fixtures.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

meta::MetaConfig fitness_config() {
  meta::MetaConfig c = tiny_atnas_config(9);
  c.episodes.shots = 3;
  c.atnas.population = 4;
  c.atnas.crossovers = 2;
  c.atnas.fitness_steps = 3;
  c.atnas.fitness = "loss";  // continuous values: any difference shows
  c.eval.batch_size = 4;  // random support batches: equal only with common random numbers
  return c;
}

}  // namespace

TEST_CASE("atnas shared stem: cached fitness equals the recomputed stem bit for bit, in any order",
          "[atnas][fitness]") {
  const meta::MetaConfig c = fitness_config();
  auto l = meta::make_meta_learner(c);
  data::EpisodeSampler s(tiny_synthetic(), 3, 3, 2, 4);
  l->meta_step(draw_tasks(s, 2));
  auto& at = dynamic_cast<meta::Atnas&>(*l);
  const data::Episode split = meta::holdout_split(s.sample(), c.atnas.holdout_shots);
  REQUIRE(split.shots == 2);

  Rng r(4);
  std::vector<nas::Encoding> cands;
  while (cands.size() < 6) {
    nas::Encoding e = at.space().random(r);
    if (std::find(cands.begin(), cands.end(), e) == cands.end()) cands.push_back(e);
  }
  meta::AtnasSearcher cached(at.supernet(), c, 7), plain(at.supernet(), c, 7);
  plain.set_stem_cache(false);
  std::vector<double> fc, fp(cands.size());
  for (const nas::Encoding& e : cands) fc.push_back(cached.fitness(e, split));
  for (size_t i = cands.size(); i-- > 0;) fp[i] = plain.fitness(cands[i], split);
  for (size_t i = 0; i < cands.size(); ++i) {
    INFO("candidate " << i);
    REQUIRE(fc[i] == fp[i]);
  }
  // Every forward after the first candidate's reused its batches' stem.
  REQUIRE(cached.stem_cache_hits() >= static_cast<int64_t>((cands.size() - 1) * (c.atnas.fitness_steps + 1)));
  REQUIRE(plain.stem_cache_hits() == 0);
  // Scoring a candidate again gives the same value (same batches).
  REQUIRE(cached.fitness(cands[2], split) == fc[2]);

  // The adapted stem trains the stem too: other values.
  meta::MetaConfig ca = c;
  ca.atnas.fitness_stem = "adapted";
  meta::AtnasSearcher adapted(at.supernet(), ca, 7);
  REQUIRE_THROWS_AS(adapted.set_stem_cache(true), Error);
  bool differs = false;
  for (size_t i = 0; i < cands.size(); ++i) differs = differs || adapted.fitness(cands[i], split) != fc[i];
  REQUIRE(differs);

  // A whole per-task search: the same subnet, fitness and test accuracy.
  const std::vector<data::Episode> tasks = draw_tasks(s, 2);
  meta::AtnasSearcher sc(at.supernet(), c, 3), sp(at.supernet(), c, 3);
  sp.set_stem_cache(false);
  const meta::AtnasReport a = sc.evaluate(tasks), b = sp.evaluate(tasks);
  for (size_t t = 0; t < tasks.size(); ++t) {
    REQUIRE(a.tasks[t].best == b.tasks[t].best);
    REQUIRE(a.tasks[t].best_fitness == b.tasks[t].best_fitness);
    REQUIRE(a.tasks[t].eval.loss == b.tasks[t].eval.loss);
    REQUIRE(a.tasks[t].evaluations == b.tasks[t].evaluations);
    REQUIRE(a.tasks[t].stem_cache_hits > 0);
    REQUIRE(b.tasks[t].stem_cache_hits == 0);
  }
}
