// AT-NAS planted answer: tasks separable only by a nonlinear interaction
// between features 3 pixels apart (two dots at distance 3 vs 6, same count
// and intensity). After the last ReLU every linear op (skip, avg pool, the
// plain convs) feeds a global average pool and loses the arrangement; only a
// max pool (or the ReLU inside sep_conv) sees whether the dots' windows
// overlap. Seeded with linear-op subnets only, the evolution must find one.
#include <catch2/catch.hpp>

#include <algorithm>

#include "metanas/engine/random.h"
#include "metanas/meta/atnas.h"
#include "metanas/nas/search_network.h"

using namespace metanas;

namespace {

constexpr int kSize = 16;

// n images per class; class 0: two dots 3 apart, class 1: 6 apart (each
// horizontal or vertical at random), away from the borders.
data::Episode dots_episode(Rng& rng, int shots, int queries) {
  data::Episode ep;
  ep.ways = 2;
  ep.shots = shots;
  ep.queries = queries;
  auto draw = [&](int per_class, Tensor& x, Tensor& y) {
    std::vector<float> v(static_cast<size_t>(2 * per_class * kSize * kSize), 0.f);
    std::vector<int32_t> l;
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < per_class; ++k) {
        const int row = c * per_class + k, d = c == 0 ? 3 : 6;
        const bool horiz = rng.below(2) == 0;
        const int a = 3 + static_cast<int>(rng.below(kSize - 6 - d)), b = 3 + static_cast<int>(rng.below(kSize - 6));
        const int r0 = horiz ? b : a, c0 = horiz ? a : b;
        float* img = &v[static_cast<size_t>(row) * kSize * kSize];
        img[r0 * kSize + c0] = 1.f;
        img[(horiz ? r0 : r0 + d) * kSize + (horiz ? c0 + d : c0)] = 1.f;
        l.push_back(c);
      }
    x = Tensor::from_vector(v, Shape{2 * per_class, 1, kSize, kSize});
    y = Tensor::from_ints(l, Shape{2 * per_class});
  };
  draw(shots, ep.support_x, ep.support_y);
  draw(queries, ep.query_x, ep.query_y);
  return ep;
}

meta::MetaConfig planted_config() {
  meta::MetaConfig c;
  c.algorithm = meta::Algorithm::Atnas;
  c.model.search.in_channels = 1;
  c.model.search.image_size = kSize;
  c.model.search.num_classes = 2;
  c.model.search.C = 8;
  c.model.search.layers = 1;
  c.model.search.nodes = 1;
  c.model.search.stem_multiplier = 1;
  c.episodes.ways = 2;
  c.task.optimizer = meta::InnerOptimizer::Sgd;
  c.task.sgd_w_lr = 0.5f;
  c.task.batch_size = 0;
  c.task.drop_path_prob = 0.f;
  c.eval.batch_size = 0;
  c.eval.arch_steps = 20;
  c.eval.weight_steps = 0;
  c.atnas.fitness = "loss";
  c.atnas.fitness_steps = 20;
  c.atnas.population = 6;
  c.atnas.top_k = 3;
  c.atnas.mutants = 4;
  c.atnas.crossovers = 2;
  c.atnas.generations = 4;
  c.atnas.mutation_prob = 0.34f;
  return c;
}

}  // namespace

TEST_CASE("atnas planted answer: the evolution finds the nonlinear op", "[atnas][planted]") {
  meta::MetaConfig c = planted_config();
  c.atnas.mutants = 5;
  c.atnas.crossovers = 2;
  c.atnas.generations = 5;
  c.validate();
  Rng rng(3);
  nas::SearchNetwork net(c.model.search, rng);
  const nas::EncodingSpace sp = nas::encoding_space(net);
  Rng drng(5);
  const data::Episode ep = dots_episode(drng, 20, 20);
  // Generation 0: linear ops only (avg pool, skip, the plain convs).
  std::vector<int> linear;
  for (int k = 0; k < static_cast<int>(sp.ops().size()); ++k)
    if (sp.ops()[k] != nas::Primitive::MaxPool3x3 && sp.ops()[k] != nas::Primitive::SepConv3x3) linear.push_back(k);
  std::vector<nas::Encoding> seeds;
  Rng srng(8);
  for (int i = 0; i < c.atnas.population; ++i) {
    nas::Encoding e;
    e.genes = {0, linear[srng.below(linear.size())], linear[srng.below(linear.size())], 0,
               linear[srng.below(linear.size())], linear[srng.below(linear.size())]};
    seeds.push_back(e);
  }
  auto nonlinear = [&](const nas::Encoding& e) {
    // layers 1: the only cell is a reduction cell (genes 3..5).
    for (int g : {4, 5})
      if (sp.ops()[e.genes[g]] == nas::Primitive::MaxPool3x3 || sp.ops()[e.genes[g]] == nas::Primitive::SepConv3x3)
        return true;
    return false;
  };
  REQUIRE(c.model.search.resolved_reductions() == std::vector<int>{0});
  meta::AtnasSearcher s(net, c, 11, seeds);
  double seed_best = -1e9;
  for (const auto& e : seeds) seed_best = std::max(seed_best, s.fitness(e, ep));
  REQUIRE(seed_best < -0.67);  // linear subnets stay near chance (ln 2 = 0.693)
  c.atnas.holdout_shots = 10;  // 10 of 20 images per class train, 10 score
  meta::AtnasSearcher search(net, c, 11, seeds);
  const meta::AtnasTaskResult r = search.evaluate_task(ep);
  INFO("best " << r.best.to_text() << " fitness " << r.best_fitness);
  REQUIRE(nonlinear(r.best));
  REQUIRE(r.best_fitness > -0.65);
  REQUIRE(r.eval.accuracy > 0.7);  // the query set, after the final adaptation
}
