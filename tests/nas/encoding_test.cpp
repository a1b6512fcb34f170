// AT-NAS encodings and evolution: validity by construction, decode/encode
// round trips, mutation/crossover rates, elitism, and a subnet forward
// through the supernet against the same genotype as a discrete network.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <string>
#include <map>
#include <set>

#include "metanas/engine/error.h"
#include "metanas/nas/discrete_network.h"
#include "metanas/nas/encoding.h"
#include "metanas/nas/evolution.h"
#include "metanas/nas/search_network.h"
#include "nas/fixtures.h"

using namespace metanas;
using namespace metanas::nas;

TEST_CASE("atnas encoding: every random encoding decodes to a valid genotype and back", "[atnas]") {
  for (SearchSpace s : {SearchSpace::MetaNAS, SearchSpace::Darts}) {
    for (int nodes : {1, 3, 4}) {
      EncodingSpace sp(s, nodes);
      REQUIRE(sp.ops().size() == 7u);  // darts: its 8 ops minus none
      Rng rng(7);
      for (int t = 0; t < 200; ++t) {
        Encoding e = sp.random(rng);
        sp.validate(e);
        Genotype g = sp.decode(e);
        REQUIRE_NOTHROW(g.validate());
        for (const auto& cell : {g.normal, g.reduce})
          for (size_t i = 0; i < cell.size(); ++i) {
            REQUIRE(cell[i].size() == 2);
            REQUIRE(cell[i][0].input < cell[i][1].input);      // two distinct inputs ...
            REQUIRE(cell[i][1].input < static_cast<int>(i) + 2);  // ... among the node's i + 2
            REQUIRE(cell[i][0].op != Primitive::None);
          }
        REQUIRE(sp.encode(g) == e);
        REQUIRE(Encoding::from_text(e.to_text()) == e);
        REQUIRE(Genotype::from_text(g.to_text()) == g);
      }
    }
  }
}

TEST_CASE("atnas encoding: the space is enumerated exactly once", "[atnas]") {
  // 1 node: 1 pair x 7 x 7 per cell -> 49^2 subnets; random draws cover them.
  EncodingSpace sp(SearchSpace::MetaNAS, 1);
  REQUIRE(sp.size() == 49.0 * 49.0);
  std::set<Encoding> seen;
  Rng rng(3);
  for (int t = 0; t < 40000; ++t) seen.insert(sp.random(rng));
  REQUIRE(static_cast<double>(seen.size()) == sp.size());
}

TEST_CASE("atnas encoding: bad encodings and non-subnet genotypes are rejected", "[atnas]") {
  EncodingSpace sp(SearchSpace::MetaNAS, 3);
  Encoding e;
  e.genes.assign(18, 0);
  REQUIRE_NOTHROW(sp.validate(e));
  e.genes[3] = 3;  // node 1 has C(3, 2) = 3 pairs
  REQUIRE_THROWS_AS(sp.validate(e), Error);
  e.genes.pop_back();
  REQUIRE_THROWS_AS(sp.validate(e), Error);
  REQUIRE_THROWS_AS(Encoding::from_text("1.2|x"), Error);
  REQUIRE_THROWS_AS(Encoding::from_text("1.2."), Error);
  Genotype g = sp.decode(sp.random(*std::make_unique<Rng>(1)));
  Genotype same_input = g;
  same_input.normal[1][1].input = same_input.normal[1][0].input;
  REQUIRE_THROWS_AS(sp.encode(same_input), Error);
  Genotype with_none = g;
  with_none.reduce[0][0].op = Primitive::None;
  REQUIRE_THROWS_AS(sp.encode(with_none), Error);
  // An op of the other space.
  const EncodingSpace darts(SearchSpace::Darts, 3);
  Genotype darts_op = darts.decode(darts.random(*std::make_unique<Rng>(2)));
  darts_op.reduce[0][0].op = Primitive::SepConv5x5;
  REQUIRE_THROWS_AS(sp.encode(darts_op), Error);
  REQUIRE_NOTHROW(darts.encode(darts_op));
  Genotype metanas_op = g;
  metanas_op.normal[0][0].op = Primitive::Conv1x5_5x1;
  REQUIRE_THROWS_AS(darts.encode(metanas_op), Error);
}

