// Search space: parameter counts (vs the independent PyTorch reference in
// shared/bench/metanas_torch.py), op output shapes and parameter counts,
// network shapes, determinism and configuration JSON.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/json.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

TEST_CASE("Omniglot 20-way search network has exactly 462272 weights", "[nas][search_space]") {
  SearchConfig cfg;  // defaults: in 1, C 28, 4 cells, 3 nodes, stem x3, 20 classes
  Rng rng(1);
  SearchNetwork net(cfg, rng);
  REQUIRE(net.weights().numel() == 462272);
  // 2 x (alphas (2+3+4) x 7 + pairs 1+3+6)
  REQUIRE(net.alphas()->numel() == 146);
  REQUIRE(net.alphas()->size() == 12);
  REQUIRE(cfg.resolved_reductions() == std::vector<int>{1, 3});
}

TEST_CASE("search network parameter counts match the PyTorch reference for other shapes",
          "[nas][search_space]") {
  // (in, C, classes, layers, nodes, stem) -> counts printed by metanas_torch.py's
  // MetaNASSearchNet(..., conv3x3="sep", cell_out="concat") with reductions {L/3, 2L/3}.
  struct Case {
    int in, C, classes, layers, nodes, stem;
    int64_t weights, arch;
  };
  for (const Case& k : {Case{3, 16, 5, 5, 4, 3, 306485, 236}, Case{3, 12, 5, 3, 3, 2, 70865, 146}}) {
    SearchConfig cfg;
    cfg.in_channels = k.in;
    cfg.C = k.C;
    cfg.num_classes = k.classes;
    cfg.layers = k.layers;
    cfg.nodes = k.nodes;
    cfg.stem_multiplier = k.stem;
    Rng rng(2);
    SearchNetwork net(cfg, rng);
    CHECK(net.weights().numel() == k.weights);
    CHECK(net.alphas()->numel() == k.arch);
  }
}

TEST_CASE("every op keeps the shape at stride 1 and halves it (ceil) at stride 2", "[nas][search_space]") {
  const int64_t C = 4;
  for (int64_t size : {28, 84}) {
    Tensor x = random_images(2, C, size, 7);
    for (Primitive p : all_primitives()) {
      for (int stride : {1, 2}) {
        for (bool affine : {false, true}) {
          Rng rng(3);
          PrimitiveOp op(p, C, stride, affine, rng);
          Tensor y = op.forward(x);
          INFO(primitive_name(p) << " stride " << stride << " size " << size << " affine " << affine);
          const int64_t o = (size + stride - 1) / stride;
          REQUIRE(y.shape() == Shape{2, C, o, o});
          bool finite = true;
          for (float v : y.to_vector()) finite = finite && std::isfinite(v);
          REQUIRE(finite);
        }
      }
    }
  }
}

TEST_CASE("ops have the parameters of their definition", "[nas][search_space]") {
  const int64_t C = 6;
  auto count = [&](Primitive p, int stride, bool affine) {
    Rng rng(0);
    return PrimitiveOp(p, C, stride, affine, rng).weights().numel();
  };
  const int64_t dwpw = C * 9 + C * C;  // depthwise 3x3 + pointwise 1x1
  const int64_t fr = 2 * C * (C / 2);   // two 1x1 convs C -> C/2
  REQUIRE(count(Primitive::MaxPool3x3, 1, false) == 0);
  REQUIRE(count(Primitive::AvgPool3x3, 2, true) == 2 * C);
  REQUIRE(count(Primitive::SkipConnect, 1, true) == 0);
  REQUIRE(count(Primitive::SkipConnect, 2, false) == fr);
  REQUIRE(count(Primitive::SkipConnect, 2, true) == fr + 2 * C);
  REQUIRE(count(Primitive::Conv1x5_5x1, 1, false) == 2 * 5 * C * C);
  REQUIRE(count(Primitive::Conv3x3, 2, false) == dwpw);
  REQUIRE(count(Primitive::SepConv3x3, 1, false) == 2 * dwpw);
  REQUIRE(count(Primitive::SepConv3x3, 1, true) == 2 * dwpw + 4 * C);
  REQUIRE(count(Primitive::DilConv3x3, 2, false) == dwpw);
}

