// The search network against the independent PyTorch implementation
// (shared/bench/metanas_torch.py): logits, loss and the gradients of every
// weight tensor and of the architecture parameters, for a small network with
// both kinds of factorized reduce (data/make_search_reference.py).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "metanas/engine/ops.h"
#include "metanas/nas/nas.h"

using namespace metanas;
using namespace metanas::nas;

namespace {

// The closed-form values of make_search_reference.py, rounded to float32.
float weight_value(int64_t i) { return static_cast<float>(0.3 * std::sin(0.37 * static_cast<double>(i) + 0.5)); }
float arch_value(int64_t i) { return static_cast<float>(0.8 * std::sin(0.53 * static_cast<double>(i) + 1.1)); }
float input_value(int64_t i) {
  const double d = static_cast<double>(i);
  return static_cast<float>(std::sin(0.11 * d) + 0.5 * std::cos(0.029 * d * d));
}

void fill(ParamSet& ps, float (*fn)(int64_t)) {
  std::vector<float> v(static_cast<size_t>(ps.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = fn(static_cast<int64_t>(i));
  ps.values().copy_(Tensor::from_vector(v, Shape{ps.numel()}));
}

nlohmann::json load_reference() {
  const std::string path = std::string(METANAS_SOURCE_DIR) + "/tests/nas/data/search_reference.json";
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("search network matches the PyTorch MetaNAS reference in logits and loss and gradients",
          "[nas][reference]") {
  const nlohmann::json ref = load_reference();
  SearchConfig cfg = SearchConfig::from_json(ref.at("config").dump());
  Rng rng(0);
  SearchNetwork net(cfg, rng);
  ParamSet& W = net.weights();
  ParamSet& A = *net.alphas();

  // Same tensors in the same order (named_parameters order == ParamSet order).
  const auto& wref = ref.at("weights");
  REQUIRE(static_cast<int>(wref.size()) == W.size());
  for (int i = 0; i < W.size(); ++i) {
    INFO(W.name(i));
    REQUIRE(W.shape(i).dims() == wref[static_cast<size_t>(i)].at("shape").get<std::vector<int64_t>>());
  }
  const auto& ashapes = ref.at("arch_shapes");
  REQUIRE(static_cast<int>(ashapes.size()) == A.size());
  for (int i = 0; i < A.size(); ++i)
    REQUIRE(A.shape(i).dims() == ashapes[static_cast<size_t>(i)].get<std::vector<int64_t>>());

  fill(W, weight_value);
  fill(A, arch_value);
  const auto xs = ref.at("x_shape").get<std::vector<int64_t>>();
  Shape xshape(xs);
  std::vector<float> xv(static_cast<size_t>(xshape.numel()));
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = input_value(static_cast<int64_t>(i));
  Batch b{Tensor::from_vector(xv, xshape), Tensor::from_ints(ref.at("y").get<std::vector<int32_t>>(),
                                                               Shape{static_cast<int64_t>(xs[0])})};
  ForwardContext ctx;
  ctx.temperature = ref.at("temperature").get<float>();

  W.zero_grad();
  A.zero_grad();
  Tensor logits = net.forward(b.x, ctx);
  Tensor loss = cross_entropy(logits, b.y);
  loss.backward();

  const auto want_logits = ref.at("logits").get<std::vector<double>>();
  const std::vector<float> got_logits = logits.to_vector();
  REQUIRE(got_logits.size() == want_logits.size());
  for (size_t i = 0; i < want_logits.size(); ++i) CHECK(got_logits[i] == Approx(want_logits[i]).margin(2e-5));
  CHECK(loss.item() == Approx(ref.at("loss").get<double>()).margin(2e-5));

  // Architecture gradients, element by element.
  const auto want_ga = ref.at("grad_arch").get<std::vector<double>>();
  const std::vector<float> ga = A.grads().to_vector();
  double amax = 0;
  for (double v : want_ga) amax = std::max(amax, std::fabs(v));
  REQUIRE(ga.size() == want_ga.size());
  for (size_t i = 0; i < ga.size(); ++i) {
    INFO("arch element " << i);
    CHECK(ga[i] == Approx(want_ga[i]).margin(1e-4 * amax + 1e-7));
  }

  // Weight gradients: sum, norm and first entries of every tensor.
  for (int i = 0; i < W.size(); ++i) {
    const auto& r = wref[static_cast<size_t>(i)];
    std::vector<float> g = W[i].grad().to_vector();
    double s = 0, n2 = 0;
    for (float v : g) {
      s += v;
      n2 += static_cast<double>(v) * v;
    }
    const double norm = r.at("grad_norm").get<double>();
    const double tol = 1e-4 * norm + 1e-6;
    INFO(W.name(i) << " " << W.shape(i));
    CHECK(std::sqrt(n2) == Approx(norm).margin(tol));
    CHECK(s == Approx(r.at("grad_sum").get<double>()).margin(tol * std::sqrt(static_cast<double>(g.size()))));
    const auto head = r.at("grad_head").get<std::vector<double>>();
    for (size_t k = 0; k < head.size(); ++k) CHECK(g[k] == Approx(head[k]).margin(tol));
  }
}
