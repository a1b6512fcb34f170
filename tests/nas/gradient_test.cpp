// Central finite-difference checks of the search network's gradients with
// respect to alphas, pair weights and weights, on a tiny network, for each
// normalizer and with soft pruning active; and of the discrete networks.
//
// The networks contain ReLUs and max pools, so the probe is only piecewise
// smooth: a perturbation that moves a pre-activation across 0 (or changes a
// pool's arg-max) bends the difference quotient. Two measures are used:
//  - every element, with the error relative to the largest gradient, taking
//    for each element the closer of the quotients at eps and eps / 4 (a kink
//    rarely bends both; a wrong gradient still matches neither);
//  - the parameters whose every path to the logits is smooth (the last node
//    of the last cell: mixing -> concat -> average pool -> linear), with the
//    error relative to each element itself.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "metanas/engine/autograd.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

namespace {

struct FdCheck {
  double worst = 0;      // |analytic - numeric| / max(|numeric|, 0.05 max |numeric|) over `strict`
  double worst_max = 0;  // |analytic - numeric| / max |numeric| over all checked elements
  std::string message;
  int checked = 0;
};

// Compares d/dp sum(R * model(x)) for the parameters of `ps` (every
// `stride`-th element) with central differences of the probe in double.
FdCheck fd_check(Model& model, ParamSet& ps, const Tensor& x, const ForwardContext& ctx, int stride,
                 double eps, const std::vector<int>& strict = {}) {
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = model.forward(x, ctx);
  }
  Rng rr(77);
  std::vector<double> R(static_cast<size_t>(y0.numel()));
  for (auto& r : R) r = 2.0 * rr.uniform_double() - 1.0;
  auto probe = [&]() {
    NoGradGuard ng;
    std::vector<float> y = model.forward(x, ctx).to_vector();
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += R[i] * y[i];
    return s;
  };
  model.weights().zero_grad();
  if (model.alphas()) model.alphas()->zero_grad();
  Tensor y = model.forward(x, ctx);
  std::vector<float> rf(R.begin(), R.end());
  y.backward(Tensor::from_vector(rf, y.shape()));
  const std::vector<float> ana = ps.grads().to_vector();

  std::vector<float> base = ps.values().to_vector();
  std::vector<int64_t> idx;
  std::vector<double> num;
  auto quotient = [&](int64_t i, double e) {
    std::vector<float> v = base;
    v[static_cast<size_t>(i)] = static_cast<float>(base[static_cast<size_t>(i)] + e);
    ps.values().copy_(Tensor::from_vector(v, Shape{ps.numel()}));
    const double lp = probe();
    const double hp = v[static_cast<size_t>(i)];
    v[static_cast<size_t>(i)] = static_cast<float>(base[static_cast<size_t>(i)] - e);
    ps.values().copy_(Tensor::from_vector(v, Shape{ps.numel()}));
    const double lm = probe();
    return (lp - lm) / (hp - static_cast<double>(v[static_cast<size_t>(i)]));
  };
  for (int64_t i = 0; i < ps.numel(); i += stride) {
    const double a = ana[static_cast<size_t>(i)];
    const double q1 = quotient(i, eps), q2 = quotient(i, eps / 4);
    idx.push_back(i);
    num.push_back(std::fabs(q1 - a) <= std::fabs(q2 - a) ? q1 : q2);
  }
  ps.values().copy_(Tensor::from_vector(base, Shape{ps.numel()}));
  double maxabs = 0;
  for (double v : num) maxabs = std::max(maxabs, std::fabs(v));
  const double floor = std::max(0.05 * maxabs, 1e-6);
  FdCheck r;
  r.checked = static_cast<int>(idx.size());
  std::ostringstream os, om;
  for (size_t k = 0; k < idx.size(); ++k) {
    const double a = ana[static_cast<size_t>(idx[k])];
    const double em = std::fabs(a - num[k]) / std::max(maxabs, 1e-6);
    if (em > r.worst_max) {
      r.worst_max = em;
      om.str("");
      om << "largest error at " << idx[k] << " (" << ps.numel() << " params): analytic " << a << " numeric "
         << num[k] << " (max |numeric| " << maxabs << "); ";
    }
    bool is_strict = false;
    for (int p : strict)
      is_strict = is_strict || (idx[k] >= ps.offset(p) && idx[k] < ps.offset(p) + ps.shape(p).numel());
    if (!is_strict) continue;
    const double err = std::fabs(a - num[k]) / std::max(std::fabs(num[k]), floor);
    if (err > r.worst) {
      r.worst = err;
      os.str("");
      os << "worst smooth-path element " << idx[k] << ": analytic " << a << " numeric " << num[k];
    }
  }
  r.message = om.str() + os.str();
  return r;
}

void randomize(ParamSet& ps, float stddev, uint64_t seed) {
  Rng r(seed);
  ps.values().copy_(Tensor::randn(Shape{ps.numel()}, r, stddev));
}

}  // namespace