TEST_CASE("skip_connect is the identity at stride 1 and a shifted factorized reduce at stride 2",
          "[nas][search_space]") {
  Rng rng(5);
  Tensor x = random_images(2, 4, 6, 11);
  PrimitiveOp id(Primitive::SkipConnect, 4, 1, false, rng);
  REQUIRE(id.forward(x).to_vector() == x.to_vector());

  // Naive double reference of ReLU -> [conv_a(x), conv_b(x[:, :, 1:, 1:])] (1x1,
  // stride 2) -> non-affine batch norm.
  PrimitiveOp fr(Primitive::SkipConnect, 4, 2, false, rng);
  std::vector<float> xv = x.to_vector();
  std::vector<float> wa = fr.weights()[0].to_vector(), wb = fr.weights()[1].to_vector();
  const int N = 2, C = 4, H = 6, O = 3, half = 2;
  std::vector<double> pre(static_cast<size_t>(N * C * O * O));
  for (int n = 0; n < N; ++n)
    for (int co = 0; co < C; ++co)
      for (int i = 0; i < O; ++i)
        for (int j = 0; j < O; ++j) {
          const bool second = co >= half;
          const int h = 2 * i + (second ? 1 : 0), w = 2 * j + (second ? 1 : 0);
          double s = 0;
          for (int ci = 0; ci < C; ++ci) {
            const double v = std::max(0.f, xv[static_cast<size_t>(((n * C + ci) * H + h) * H + w)]);
            s += v * (second ? wb : wa)[static_cast<size_t>((co % half) * C + ci)];
          }
          pre[static_cast<size_t>(((n * C + co) * O + i) * O + j)] = s;
        }
  std::vector<double> ref(pre.size());
  for (int c = 0; c < C; ++c) {
    double mean = 0, var = 0;
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < O * O; ++k) mean += pre[static_cast<size_t>((n * C + c) * O * O + k)];
    mean /= N * O * O;
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < O * O; ++k) {
        const double d = pre[static_cast<size_t>((n * C + c) * O * O + k)] - mean;
        var += d * d;
      }
    var /= N * O * O;
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < O * O; ++k) {
        const size_t idx = static_cast<size_t>((n * C + c) * O * O + k);
        ref[idx] = (pre[idx] - mean) / std::sqrt(var + 1e-5);
      }
  }
  std::vector<float> got = fr.forward(x).to_vector();
  REQUIRE(got.size() == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) REQUIRE(got[i] == Approx(ref[i]).margin(1e-4));
}

TEST_CASE("search network forward: logits shape for 28x28 and 84x84 inputs", "[nas][search_space]") {
  SearchConfig cfg = tiny_search_config();
  cfg.layers = 3;
  cfg.reduction_layers = {};  // {1, 2}
  for (int64_t size : {28, 84}) {
    for (int64_t in : {1, 3}) {
      cfg.in_channels = static_cast<int>(in);
      Rng rng(9);
      SearchNetwork net(cfg, rng);
      Tensor logits = net.forward(random_images(4, in, size, 1), ForwardContext{});
      REQUIRE(logits.shape() == Shape{4, 3});
      const ForwardStats& st = net.last_forward_stats();
      REQUIRE(st.ops_total == 3 * (2 + 3) * kNumPrimitives);
      REQUIRE(st.ops_computed == st.ops_total);  // softmax weights are never 0
      REQUIRE(st.pairs_total == 3 * (1 + 3));
    }
  }
}

TEST_CASE("construction is deterministic from the seed", "[nas][search_space]") {
  Rng a(42), b(42), c(43);
  SearchNetwork n1(tiny_search_config(), a), n2(tiny_search_config(), b), n3(tiny_search_config(), c);
  REQUIRE(n1.weights().values().to_vector() == n2.weights().values().to_vector());
  REQUIRE(n1.alphas()->values().to_vector() == n2.alphas()->values().to_vector());
  REQUIRE(n1.weights().values().to_vector() != n3.weights().values().to_vector());
  // alphas are 1e-3 * N(0, 1)
  for (float v : n1.alphas()->values().to_vector()) REQUIRE(std::fabs(v) < 1e-2f);
  // clone copies values into its own buffers
  auto cl = n1.clone();
  REQUIRE(cl->weights().values().to_vector() == n1.weights().values().to_vector());
  REQUIRE(cl->alphas()->values().to_vector() == n1.alphas()->values().to_vector());
  cl->weights().values().fill_(0.f);
  REQUIRE(n1.weights().values().to_vector() != cl->weights().values().to_vector());
}