TEST_CASE("atnas mutation and crossover keep validity and respect their rates", "[atnas]") {
  EncodingSpace sp(SearchSpace::Darts, 4);
  Rng rng(11);
  const float p = 0.1f;
  // Expected changed genes per mutation: sum_g p (1 - 1/card_g).
  double expect = 0;
  for (int g = 0; g < sp.num_genes(); ++g) expect += p * (1.0 - 1.0 / sp.cardinality(g));
  const int n = 4000;
  double changed = 0, from_b = 0, differ = 0;
  for (int t = 0; t < n; ++t) {
    Encoding a = sp.random(rng), b = sp.random(rng);
    Encoding m = sp.mutate(a, p, rng);
    sp.validate(m);
    for (int g = 0; g < sp.num_genes(); ++g) changed += m.genes[g] != a.genes[g];
    Encoding c = sp.crossover(a, b, rng);
    sp.validate(c);
    for (int g = 0; g < sp.num_genes(); ++g) {
      REQUIRE((c.genes[g] == a.genes[g] || c.genes[g] == b.genes[g]));
      if (a.genes[g] != b.genes[g]) {
        ++differ;
        from_b += c.genes[g] == b.genes[g];
      }
    }
  }
  // Means of many Bernoulli draws: 5 standard errors.
  const double mean_changed = changed / n;
  const double var = [&] {
    double v = 0;
    for (int g = 0; g < sp.num_genes(); ++g) {
      const double q = p * (1.0 - 1.0 / sp.cardinality(g));
      v += q * (1 - q);
    }
    return v;
  }();
  REQUIRE(std::abs(mean_changed - expect) < 5 * std::sqrt(var / n));
  REQUIRE(std::abs(from_b / differ - 0.5) < 5 * std::sqrt(0.25 / differ));
  // p = 0 never changes anything; p = 1 redraws every gene.
  Encoding a = sp.random(rng);
  REQUIRE(sp.mutate(a, 0.f, rng) == a);
  REQUIRE_THROWS_AS(sp.mutate(a, 1.5f, rng), Error);
}

namespace {
// A fitness with a known optimum: the number of genes equal to the target.
double match(const Encoding& e, const Encoding& target) {
  double m = 0;
  for (size_t g = 0; g < e.genes.size(); ++g) m += e.genes[g] == target.genes[g];
  return m;
}
}  // namespace

TEST_CASE("atnas evolution: elitism never loses the best, duplicates are skipped", "[atnas]") {
  EncodingSpace sp(SearchSpace::MetaNAS, 3);
  Rng rng(5);
  const Encoding target = sp.random(rng);
  EvolutionOptions opt;  // 50 / 10 / 25 + 25 / 20 generations / p = 0.1
  double best_so_far = -1;
  std::set<Encoding> all;
  int64_t total = 0;
  Evolution ev = evolve(
      sp, opt,
      [&](const std::vector<Encoding>& batch) {
        std::vector<double> f;
        for (const Encoding& e : batch) {
          // Noise makes later generations able to score below the best.
          f.push_back(match(e, target) + 0.01 * static_cast<double>(all.size() % 7));
          all.insert(e);
          ++total;
        }
        return f;
      },
      rng, {},
      [&](int g, const Evolution& e) {
        REQUIRE(e.best().fitness >= best_so_far);  // the elite front never gets worse
        for (size_t i = 1; i < e.elite().size(); ++i) REQUIRE(e.elite()[i - 1].fitness >= e.elite()[i].fitness);
        REQUIRE(static_cast<int>(e.elite().size()) <= opt.top_k);
        best_so_far = e.best().fitness;
        REQUIRE(g <= opt.generations);
        REQUIRE(static_cast<int>(e.generation().size()) <= 50);
      });
  REQUIRE(ev.generation_index() == opt.generations + 1);
  REQUIRE(static_cast<int64_t>(all.size()) == total);  // no encoding scored twice
  // Generation 0 is full; later ones hold at most 25 + 25 (fewer once the
  // elite has converged and most children were already seen).
  REQUIRE(total > 50 + 50);
  REQUIRE(total <= 50 + 20 * 50);
  REQUIRE(ev.evaluations() == total);
  // The separable planted optimum is found.
  REQUIRE(ev.best().encoding == target);
}

