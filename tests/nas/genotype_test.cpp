// Genotypes: derivation from a search network, text and JSON round trips,
// parse errors, DOT output and rendering.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "metanas/engine/error.h"
#include "metanas/nas/json.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

namespace {

Genotype og_v2() {
  using P = Primitive;
  Genotype g;
  g.normal = {{{P::DilConv3x3, 0}, {P::SepConv3x3, 1}},
              {{P::AvgPool3x3, 0}, {P::SepConv3x3, 1}},
              {{P::Conv1x5_5x1, 0}, {P::Conv3x3, 2}}};
  g.reduce = {{{P::SkipConnect, 0}, {P::SepConv3x3, 1}},
              {{P::Conv3x3, 0}, {P::DilConv3x3, 1}},
              {{P::DilConv3x3, 0}, {P::Conv1x5_5x1, 2}}};
  g.normal_concat = g.reduce_concat = {2, 3, 4};
  return g;
}

void set_param(SearchNetwork& net, int idx, const std::vector<float>& v) {
  Tensor& t = (*net.alphas())[idx];
  t.copy_(Tensor::from_vector(v, t.shape()));
}

}  // namespace

TEST_CASE("genotype text form is the metanas Python repr and parses back", "[nas][genotype]") {
  Genotype g = og_v2();
  REQUIRE(g.to_text() == kOgV2);
  REQUIRE(Genotype::from_text(kOgV2) == g);
  REQUIRE(Genotype::from_text(g.to_text()) == g);
  // Formatting freedom of Python: newlines, double quotes, tuples, lists for concat.
  const char* loose =
      "Genotype(\n  normal=[[(\"dil_conv_3x3\", 0), ('sep_conv_3x3', 1)],\n"
      "          [('avg_pool_3x3', 0), ('sep_conv_3x3', 1)],\n"
      "          [('conv_1x5_5x1', 0), ('conv_3x3', 2)],],\n"
      "  reduce_concat=[2, 3, 4],\n"
      "  reduce=[[('skip_connect', 0), ('sep_conv_3x3', 1)], [('conv_3x3', 0), ('dil_conv_3x3', 1)],"
      " [('dil_conv_3x3', 0), ('conv_1x5_5x1', 2)]],\n"
      "  normal_concat=range(2, 5))";
  REQUIRE(Genotype::from_text(loose) == g);
  // Non-contiguous concat prints as a list.
  g.reduce_concat = {2, 4};
  REQUIRE(g.to_text().find("reduce_concat=[2, 4]") != std::string::npos);
  REQUIRE(Genotype::from_text(g.to_text()) == g);
}

TEST_CASE("genotype JSON round trip", "[nas][genotype]") {
  Genotype g = og_v2();
  const std::string j = g.to_json();
  REQUIRE(Genotype::from_json(j) == g);
  nlohmann::json doc = nlohmann::json::parse(j);
  REQUIRE(doc["normal"][2][1]["op"] == "conv_3x3");
  REQUIRE(doc["normal"][2][1]["input"] == 2);
  REQUIRE(doc["reduce_concat"] == nlohmann::json({2, 3, 4}));
  // [op, input] pairs are accepted too
  doc["normal"][0][0] = nlohmann::json::array({"dil_conv_3x3", 0});
  REQUIRE(Genotype::from_json(doc.dump()) == g);
  nlohmann::json wrapped = {{"genotype", g}};
  REQUIRE(wrapped["genotype"].get<Genotype>() == g);
}

TEST_CASE("malformed genotypes are rejected with the reason", "[nas][genotype]") {
  std::string t = kOgV2;
  REQUIRE_THROWS_WITH(Genotype::from_text(t.substr(0, t.size() - 1)), Catch::Contains("expected"));
  std::string bad_op = t;
  bad_op.replace(bad_op.find("conv_3x3', 2"), 8, "conv_9x9");
  REQUIRE_THROWS_WITH(Genotype::from_text(bad_op), Catch::Contains("unknown op 'conv_9x9'"));
  std::string bad_in = t;
  bad_in.replace(bad_in.find("('conv_3x3', 2)"), 15, "('conv_3x3', 4)");
  REQUIRE_THROWS_WITH(Genotype::from_text(bad_in), Catch::Contains("does not exist yet"));
  std::string missing = t;
  const std::string rc = ", reduce_concat=range(2, 5)";
  missing.replace(missing.find(rc), rc.size(), "");
  REQUIRE_THROWS_WITH(Genotype::from_text(missing), Catch::Contains("missing field 'reduce_concat'"));
  REQUIRE_THROWS_WITH(Genotype::from_text(t + " extra"), Catch::Contains("after the closing"));
  REQUIRE_THROWS_WITH(Genotype::from_json(R"({"normal": []})"), Catch::Contains("missing key"));
  REQUIRE_THROWS_WITH(Genotype::from_json(R"({"normal": [[{"op": "conv_3x3", "input": 0}]],
      "normal_concat": [2], "reduce": [[["conv_3x3", 1]]], "reduce_concat": [7]})"),
                      Catch::Contains("reduce_concat index 7"));
  REQUIRE_THROWS_AS(Genotype::from_json("{"), Error);
}

