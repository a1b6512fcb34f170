// The T-NAS search-network options (SearchConfig::node_inputs "all",
// channel_scale, stem "pooled", reduce_pad_odd; T-NAS learner.py and
// operations.py): parameter counts against counts written out from T-NAS's
// module definitions, the node sum over every input, the DARTS genotype
// parse on softmax weights, and the padded factorized reduce against a
// hand computation.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/error.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

namespace {

// T-NAS's search network for 5-way Omniglot (train_tnas.sh: --layers 2, C 16).
SearchConfig tnas_config(int in_channels) {
  SearchConfig c;
  c.in_channels = in_channels;
  c.image_size = 28;
  c.num_classes = 5;
  c.C = 16;
  c.layers = 2;
  c.nodes = 4;
  c.stem_multiplier = 3;
  c.space = "darts";
  c.node_inputs = "all";
  c.channel_scale = 2;
  c.stem = "pooled";
  c.reduce_pad_odd = true;
  c.reduction_layers = {1};
  return c;
}

// A small all-inputs network: 2 cells (cell 1 reduces), C 4, 3 nodes.
SearchConfig small_all_config() {
  SearchConfig c = tiny_search_config();
  c.nodes = 3;
  c.space = "darts";
  c.node_inputs = "all";
  return c;
}

int op_column(Primitive p) {
  const auto& ops = space_primitives(SearchSpace::Darts);
  for (size_t k = 0; k < ops.size(); ++k)
    if (ops[k] == p) return static_cast<int>(k);
  return -1;
}

// Sets every row of alpha_<type>.<node> to -1e9 except column `keep` (0):
// softmax weight exactly 1 on that op, 0 (never computed) elsewhere.
void one_hot_alphas(SearchNetwork& net, CellType type, Primitive keep) {
  for (int i = 0; i < net.config().nodes; ++i) {
    Tensor& a = (*net.alphas())[net.alpha_index(type, i)];
    std::vector<float> v(static_cast<size_t>(a.numel()), -1e9f);
    for (int64_t j = 0; j < a.dim(0); ++j) v[static_cast<size_t>(j * a.dim(1) + op_column(keep))] = 0.f;
    a.copy_(Tensor::from_vector(v, a.shape()));
  }
}

}  // namespace

TEST_CASE("T-NAS supernet: parameter count written out from learner.py / operations.py", "[nas][tnas_cell]") {
  // Per MixedOp on C channels (affine-free BN, pools/none/identity have none):
  //   sep_conv_3x3 2 (9C + C^2), sep_conv_5x5 2 (25C + C^2), dil_conv_3x3 9C + C^2,
  //   dil_conv_5x5 25C + C^2; a stride-2 edge adds skip_connect's factorized reduce 2 (C/2) C.
  auto mixed = [](int64_t C) { return 2 * (9 * C + C * C) + 2 * (25 * C + C * C) + (9 * C + C * C) + (25 * C + C * C); };
  for (int in : {1, 3}) {
    // stem0: conv3x3 in -> 24, BN(24) affine, pool, ReLU, conv3x3 24 -> 48, BN(48) affine, pool.
    const int64_t stem = 24 * in * 9 + 2 * 24 + 48 * 24 * 9 + 2 * 48;
    // cell 0 (normal, C 16): preprocess0/1 ReLUConvBN 48 -> 16 (BN affine=False); 14 mixed ops.
    const int64_t cell0 = 48 * 16 + 48 * 16 + 14 * mixed(16);
    // cell 1 (reduction, C 32): preprocess0 48 -> 32 (reduction_prev False), preprocess1 64 -> 32;
    // 14 mixed ops, 8 of them strided (inputs 0 and 1 of the 4 nodes).
    const int64_t cell1 = 48 * 32 + 64 * 32 + 14 * mixed(32) + 8 * (2 * 16 * 32);
    // classifier_meta_nas: Linear(4 * 32 -> 5).
    const int64_t head = 128 * 5 + 5;
    Rng rng(3);
    SearchNetwork net(tnas_config(in), rng);
    INFO("in_channels " << in);
    CHECK(net.weights().numel() == stem + cell0 + cell1 + head);
    CHECK(net.weights().numel() == (in == 1 ? 200749 : 201181));
    // alphas_normal and alphas_reduce: 14 x 8 each, no pair weights.
    CHECK(net.alphas()->numel() == 2 * 14 * 8);
    for (int i = 0; i < net.alphas()->size(); ++i) CHECK(net.alphas()->name(i).rfind("alpha_", 0) == 0);
    CHECK_THROWS_WITH(net.pair_index(CellType::Normal, 0), Catch::Contains("no pair weights"));
  }
}

