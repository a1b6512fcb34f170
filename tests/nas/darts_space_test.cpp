// DARTS's 8-op search space (SearchConfig::space = "darts"): the three ops it
// adds (none, sep_conv_5x5, dil_conv_5x5), the network's parameter counts
// against counts written out from the op definitions, and the genotype
// decoder never choosing `none` (as DARTS's genotype()).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/json.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

TEST_CASE("the DARTS space lists DARTS's 8 ops in its order", "[nas][darts_space]") {
  std::vector<std::string> names;
  for (Primitive p : space_primitives(SearchSpace::Darts)) names.push_back(primitive_name(p));
  CHECK(names == std::vector<std::string>{"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                          "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"});
  CHECK(space_primitives(SearchSpace::MetaNAS).size() == 7);
  CHECK(parse_search_space("darts") == SearchSpace::Darts);
  CHECK_THROWS_WITH(parse_search_space("enas"), Catch::Contains("valid: metanas, darts"));
  CHECK(parse_primitive("dil_conv_5x5") == Primitive::DilConv5x5);
}

TEST_CASE("none, sep_conv_5x5 and dil_conv_5x5: shapes, parameters, zeros", "[nas][darts_space]") {
  const int64_t C = 4;
  for (int stride : {1, 2}) {
    for (int64_t size : {9, 12}) {
      Tensor x = random_images(2, C, size, 11);
      const int64_t out = (size + stride - 1) / stride;
      for (Primitive p : {Primitive::None, Primitive::SepConv5x5, Primitive::DilConv5x5}) {
        Rng rng(5);
        PrimitiveOp op(p, C, stride, /*affine=*/true, rng);
        Tensor y = op.forward(x);
        INFO(primitive_name(p) << " stride " << stride << " size " << size);
        REQUIRE(y.shape() == Shape{2, C, out, out});
        const int64_t dwpw5 = 25 * C + C * C, bn = 2 * C;
        const int64_t want = p == Primitive::None ? 0 : p == Primitive::SepConv5x5 ? 2 * (dwpw5 + bn) : dwpw5 + bn;
        CHECK(op.weights().numel() == want);
        const auto v = y.to_vector();
        const float maxabs = std::abs(*std::max_element(v.begin(), v.end(), [](float a, float b) {
          return std::abs(a) < std::abs(b);
        }));
        if (p == Primitive::None)
          CHECK(maxabs == 0.f);
        else
          CHECK(maxabs > 0.1f);  // batch-normalised outputs, not zeros
      }
    }
  }
}

TEST_CASE("a DARTS-space search network: parameter and alpha counts", "[nas][darts_space]") {
  SearchConfig m;
  m.C = 6;
  m.layers = 2;
  m.nodes = 3;
  m.num_classes = 5;
  SearchConfig d = m;
  d.space = "darts";
  Rng r1(1), r2(1);
  SearchNetwork mn(m, r1), dn(d, r2);
  // Per edge (BN in the search network has no parameters; skip_connect and
  // the pools are the same in both): DARTS sep 3x3 + sep 5x5 + dil 3x3 + dil 5x5
  // = 2(9C+C^2) + 2(25C+C^2) + (9C+C^2) + (25C+C^2); MetaNAS conv_1x5_5x1 +
  // conv_3x3 + sep 3x3 + dil 3x3 = 10C^2 + 4(9C+C^2). 9 edges per cell.
  const int64_t C = 6;
  const int64_t darts_edge = 2 * (9 * C + C * C) + 2 * (25 * C + C * C) + (9 * C + C * C) + (25 * C + C * C);
  const int64_t metanas_edge = 10 * C * C + 4 * (9 * C + C * C);
  CHECK(dn.weights().numel() - mn.weights().numel() == 2 * 9 * (darts_edge - metanas_edge));
  CHECK(dn.alphas()->numel() == 2 * (9 * 8) + 2 * (1 + 3 + 6));
  Tensor y = dn.forward(random_images(3, 1, 28, 2), ForwardContext{});
  CHECK(y.shape() == Shape{3, 5});
  // The configuration round-trips and rejects an unknown space.
  CHECK(SearchConfig::from_json(d.to_json()) == d);
  CHECK(SearchConfig::from_json(d.to_json()) != m);
  CHECK_THROWS_WITH(SearchConfig::from_json(R"({"space": "nasnet"})"), Catch::Contains("space"));
}

TEST_CASE("the DARTS-space genotype never picks none", "[nas][darts_space]") {
  SearchConfig d;
  d.C = 4;
  d.layers = 2;
  d.nodes = 2;
  d.space = "darts";
  Rng rng(3);
  SearchNetwork net(d, rng);
  ParamSet& A = *net.alphas();
  // Node 0 of the normal cell: none highest on both inputs, then planted
  // runner-ups (sep_conv_5x5 on input 0, dil_conv_5x5 on input 1).
  Tensor& a = A[net.alpha_index(CellType::Normal, 0)];
  std::vector<float> v(static_cast<size_t>(2 * 8), 0.f);
  v[0] = 5.f;          // input 0: none
  v[5] = 2.f;          // input 0: sep_conv_5x5
  v[8 + 0] = 5.f;      // input 1: none
  v[8 + 7] = 3.f;      // input 1: dil_conv_5x5
  a.copy_(Tensor::from_vector(v, a.shape()));
  const Genotype g = net.genotype();
  REQUIRE(g.normal[0].size() == 2);
  CHECK(g.normal[0][0].op == Primitive::SepConv5x5);
  CHECK(g.normal[0][0].input == 0);
  CHECK(g.normal[0][1].op == Primitive::DilConv5x5);
  CHECK(g.normal[0][1].input == 1);
  for (const auto& cell : {g.normal, g.reduce})
    for (const auto& node : cell)
      for (const auto& e : node) CHECK(e.op != Primitive::None);
  // The decoded genotype builds a discrete network (5x5 ops included).
  DiscreteConfig dc;
  dc.C = 4;
  dc.layers = 2;
  DiscreteNetwork dnet(dc, g, rng);
  CHECK(dnet.forward(random_images(2, 1, 16, 4), ForwardContext{}).shape() == Shape{2, dc.num_classes});
}