TEST_CASE("search network: alpha and pair-weight gradients match finite differences (softmax)",
          "[nas][gradient]") {
  Rng rng(11);
  SearchNetwork net(tiny_search_config(), rng);
  randomize(*net.alphas(), 0.7f, 12);
  Rng xr(13);
  Tensor x = Tensor::randn(Shape{4, 1, 8, 8}, xr);
  ForwardContext ctx;
  ctx.temperature = 0.6f;
  ctx.prune_threshold = -1.f;
  FdCheck r = fd_check(net, *net.alphas(), x, ctx, 1, 1e-3,
                       {net.alpha_index(CellType::Reduce, 1), net.pair_index(CellType::Reduce, 1)});
  INFO(r.message);
  REQUIRE(r.checked == 78);
  REQUIRE(r.worst_max < 2e-2);
  REQUIRE(r.worst < 1e-2);
}

TEST_CASE("search network: alpha gradients with relu-softmax and with soft pruning", "[nas][gradient]") {
  Rng rng(21);
  SearchNetwork net(tiny_search_config(), rng);
  // Logits away from 0 so relu's kink is not crossed by the perturbation.
  {
    Rng r(22);
    std::vector<float> v(static_cast<size_t>(net.alphas()->numel()));
    for (auto& a : v) a = (r.uniform() < 0.5f ? -1.f : 1.f) * (0.2f + r.uniform());
    net.alphas()->values().copy_(Tensor::from_vector(v, Shape{net.alphas()->numel()}));
  }
  Rng xr(23);
  Tensor x = Tensor::randn(Shape{4, 1, 8, 8}, xr);
  SECTION("relu-softmax, lambda 0.5") {
    ForwardContext ctx;
    ctx.normalizer = Normalizer::ReluSoftmax;
    ctx.anneal_progress = 0.5f;
    FdCheck r = fd_check(net, *net.alphas(), x, ctx, 1, 1e-3,
                         {net.alpha_index(CellType::Reduce, 1), net.pair_index(CellType::Reduce, 1)});
    INFO(r.message);
    REQUIRE(r.worst_max < 2e-2);
    REQUIRE(r.worst < 1e-2);
  }
  SECTION("softmax with meta-pruned ops and a pruning threshold") {
    ParamSet& a = *net.alphas();
    std::vector<float> v = a.values().to_vector();
    for (CellType t : {CellType::Normal, CellType::Reduce})
      for (int node = 0; node < 2; ++node)
        for (int64_t e = 1; e < (node + 2) * kNumPrimitives; e += 4)
          v[static_cast<size_t>(a.offset(net.alpha_index(t, node)) + e)] = kPrunedLogit;
    a.values().copy_(Tensor::from_vector(v, Shape{a.numel()}));
    ForwardContext ctx;
    ctx.prune_threshold = 1e-3f;
    net.forward(x, ctx);
    REQUIRE(net.last_forward_stats().ops_computed < net.last_forward_stats().ops_total);
    FdCheck r = fd_check(net, a, x, ctx, 1, 1e-3,
                         {net.alpha_index(CellType::Reduce, 1), net.pair_index(CellType::Reduce, 1)});
    INFO(r.message);
    REQUIRE(r.worst_max < 2e-2);
    REQUIRE(r.worst < 1e-2);
  }
}

TEST_CASE("search network: weight gradients match finite differences", "[nas][gradient]") {
  Rng rng(31);
  SearchNetwork net(tiny_search_config(), rng);
  randomize(*net.alphas(), 0.5f, 32);
  Rng xr(33);
  Tensor x = Tensor::randn(Shape{4, 1, 8, 8}, xr);
  ForwardContext ctx;
  ParamSet& w = net.weights();
  FdCheck r = fd_check(net, w, x, ctx, 29, 1e-3,
                       {w.index_of("classifier.weight"), w.index_of("classifier.bias")});
  INFO(r.message);
  REQUIRE(r.checked > 100);
  REQUIRE(r.worst_max < 5e-2);
  REQUIRE(r.worst < 1e-2);
}

TEST_CASE("discrete network and ConvNet4: weight gradients match finite differences", "[nas][gradient]") {
  Genotype g = Genotype::from_text(
      "Genotype(normal=[[('sep_conv_3x3', 0), ('skip_connect', 1)], [('avg_pool_3x3', 0), "
      "('conv_1x5_5x1', 2)]], normal_concat=range(2, 4), reduce=[[('max_pool_3x3', 0), "
      "('skip_connect', 1)], [('dil_conv_3x3', 2), ('conv_3x3', 1)]], reduce_concat=range(2, 4))");
  DiscreteConfig dc;
  dc.C = 4;
  dc.layers = 3;
  dc.num_classes = 3;
  dc.stem_multiplier = 1;
  dc.channel_scale = 2;
  Rng rng(41);
  DiscreteNetwork net(dc, g, rng);
  Rng xr(42);
  Tensor x = Tensor::randn(Shape{4, 1, 8, 8}, xr);
  FdCheck r = fd_check(net, net.weights(), x, ForwardContext{}, 17, 1e-3);
  INFO(r.message);
  REQUIRE(r.worst_max < 3e-2);

  ConvNet4 cnn(tiny_convnet4_config(), rng);
  Tensor x16 = Tensor::randn(Shape{4, 1, 16, 16}, xr);
  FdCheck r2 = fd_check(cnn, cnn.weights(), x16, ForwardContext{}, 3, 1e-3);
  INFO(r2.message);
  REQUIRE(r2.worst_max < 3e-2);
}