TEST_CASE("atnas evolution: state round trip through JSON and bad state", "[atnas]") {
  EncodingSpace sp(SearchSpace::MetaNAS, 2);
  EvolutionOptions opt;
  opt.population = 6;
  opt.top_k = 3;
  opt.mutants = 3;
  opt.crossovers = 3;
  Rng rng(9);
  Evolution a(sp, opt);
  a.start(rng);
  for (int i = 0; i < 6; ++i) a.set_fitness(i, 0.1 * i + 1e-17 * i);
  a.advance(rng);
  a.set_fitness(0, 0.3333333333333333);
  Evolution b(sp, opt);
  b.load_json(a.to_json());
  REQUIRE(b.to_json() == a.to_json());
  REQUIRE(b.next_unscored() == 1);
  REQUIRE(b.elite()[0].fitness == a.elite()[0].fitness);
  REQUIRE_THROWS_AS(b.load_json("{\"started\": true}"), Error);
  REQUIRE_THROWS_AS(b.advance(rng), Error);  // unscored candidates left
  opt.top_k = 0;
  REQUIRE_THROWS_AS(Evolution(sp, opt), Error);
}

TEST_CASE("atnas subnet forward through the supernet equals the discrete network", "[atnas]") {
  for (const char* space : {"metanas", "darts"}) {
    SearchConfig sc = testing::tiny_search_config();
    sc.space = space;
    sc.layers = 3;
    sc.reduction_layers = {1};
    Rng rng(21);
    SearchNetwork net(sc, rng);
    const EncodingSpace sp = encoding_space(net);
    const Tensor x = testing::random_images(5, 1, 8, 4);
    for (int t = 0; t < 6; ++t) {
      const Encoding e = sp.random(rng);
      apply_encoding(net, e);
      ForwardContext ctx;  // softmax, prune threshold 0: exact zeros are skipped
      ctx.temperature = t % 2 ? 0.3f : 1.f;
      const std::vector<float> y_super = net.forward(x, ctx).to_vector();
      const ForwardStats st = net.last_forward_stats();
      REQUIRE(st.ops_computed == 2 * sc.nodes * sc.layers);  // only the chosen ops
      REQUIRE(st.pairs_kept == sc.nodes * sc.layers);

      DiscreteConfig dc;
      dc.in_channels = sc.in_channels;
      dc.image_size = sc.image_size;
      dc.num_classes = sc.num_classes;
      dc.C = sc.C;
      dc.layers = sc.layers;
      dc.stem_multiplier = sc.stem_multiplier;
      dc.reduction_layers = sc.reduction_layers;
      const Genotype g = sp.decode(e);
      DiscreteNetwork disc(dc, g, rng);
      // Same weights: the supernet's parameter of the chosen (input, op), BN
      // gamma 1 / beta 0 for the discrete net's affine BN (the supernet's
      // cell BN is not affine).
      ParamSet& D = disc.weights();
      for (int i = 0; i < D.size(); ++i) {
        std::string n = D.name(i);
        const size_t edge = n.find(".edge");
        if (edge != std::string::npos) {
          const int cell = std::stoi(n.substr(4, n.find('.') - 4));
          const bool red = cell == 1;
          const int node = std::stoi(n.substr(n.find(".node") + 5));
          const int e_i = n[edge + 5] - '0';
          const int input = (red ? g.reduce : g.normal)[node][e_i].input;
          n = n.substr(0, edge) + ".in" + std::to_string(input) + n.substr(edge + 6);
        }
        if (net.weights().contains(n)) {
          D[i].copy_(net.weights().get(n));
        } else {
          const bool gamma = n.size() > 6 && n.substr(n.size() - 6) == ".gamma";
          const bool beta = n.size() > 5 && n.substr(n.size() - 5) == ".beta";
          REQUIRE((gamma || beta));
          D[i].copy_(Tensor::full(D.shape(i), gamma ? 1.f : 0.f));
        }
      }
      const std::vector<float> y_disc = disc.forward(x, ForwardContext{}).to_vector();
      // Equal up to rounding: the supernet folds its ops' last batch norms
      // into the mixed op (normalized_weighted_sum); without the fold
      // (METANAS_FOLD_BN=0) the two are bitwise equal.
      REQUIRE(y_super.size() == y_disc.size());
      for (size_t j = 0; j < y_disc.size(); ++j) REQUIRE(std::fabs(y_super[j] - y_disc[j]) <= 1e-5f * (1.f + std::fabs(y_disc[j])));
      const char* fold = std::getenv("METANAS_FOLD_BN");
      if (fold && std::string(fold) == "0") REQUIRE(y_super == y_disc);
    }
  }
}