TEST_CASE("T-NAS supernet: pooled stem, doubled channels at the reduction, 5 logits", "[nas][tnas_cell]") {
  Rng rng(4);
  SearchNetwork net(tnas_config(1), rng);
  Tensor x = random_images(3, 1, 28, 5);
  ForwardContext ctx;
  // 28 -> 14 -> 7 in the stem; cell 0 keeps 7x7 at C 16, cell 1 reduces to 4x4 at C 32.
  std::vector<Tensor> s0 = net.cell_states(x, ctx, 0);
  REQUIRE(s0.size() == 6);
  for (const Tensor& s : s0) CHECK(s.shape() == Shape{3, 16, 7, 7});
  std::vector<Tensor> s1 = net.cell_states(x, ctx, 1);
  CHECK(s1[0].shape() == Shape{3, 32, 7, 7});
  for (size_t j = 2; j < s1.size(); ++j) CHECK(s1[j].shape() == Shape{3, 32, 4, 4});
  CHECK(net.forward(x, ctx).shape() == Shape{3, 5});
}

TEST_CASE("node_inputs all: a node is the sum of every input's mixed op (no pair weights)", "[nas][tnas_cell]") {
  for (const char* mode : {"all", "pairs"}) {
    SearchConfig c = small_all_config();
    c.node_inputs = mode;
    Rng rng(6);
    SearchNetwork net(c, rng);
    one_hot_alphas(net, CellType::Normal, Primitive::SkipConnect);  // every edge the identity
    if (std::string(mode) == "pairs")
      for (int i = 0; i < 3; ++i) {  // equal pair weights
        Tensor& p = (*net.alphas())[net.pair_index(CellType::Normal, i)];
        p.copy_(Tensor::zeros(p.shape()));
      }
    Tensor x = random_images(2, 1, 8, 7);
    for (bool device_plan : {false, true}) {
      ForwardContext ctx;
      ctx.plan_epoch = device_plan ? 1 : 0;
      std::vector<Tensor> st = net.cell_states(x, ctx, 0);
      REQUIRE(st.size() == 5);
      double worst = 0, worst_half = 0;
      for (int i = 0; i < 3; ++i) {
        std::vector<float> sum(static_cast<size_t>(st[0].numel()), 0.f);
        for (int j = 0; j < i + 2; ++j) {
          const std::vector<float> h = st[static_cast<size_t>(j)].to_vector();
          for (size_t e = 0; e < sum.size(); ++e) sum[e] += h[e];
        }
        const std::vector<float> node = st[static_cast<size_t>(i + 2)].to_vector();
        // Pair weights, all equal: node i = (i + 1) / C(i + 2, 2) of that sum.
        const double pair_scale = (i + 1.0) / ((i + 2.0) * (i + 1.0) / 2.0);
        for (size_t e = 0; e < sum.size(); ++e) {
          worst = std::max(worst, std::abs(static_cast<double>(node[e]) - sum[e]));
          worst_half = std::max(worst_half, std::abs(static_cast<double>(node[e]) - pair_scale * sum[e]));
        }
      }
      INFO(mode << ", device plan " << device_plan);
      if (std::string(mode) == "all") {
        CHECK(worst < 1e-4);
      } else {
        CHECK(worst > 0.1);  // the test can tell the two forms apart
        CHECK(worst_half < 1e-4);
      }
    }
  }
}

