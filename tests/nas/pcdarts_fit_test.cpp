// PC-DARTS learns: a C = 8 search network with partial channels (K = 2) and
// edge normalization fits a small fixed batch of random images with random
// labels (memorisation, so the signal has to pass through the cells: a
// broken bypass, a lost gradient to the op weights, alphas or edge weights, or
// a wrong channel order after concat/shuffle would leave the loss near
// ln(classes)), as the plain MetaNAS network does; and with every op pruned
// the bypassed channels alone still carry the input to the logits.
#include <catch2/catch.hpp>

#include <cmath>

#include "metanas/engine/autograd.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/nas.h"
#include "tests/nas/fixtures.h"

using namespace metanas;
using namespace metanas::nas;
using namespace metanas::testing;

namespace {

constexpr int kClasses = 6;

SearchConfig fit_config(int K) {
  SearchConfig c = tiny_search_config();
  c.C = 8;
  c.num_classes = kClasses;
  c.partial_channels = K;
  c.edge_normalization = K > 1;
  return c;
}

// 2 random 8x8 images per class, N(0, 1), labels i % classes.
Batch random_batch() {
  std::vector<int32_t> y;
  for (int i = 0; i < 2 * kClasses; ++i) y.push_back(i % kClasses);
  return {random_images(2 * kClasses, 1, 8, 77), Tensor::from_ints(y, Shape{2 * kClasses})};
}

float loss_of(Model& m, const Batch& b) {
  NoGradGuard ng;
  return m.loss(b, ForwardContext{}).item();
}

double max_change(const std::vector<float>& a, const std::vector<float>& b, int64_t off, int64_t n) {
  double m = 0;
  for (int64_t i = off; i < off + n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

}  // namespace

TEST_CASE("PC-DARTS (K = 2, edge normalization) fits a fixed batch as the plain network does",
          "[nas][regularizers][pcdarts]") {
  const Batch b = random_batch();
  for (int K : {1, 2}) {
    Rng rng(21);
    SearchNetwork net(fit_config(K), rng);
    DartsOptions o;
    o.w_lr = 0.01f;
    o.a_lr = 0.01f;
    DartsTaskOptimizer darts(net, o);
    const std::vector<float> w0 = net.weights().values().to_vector(), a0 = net.alphas()->values().to_vector();
    const float before = loss_of(net, b);
    ForwardContext ctx;  // soft pruning at the default threshold, as in a task
    for (int s = 0; s < 150; ++s) darts.step(b, b, ctx);
    const float after = loss_of(net, b);
    INFO("K " << K << ": loss " << before << " -> " << after);
    REQUIRE(before > 0.8f * std::log(static_cast<float>(kClasses)));
    REQUIRE(after < 0.1f * before);
    // Every cell's op weights, each cell type's alphas and (K = 2) edge weights moved.
    const std::vector<float> w1 = net.weights().values().to_vector(), a1 = net.alphas()->values().to_vector();
    for (const char* name : {"cell0.node1.in2.sep_conv_3x3.dw1", "cell1.node1.in0.sep_conv_3x3.dw1"}) {
      const int idx = net.weights().index_of(name);
      REQUIRE(max_change(w0, w1, net.weights().offset(idx), net.weights().shape(idx).numel()) > 1e-3);
    }
    for (CellType t : {CellType::Normal, CellType::Reduce}) {
      const ParamSet& A = *net.alphas();
      REQUIRE(max_change(a0, a1, A.offset(net.alpha_index(t, 1)), A.shape(net.alpha_index(t, 1)).numel()) > 1e-2);
      if (K > 1) REQUIRE(max_change(a0, a1, A.offset(net.edge_index(t, 1)), A.shape(net.edge_index(t, 1)).numel()) > 1e-2);
    }
  }
}

TEST_CASE("PC-DARTS: with every op pruned the bypassed channels still carry the input", "[nas][regularizers][pcdarts]") {
  for (int K : {1, 2}) {
    Rng rng(22);
    SearchNetwork net(fit_config(K), rng);
    ParamSet& A = *net.alphas();
    std::vector<float> a = A.values().to_vector();
    for (CellType t : {CellType::Normal, CellType::Reduce})
      for (int i = 0; i < 2; ++i) {
        const int idx = net.alpha_index(t, i);
        for (int64_t e = 0; e < A.shape(idx).numel(); ++e) a[A.offset(idx) + e] = kPrunedLogit;
      }
    A.values().copy_(Tensor::from_vector(a, A.values().shape()));
    NoGradGuard ng;
    const std::vector<float> y0 = net.forward(random_images(1, 1, 8, 5), ForwardContext{}).to_vector();
    const std::vector<float> y1 = net.forward(random_images(1, 1, 8, 6), ForwardContext{}).to_vector();
    double d = 0;
    for (size_t i = 0; i < y0.size(); ++i) d = std::max(d, std::fabs(static_cast<double>(y0[i]) - y1[i]));
    INFO("K " << K << ": logit change between two inputs " << d);
    // K = 1: nothing is computed, every node is 0 and the logits are the
    // classifier bias alone (up to rounding); K = 2: half the channels bypass the pruned ops.
    if (K == 1) REQUIRE(d < 1e-6);
    else REQUIRE(d > 1e-3);
  }
}