TEST_CASE("search network genotype: arg-max pair then arg-max op per input", "[nas][genotype]") {
  Rng rng(1);
  SearchConfig cfg;
  cfg.C = 4;
  cfg.layers = 2;
  cfg.nodes = 3;
  SearchNetwork net(cfg, rng);
  const std::vector<float> zeros7(7, 0.f);
  auto row = [](int best, float v) {
    std::vector<float> r(7, 0.f);
    r[static_cast<size_t>(best)] = v;
    return r;
  };
  auto concat = [](std::initializer_list<std::vector<float>> rows) {
    std::vector<float> out;
    for (const auto& r : rows) out.insert(out.end(), r.begin(), r.end());
    return out;
  };
  // normal: node0 pair (0,1); node1 pair (1,2) of {(0,1),(0,2),(1,2)};
  //         node2 pair (0,3) of {(0,1),(0,2),(0,3),(1,2),(1,3),(2,3)}
  set_param(net, net.alpha_index(CellType::Normal, 0), concat({row(6, 1.f), row(5, 2.f)}));
  set_param(net, net.alpha_index(CellType::Normal, 1), concat({row(0, 1.f), row(1, 1.f), row(3, 0.5f)}));
  set_param(net, net.alpha_index(CellType::Normal, 2),
            concat({row(2, 1.f), row(4, 1.f), row(4, 1.f), row(0, 3.f)}));
  set_param(net, net.pair_index(CellType::Normal, 0), {0.1f});
  set_param(net, net.pair_index(CellType::Normal, 1), {0.f, -1.f, 2.f});
  set_param(net, net.pair_index(CellType::Normal, 2), {0.f, 0.f, 1.f, 0.f, 0.f, 0.5f});
  // reduce: pruned logits never win
  set_param(net, net.alpha_index(CellType::Reduce, 0),
            concat({row(2, 0.3f), {kPrunedLogit, 0.1f, kPrunedLogit, 0.f, 0.f, 0.f, 0.f}}));
  set_param(net, net.alpha_index(CellType::Reduce, 1), concat({row(3, 1.f), row(4, 1.f), row(5, 1.f)}));
  set_param(net, net.alpha_index(CellType::Reduce, 2), concat({row(6, 1.f), row(6, 1.f), row(1, 1.f), row(0, 1.f)}));
  set_param(net, net.pair_index(CellType::Reduce, 0), {0.f});
  set_param(net, net.pair_index(CellType::Reduce, 1), {0.f, 3.f, 0.f});
  set_param(net, net.pair_index(CellType::Reduce, 2), {0.f, 0.f, 0.f, 0.f, 0.f, 9.f});

  using P = Primitive;
  Genotype expect;
  expect.normal = {{{P::DilConv3x3, 0}, {P::SepConv3x3, 1}},
                   {{P::AvgPool3x3, 1}, {P::Conv1x5_5x1, 2}},
                   {{P::SkipConnect, 0}, {P::MaxPool3x3, 3}}};
  expect.reduce = {{{P::SkipConnect, 0}, {P::AvgPool3x3, 1}},
                   {{P::Conv1x5_5x1, 0}, {P::SepConv3x3, 2}},
                   {{P::AvgPool3x3, 2}, {P::MaxPool3x3, 3}}};
  expect.normal_concat = expect.reduce_concat = {2, 3, 4};
  REQUIRE(net.genotype() == expect);
  REQUIRE(Genotype::from_text(net.genotype().to_text()) == expect);
  REQUIRE(Genotype::from_json(net.genotype().to_json()) == expect);
}

TEST_CASE("genotype DOT output and rendering", "[nas][genotype]") {
  Genotype g = og_v2();
  const std::string dot = g.to_dot();
  REQUIRE(dot.rfind("digraph genotype {", 0) == 0);
  REQUIRE(dot.find("subgraph cluster_normal") != std::string::npos);
  REQUIRE(dot.find("subgraph cluster_reduce") != std::string::npos);
  REQUIRE(dot.find("normal_in1 -> normal_n0 [label=\"sep_conv_3x3\"]") != std::string::npos);
  REQUIRE(dot.find("reduce_n0 -> reduce_n2 [label=\"conv_1x5_5x1\"]") != std::string::npos);
  REQUIRE(dot.find("normal_n2 -> normal_out") != std::string::npos);

  const std::string stem = std::string(METANAS_BINARY_DIR) + "/nas_genotype_render_test";
  RenderResult r = g.render(stem, {"svg"});
  std::ifstream in(r.dot_file);
  std::stringstream ss;
  ss << in.rdbuf();
  REQUIRE(ss.str() == dot);
  if (r.rendered) {
    REQUIRE(r.files == std::vector<std::string>{stem + ".svg"});
    std::ifstream svg(r.files[0]);
    std::string head((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
    REQUIRE(head.find("<svg") != std::string::npos);
    REQUIRE(head.find("dil_conv_3x3") != std::string::npos);
    std::remove(r.files[0].c_str());
  } else {
    REQUIRE(r.message.find("graphviz") != std::string::npos);
  }
  std::remove(r.dot_file.c_str());
  REQUIRE_THROWS_WITH(g.render(stem, {"svg; rm"}), Catch::Contains("invalid format"));
}
