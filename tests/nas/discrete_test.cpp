// Discrete networks from genotypes and the ConvNet4 baseline: parameter
// counts against a count written out from the definitions, output shapes,
// drop-path, clones.
#include <catch2/catch.hpp>

#include <algorithm>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

namespace {

// Parameters of one affine op at C channels.
int64_t op_params(Primitive p, int64_t C, int stride) {
  const int64_t bn = 2 * C, dwpw = 9 * C + C * C;
  switch (p) {
    case Primitive::MaxPool3x3:
    case Primitive::AvgPool3x3: return bn;
    case Primitive::SkipConnect: return stride == 1 ? 0 : 2 * C * (C / 2) + bn;
    case Primitive::Conv1x5_5x1: return 10 * C * C + bn;
    case Primitive::Conv3x3:
    case Primitive::DilConv3x3: return dwpw + bn;
    case Primitive::SepConv3x3: return 2 * (dwpw + bn);
    default: break;
  }
  return -1;
}

int64_t expected_params(const DiscreteConfig& c, const Genotype& g) {
  const auto red = c.resolved_reductions();
  const int64_t cs = static_cast<int64_t>(c.stem_multiplier) * c.C;
  int64_t n = c.in_channels * cs * 9 + 2 * cs;
  int64_t cpp = cs, cp = cs, cur = c.C;
  bool red_prev = false;
  for (int k = 0; k < c.layers; ++k) {
    const bool r = std::find(red.begin(), red.end(), k) != red.end();
    if (r) cur *= c.channel_scale;
    n += red_prev ? 2 * cpp * (cur / 2) + 2 * cur : cpp * cur + 2 * cur;  // pre0
    n += cp * cur + 2 * cur;                                              // pre1
    const auto& cell = r ? g.reduce : g.normal;
    for (const auto& node : cell)
      for (const auto& e : node) n += op_params(e.op, cur, r && e.input < 2 ? 2 : 1);
    cpp = cp;
    cp = cur * static_cast<int64_t>((r ? g.reduce_concat : g.normal_concat).size());
    red_prev = r;
  }
  return n + cp * c.num_classes + c.num_classes;
}

}  // namespace

TEST_CASE("discrete network from a genotype: parameters and output shapes", "[nas][discrete]") {
  Genotype g = Genotype::from_text(kOgV2);
  DiscreteConfig c;
  c.C = 8;
  c.num_classes = 5;
  for (int scale : {1, 2}) {
    for (int layers : {4, 5}) {
      c.channel_scale = scale;
      c.layers = layers;
      Rng rng(1);
      DiscreteNetwork net(c, g, rng);
      INFO("scale " << scale << " layers " << layers);
      REQUIRE(net.weights().numel() == expected_params(c, g));
      REQUIRE(net.alphas() == nullptr);
      REQUIRE(net.sparse_param_count(ForwardContext{}) == net.weights().numel());
      for (int64_t size : {28, 84}) {
        Tensor y = net.forward(random_images(2, 1, size, 2), ForwardContext{});
        REQUIRE(y.shape() == Shape{2, 5});
      }
    }
  }
}

TEST_CASE("the searched genotype builds a discrete network", "[nas][discrete]") {
  SearchConfig sc;
  sc.C = 4;
  sc.layers = 2;
  Rng rng(3);
  SearchNetwork search(sc, rng);
  DiscreteConfig dc;
  dc.C = 6;
  dc.layers = 3;
  dc.in_channels = 3;
  dc.num_classes = 4;
  DiscreteNetwork net(dc, search.genotype(), rng);
  REQUIRE(net.genotype() == search.genotype());
  REQUIRE(net.forward(random_images(3, 3, 20, 4), ForwardContext{}).shape() == Shape{3, 4});
  REQUIRE(net.weights().numel() == expected_params(dc, search.genotype()));
}

TEST_CASE("discrete network drop-path and clone", "[nas][discrete]") {
  Genotype g = Genotype::from_text(kOgV2);
  DiscreteConfig c;
  c.C = 4;
  c.num_classes = 3;
  Rng rng(5);
  DiscreteNetwork net(c, g, rng);
  Tensor x = random_images(4, 1, 12, 6);
  const std::vector<float> plain = net.forward(x, ForwardContext{}).to_vector();
  ForwardContext ctx;
  ctx.drop_path_prob = 0.3f;
  Rng r1(7), r2(7);
  ctx.rng = &r1;
  const std::vector<float> d1 = net.forward(x, ctx).to_vector();
  ctx.rng = &r2;
  REQUIRE(net.forward(x, ctx).to_vector() == d1);
  REQUIRE(d1 != plain);
  ctx.training = false;
  REQUIRE(net.forward(x, ctx).to_vector() == plain);

  auto cl = net.clone();
  REQUIRE(cl->kind() == "discrete");
  REQUIRE(cl->forward(x, ForwardContext{}).to_vector() == plain);
  REQUIRE_THROWS_WITH(net.forward(random_images(2, 3, 12, 1), ForwardContext{}), Catch::Contains("[N, 1, H, W]"));
  Genotype bad = g;
  bad.normal[0][0].input = 5;
  REQUIRE_THROWS_WITH(DiscreteNetwork(c, bad, rng), Catch::Contains("does not exist yet"));
}