TEST_CASE("node_inputs all: the genotype keeps the two strongest non-none edges by softmax weight (T-NAS _parse)",
          "[nas][tnas_cell]") {
  Rng rng(8);
  SearchNetwork net(small_all_config(), rng);
  // Node 2 (inputs 0..3), columns none, max, avg, skip, sep3, sep5, dil3, dil5:
  //   row 0: none 5, others 0          -> strongest non-none weight 1 / (e^5 + 7)     ~ 0.006
  //   row 1: sep_conv_3x3 2, others 1.9 -> e^2 / (e^2 + 7 e^1.9)                      ~ 0.136
  //   row 2: skip_connect 1, others 0   -> e / (e + 7)                                ~ 0.280
  //   row 3: dil_conv_5x5 3, others 0   -> e^3 / (e^3 + 7)                            ~ 0.742
  // By raw logits row 1 (2.0) would beat row 2 (1.0): the parse must use softmax weights.
  std::vector<float> a(4 * 8, 0.f);
  a[0 * 8 + 0] = 5.f;
  for (int k = 0; k < 8; ++k) a[static_cast<size_t>(1 * 8 + k)] = 1.9f;
  a[1 * 8 + 4] = 2.f;
  a[2 * 8 + 3] = 1.f;
  a[3 * 8 + 7] = 3.f;
  Tensor& t = (*net.alphas())[net.alpha_index(CellType::Normal, 2)];
  t.copy_(Tensor::from_vector(a, t.shape()));
  const Genotype g = net.genotype();
  REQUIRE(g.normal.size() == 3);
  CHECK(g.normal[2] == GenotypeNode{{Primitive::DilConv5x5, 3}, {Primitive::SkipConnect, 2}});
  CHECK(g.normal_concat == std::vector<int>{2, 3, 4});
  for (const auto& node : g.reduce)
    for (const GenotypeEdge& e : node) CHECK(e.op != Primitive::None);
}

TEST_CASE("reduce_pad_odd: the strided skip on an odd size is T-NAS's padded factorized reduce", "[nas][tnas_cell]") {
  for (bool pad : {true, false}) {
    SearchConfig c = small_all_config();
    c.image_size = 7;
    c.reduce_pad_odd = pad;
    Rng rng(9);
    SearchNetwork net(c, rng);
    // Reduction cell, node 0: input 0 `none`, input 1 skip_connect (stride 2).
    Tensor& a0 = (*net.alphas())[net.alpha_index(CellType::Reduce, 0)];
    std::vector<float> v(16, -1e9f);
    v[static_cast<size_t>(op_column(Primitive::None))] = 0.f;
    v[static_cast<size_t>(8 + op_column(Primitive::SkipConnect))] = 0.f;
    a0.copy_(Tensor::from_vector(v, a0.shape()));
    Tensor x = random_images(2, 1, 7, 10);
    ForwardContext ctx;
    std::vector<Tensor> st = net.cell_states(x, ctx, 1);
    const Tensor& h = st[1];  // preprocessed input 1: [2, 4, 7, 7]
    REQUIRE(h.shape() == Shape{2, 4, 7, 7});
    REQUIRE(st[2].shape() == Shape{2, 4, 4, 4});
    const std::vector<float> hv = h.to_vector(), out = st[2].to_vector();
    const std::string n = "cell1.node0.in1.skip_connect";
    const std::vector<float> wa = net.weights()[net.weights().index_of(n + ".conv_a")].to_vector();
    const std::vector<float> wb = net.weights()[net.weights().index_of(n + ".conv_b")].to_vector();
    auto px = [&](int b, int ch, int y, int xx) -> double {
      if (y < 0 || xx < 0 || y > 6 || xx > 6) return 0.0;
      return std::max(0.f, hv[static_cast<size_t>(((b * 4 + ch) * 7 + y) * 7 + xx)]);
    };
    // T-NAS: conv_1 on F.pad(x, (1, 0, 1, 0)) reads pixel 2i - 1, conv_2 on x reads 2i;
    // without the padding both read 2i. Then BN (batch statistics, no affine).
    const int shift = pad ? 1 : 0;
    std::vector<double> ref(static_cast<size_t>(2 * 4 * 16));
    for (int b = 0; b < 2; ++b)
      for (int o = 0; o < 4; ++o)
        for (int y = 0; y < 4; ++y)
          for (int xx = 0; xx < 4; ++xx) {
            double s = 0;
            for (int ch = 0; ch < 4; ++ch) {
              const bool first = o < 2;
              const double w = first ? wa[static_cast<size_t>(o * 4 + ch)] : wb[static_cast<size_t>((o - 2) * 4 + ch)];
              s += w * (first ? px(b, ch, 2 * y - shift, 2 * xx - shift) : px(b, ch, 2 * y, 2 * xx));
            }
            ref[static_cast<size_t>(((b * 4 + o) * 4 + y) * 4 + xx)] = s;
          }
    double worst = 0;
    for (int o = 0; o < 4; ++o) {
      double mean = 0, var = 0;
      for (int b = 0; b < 2; ++b)
        for (int e = 0; e < 16; ++e) mean += ref[static_cast<size_t>((b * 4 + o) * 16 + e)] / 32.0;
      for (int b = 0; b < 2; ++b)
        for (int e = 0; e < 16; ++e) var += std::pow(ref[static_cast<size_t>((b * 4 + o) * 16 + e)] - mean, 2) / 32.0;
      for (int b = 0; b < 2; ++b)
        for (int e = 0; e < 16; ++e) {
          const size_t i = static_cast<size_t>((b * 4 + o) * 16 + e);
          worst = std::max(worst, std::abs((ref[i] - mean) / std::sqrt(var + 1e-5) - out[i]));
        }
    }
    INFO("pad_odd " << pad);
    CHECK(worst < 1e-3);
  }
}