TEST_CASE("architecture parameter layout", "[nas][search_space]") {
  Rng rng(1);
  SearchNetwork net(SearchConfig{}, rng);
  const ParamSet& a = *net.alphas();
  REQUIRE(a.name(net.alpha_index(CellType::Normal, 0)) == "alpha_normal.0");
  REQUIRE(a.shape(net.alpha_index(CellType::Reduce, 2)) == Shape{4, 7});
  REQUIRE(a.shape(net.pair_index(CellType::Normal, 2)) == Shape{6});
  auto pairs = SearchNetwork::input_pairs(4);
  REQUIRE(pairs.size() == 6);
  REQUIRE(pairs[0] == std::make_pair(0, 1));
  REQUIRE(pairs[2] == std::make_pair(0, 3));
  REQUIRE(pairs[3] == std::make_pair(1, 2));
  REQUIRE(pairs[5] == std::make_pair(2, 3));
  REQUIRE_THROWS_AS(net.alpha_index(CellType::Normal, 3), Error);
}

TEST_CASE("configurations round-trip through JSON and reject bad values", "[nas][search_space]") {
  SearchConfig c = tiny_search_config();
  REQUIRE(SearchConfig::from_json(c.to_json()) == c);
  nlohmann::json j = c;
  REQUIRE(j.at("C").get<int>() == 4);
  REQUIRE(j.get<SearchConfig>() == c);
  REQUIRE_THROWS_WITH(SearchConfig::from_json(R"({"C": 5})"), Catch::Contains("even"));
  REQUIRE_THROWS_WITH(SearchConfig::from_json(R"({"channels": 8})"), Catch::Contains("unknown key 'channels'"));
  REQUIRE_THROWS_WITH(SearchConfig::from_json(R"({"layers": "four"})"), Catch::Contains("layers"));
  REQUIRE_THROWS_WITH(SearchConfig::from_json("[1,2"), Catch::Contains("invalid JSON"));
  REQUIRE_THROWS_WITH(SearchConfig::from_json(R"({"reduction_layers": [4]})"),
                      Catch::Contains("reduction layer 4"));

  DiscreteConfig d;
  d.C = 16;
  d.channel_scale = 2;
  REQUIRE(DiscreteConfig::from_json(d.to_json()) == d);
  ConvNet4Config k;
  k.channels = 32;
  k.image_size = 84;
  REQUIRE(ConvNet4Config::from_json(k.to_json()) == k);
  REQUIRE_THROWS_WITH(ConvNet4Config::from_json(R"({"image_size": 8})"), Catch::Contains("too small"));
  DartsOptions o;
  o.second_order = true;
  o.a_weight_decay = 0.f;
  DartsOptions o2 = DartsOptions::from_json(o.to_json());
  REQUIRE(o2.second_order);
  REQUIRE(o2.a_weight_decay == 0.f);
  REQUIRE_THROWS_AS(DartsOptions::from_json(R"({"w_beta1": 1.5})"), Error);
}

TEST_CASE("bad inputs are reported with the expected shape", "[nas][search_space]") {
  Rng rng(1);
  SearchNetwork net(tiny_search_config(), rng);
  REQUIRE_THROWS_WITH(net.forward(random_images(2, 3, 8, 1), ForwardContext{}),
                      Catch::Contains("expected input [N, 1, H, W]"));
  ForwardContext ctx;
  ctx.drop_path_prob = 0.2f;  // no rng
  REQUIRE_THROWS_WITH(net.forward(random_images(2, 1, 8, 1), ctx), Catch::Contains("rng"));
  ctx = ForwardContext{};
  ctx.temperature = 0.f;
  REQUIRE_THROWS_WITH(net.forward(random_images(2, 1, 8, 1), ctx), Catch::Contains("temperature"));
  REQUIRE_THROWS_WITH(parse_primitive("sep_conv_7x7"), Catch::Contains("unknown op 'sep_conv_7x7'"));
}