TEST_CASE("ConvNet4: the MAML/REPTILE baseline", "[nas][discrete]") {
  for (int64_t size : {28, 84}) {
    ConvNet4Config c;
    c.image_size = static_cast<int>(size);
    c.in_channels = size == 84 ? 3 : 1;
    c.channels = size == 84 ? 32 : 64;
    c.num_classes = 5;
    Rng rng(1);
    ConvNet4 net(c, rng);
    const int64_t f = size == 84 ? 5 : 1;  // 84 -> 42 -> 21 -> 10 -> 5; 28 -> 14 -> 7 -> 3 -> 1
    REQUIRE(c.final_size() == f);
    const int64_t ch = c.channels;
    const int64_t expect = c.in_channels * ch * 9 + 2 * ch + 3 * (ch * ch * 9 + 2 * ch) +
                           ch * f * f * c.num_classes + c.num_classes;
    REQUIRE(net.weights().numel() == expect);
    REQUIRE(net.forward(random_images(3, c.in_channels, size, 2), ForwardContext{}).shape() == Shape{3, 5});
    REQUIRE_THROWS_WITH(net.forward(random_images(3, c.in_channels, size + 16, 2), ForwardContext{}),
                        Catch::Contains("features"));
  }
}

namespace {
// One cell as (op, input) per edge, node by node, typed from the listing of
// metanas/utils/genotypes.py (a second transcription, independent of the
// text in nas/src/builtin_genotypes.cpp).
using Cell = std::vector<std::vector<std::pair<const char*, int>>>;
void check_cell(const std::vector<GenotypeNode>& got, const Cell& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    REQUIRE(got[i].size() == want[i].size());
    for (size_t e = 0; e < want[i].size(); ++e) {
      INFO("node " << i << " edge " << e);
      CHECK(std::string(primitive_name(got[i][e].op)) == want[i][e].first);
      CHECK(got[i][e].input == want[i][e].second);
    }
  }
}
}  // namespace

TEST_CASE("built-in MetaNAS genotypes match the reference listing and build", "[nas][discrete]") {
  REQUIRE(builtin_genotype_names() ==
          std::vector<std::string>{"metanas_og_v2", "metanas_in_v2", "metanas_v1", "auto_meta"});
  REQUIRE(builtin_genotype("metanas_og_v2") == Genotype::from_text(kOgV2));
  const Genotype in2 = builtin_genotype("metanas_in_v2");
  check_cell(in2.normal, {{{"conv_1x5_5x1", 0}, {"conv_3x3", 1}},
                          {{"conv_3x3", 0}, {"sep_conv_3x3", 2}},
                          {{"dil_conv_3x3", 1}, {"conv_1x5_5x1", 3}}});
  check_cell(in2.reduce, {{{"sep_conv_3x3", 0}, {"conv_3x3", 1}},
                          {{"conv_3x3", 0}, {"sep_conv_3x3", 2}},
                          {{"conv_3x3", 0}, {"dil_conv_3x3", 1}}});
  const Genotype v1 = builtin_genotype("metanas_v1");
  check_cell(v1.normal, {{{"conv_3x3", 0}, {"conv_3x3", 1}},
                         {{"conv_1x5_5x1", 0}, {"dil_conv_3x3", 2}},
                         {{"conv_1x5_5x1", 0}, {"max_pool_3x3", 3}}});
  check_cell(v1.reduce, {{{"dil_conv_3x3", 0}, {"sep_conv_3x3", 1}},
                         {{"conv_3x3", 0}, {"max_pool_3x3", 1}},
                         {{"dil_conv_3x3", 2}, {"conv_1x5_5x1", 3}}});
  const Genotype am = builtin_genotype("auto_meta");
  const Cell am_cell = {{{"conv_3x3", 1}, {"max_pool_3x3", 1}},
                        {{"conv_1x5_5x1", 2}, {"max_pool_3x3", 2}},
                        {{"conv_3x3", 2}, {"conv_1x5_5x1", 3}},
                        {{"conv_3x3", 3}, {"conv_3x3", 3}},
                        {{"conv_1x5_5x1", 3}, {"conv_3x3", 2}}};
  check_cell(am.normal, am_cell);
  check_cell(am.reduce, am_cell);
  CHECK(am.normal_concat == std::vector<int>{2, 3, 4, 5, 6});
  CHECK(in2.reduce_concat == std::vector<int>{2, 3, 4});

  // The scaled-MetaNAS shape (5 cells) builds from each, with the expected count.
  DiscreteConfig c;
  c.C = 6;
  c.layers = 5;
  c.num_classes = 3;
  for (const auto& name : builtin_genotype_names()) {
    INFO(name);
    Rng rng(4);
    DiscreteNetwork net(c, builtin_genotype(name), rng);
    CHECK(net.weights().numel() == expected_params(c, builtin_genotype(name)));
    CHECK(net.forward(random_images(2, 1, 28, 5), ForwardContext{}).shape() == Shape{2, 3});
  }
  try {
    builtin_genotype("metanas_og_v3");
    FAIL("an unknown name was accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("valid: metanas_og_v2, metanas_in_v2") != std::string::npos);
  }
}