TEST_CASE("T-NAS cell options validate and round-trip", "[nas][tnas_cell][config]") {
  SearchConfig c = tnas_config(1);
  CHECK(SearchConfig::from_json(c.to_json()) == c);
  SearchConfig bad = c;
  bad.node_inputs = "some";
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("node_inputs 'some'"));
  bad = c;
  bad.stem = "deep";
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("unknown stem 'deep'"));
  bad = c;
  bad.channel_scale = 0;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("channel_scale"));
  bad = c;
  bad.edge_normalization = true;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("node_inputs 'pairs'"));
  DiscreteConfig d;
  d.stem = "pooled";
  d.reduce_pad_odd = true;
  d.pool_bn = false;
  CHECK(DiscreteConfig::from_json(d.to_json()) == d);
}

TEST_CASE("DiscreteNetwork with the pooled stem and doubled channels: parameter count by hand", "[nas][tnas_cell]") {
  DiscreteConfig d;
  d.in_channels = 1;
  d.image_size = 16;
  d.num_classes = 3;
  d.C = 4;
  d.layers = 2;
  d.stem_multiplier = 3;
  d.channel_scale = 2;
  d.stem = "pooled";
  d.reduce_pad_odd = true;
  d.reduction_layers = {1};
  const Genotype g = Genotype::from_text(
      "Genotype(normal=[[('skip_connect', 0), ('avg_pool_3x3', 1)], [('skip_connect', 0), ('avg_pool_3x3', 1)]], "
      "normal_concat=range(2, 4), reduce=[[('skip_connect', 0), ('avg_pool_3x3', 1)], [('skip_connect', 0), "
      "('avg_pool_3x3', 1)]], reduce_concat=range(2, 4))");
  // stem: conv 1 -> 6, BN(6), conv 6 -> 12, BN(12) (affine)         = 54 + 12 + 648 + 24
  // cell 0 (C 4): ReLUConvBN 12 -> 4 twice (affine), 2 pools' BN(4)  = 2 (48 + 8) + 2 * 8
  // cell 1 (C 8): ReLUConvBN 12 -> 8, 8 -> 8, 2 strided skips (FR 8 -> 8 + BN), 2 pools' BN(8)
  //                                                                   = (96 + 16) + (64 + 16) + 2 (64 + 16) + 2 * 16
  // classifier 2 * 8 -> 3                                             = 48 + 3
  const int64_t expect = (54 + 12 + 648 + 24) + (2 * (48 + 8) + 2 * 8) + ((96 + 16) + (64 + 16) + 2 * (64 + 16) + 2 * 16) +
                         (48 + 3);
  Rng rng(12);
  DiscreteNetwork net(d, g, rng);
  CHECK(net.weights().numel() == expect);
  ForwardContext ctx;
  CHECK(net.forward(random_images(2, 1, 16, 13), ctx).shape() == Shape{2, 3});
  // pool_bn false (T-NAS model.py): the four pools lose their affine BN, 2 * 8 + 2 * 16 weights.
  d.pool_bn = false;
  Rng rng2(12);
  DiscreteNetwork bare(d, g, rng2);
  CHECK(bare.weights().numel() == expect - (2 * 8 + 2 * 16));
  CHECK(bare.forward(random_images(2, 1, 16, 13), ctx).shape() == Shape{2, 3});
}
