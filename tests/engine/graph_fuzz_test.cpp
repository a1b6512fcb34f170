// Graph-level gradient fuzzing. Per-op gradient checks cannot see a bug that
// only appears when ops are composed (a gradient buffer shared by two pending
// slots, a pass-through handing its upstream tensor on); this test builds a
// few hundred seeded random graphs from every differentiable op of the op
// table (fan-out, x op x, views, reshapes, concat/slice, the NAS blocks) and
// checks the gradient of every leaf against central finite differences of the
// whole graph. A self-test switches the engine back to its old accumulation
// rule and requires the fuzzer to report mismatches.
//
// The check per leaf: the directional derivative <dL/dx, d> along a random
// sign vector d against (L(x + h d) - L(x - h d)) / 2h, with L summed on the
// host in double. ReLU and max-pool kinks make a finite difference wrong when
// the step crosses one; such a direction is recognised by disagreeing one-sided
// slopes (L(x) - L(x - h d)) / h and (L(x + h d) - L(x)) / h and redrawn (a leaf that finds no smooth direction in three
// draws is skipped and counted).
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <sstream>

#include "metanas/engine/autograd.h"
#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "support/op_specs.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

struct Program {
  std::vector<Tensor> leaves;          // values of the inputs (index = value index)
  std::vector<int> leaf_ids;
  std::vector<std::pair<int, OpCall>> steps;  // (output value index, call)
  std::vector<int> sinks;              // values summed into L, each with its weight
  std::vector<std::vector<double>> weights;
  std::vector<std::string> ops;        // op names, for failure messages
  size_t size = 0;
};

// Builds a random graph of `n_ops` ops drawn from the differentiable ops of the table.
Program random_program(uint64_t seed, int n_ops) {
  Rng rng(seed);
  GraphBuilder gb(rng);
  seed_pool(gb);
  std::vector<const OpSpec*> specs;
  for (const auto& op : table_ops())
    if (op.grad) specs.push_back(find_spec(op.name));
  Program p;
  std::vector<int> consumers;
  NoGradGuard ng;
  for (int made = 0, tries = 0; made < n_ops && tries < 20 * n_ops; ++tries) {
    const OpSpec* s = specs[static_cast<size_t>(gb.below(static_cast<int64_t>(specs.size())))];
    const auto c = s->build(gb);
    if (!c) continue;
    std::vector<Tensor> in;
    for (int a : c->args) in.push_back(gb.values[static_cast<size_t>(a)]);
    Tensor out = c->run(in);
    consumers.resize(gb.values.size() + 1, 0);
    for (int a : c->args) ++consumers[static_cast<size_t>(a)];
    gb.values.push_back(out);
    gb.leaf.push_back(false);
    p.steps.emplace_back(static_cast<int>(gb.values.size()) - 1, *c);
    p.ops.push_back(s->name);
    ++made;
  }
  consumers.resize(gb.values.size(), 0);
  p.size = gb.values.size();
  p.leaves.resize(p.size);
  for (size_t i = 0; i < p.size; ++i)
    if (gb.leaf[i]) {
      p.leaves[i] = gb.values[i];
      p.leaf_ids.push_back(static_cast<int>(i));
    }
  // L sums every op output nobody consumed, and some consumed ones too (fan-out into the loss).
  for (const auto& st : p.steps) {
    const int v = st.first;
    if (consumers[static_cast<size_t>(v)] == 0 || gb.below(4) == 0) {
      p.sinks.push_back(v);
      std::vector<double> w(static_cast<size_t>(gb.values[static_cast<size_t>(v)].numel()));
      for (auto& x : w) x = rng.normal();
      p.weights.push_back(std::move(w));
    }
  }
  return p;
}

// Runs the program on the given leaf values; returns every value.
std::vector<Tensor> run(const Program& p, const std::vector<Tensor>& leaves) {
  std::vector<Tensor> v = leaves;
  for (const auto& [out, c] : p.steps) {
    std::vector<Tensor> in;
    for (int a : c.args) in.push_back(v[static_cast<size_t>(a)]);
    v[static_cast<size_t>(out)] = c.run(in);
  }
  return v;
}

// L = sum_s <W_s, sink_s> in double; *abs_sum receives sum |W_s| |sink_s|, the
// scale of L's float rounding.
double loss_double(const Program& p, const std::vector<Tensor>& leaves, double* abs_sum = nullptr) {
  NoGradGuard ng;
  const std::vector<Tensor> v = run(p, leaves);
  double L = 0, A = 0;
  for (size_t s = 0; s < p.sinks.size(); ++s) {
    const std::vector<float> x = v[static_cast<size_t>(p.sinks[s])].to_vector();
    for (size_t i = 0; i < x.size(); ++i) {
      L += p.weights[s][i] * x[i];
      A += std::fabs(p.weights[s][i] * x[i]);
    }
  }
  if (abs_sum) *abs_sum = A;
  return L;
}

// Tolerances. Measured at h = 1e-3 over the graphs below: no leaf of the
// fixed engine exceeds a scaled error of 0.003, the old accumulation rule's
// mismatches are 0.06 and more; kKinkTol separates smooth directions from kinks.
constexpr double kRtol = 3e-2;
constexpr double kKinkTol = 1e-2;

struct FuzzReport {
  int graphs = 0, leaves_checked = 0, leaves_skipped = 0, mismatches = 0;
  double worst = 0;
  std::string first_mismatch;
};

// Checks every leaf gradient of `n_graphs` random graphs; rtol bounds the
// scaled error |analytic - numeric| / (|analytic| + |numeric| + 1e-3 |g|_1).
FuzzReport fuzz(uint64_t seed, int n_graphs, double rtol) {
  FuzzReport r;
  for (int gi = 0; gi < n_graphs; ++gi) {
    const uint64_t gseed = seed * 1000003ull + static_cast<uint64_t>(gi);
    const Program p = random_program(gseed, 3 + static_cast<int>(gseed % 12));
    if (p.sinks.empty()) continue;
    ++r.graphs;
    // Analytic: L = sum_s sum(sink_s * W_s) through the engine.
    std::vector<Tensor> leaves(p.size);
    for (int id : p.leaf_ids) {
      leaves[static_cast<size_t>(id)] = p.leaves[static_cast<size_t>(id)].clone();
      leaves[static_cast<size_t>(id)].set_requires_grad();
    }
    {
      const std::vector<Tensor> v = run(p, leaves);
      Tensor L;
      for (size_t s = 0; s < p.sinks.size(); ++s) {
        const Tensor& x = v[static_cast<size_t>(p.sinks[s])];
        const std::vector<float> w(p.weights[s].begin(), p.weights[s].end());
        const Tensor term = sum(mul(x, Tensor::from_vector(w, x.shape())));
        L = L.defined() ? add(L, term) : term;
      }
      if (!L.requires_grad()) continue;  // no leaf reaches the loss (e.g. argmax-only graphs)
      L.backward();
    }
    Rng drng(gseed ^ 0x5bd1e995ull);
    for (int id : p.leaf_ids) {
      const Tensor& x0 = p.leaves[static_cast<size_t>(id)];
      const Tensor g = leaves[static_cast<size_t>(id)].grad();
      const std::vector<float> gv = g.defined() ? g.to_vector() : std::vector<float>(x0.numel(), 0.f);
      double g1 = 0;
      for (float e : gv) g1 += std::fabs(e);
      bool done = false;
      for (int attempt = 0; attempt < 3 && !done; ++attempt) {
        std::vector<float> d(gv.size());
        for (auto& e : d) e = drng.below(2) ? 1.f : -1.f;
        double analytic = 0;
        for (size_t i = 0; i < d.size(); ++i) analytic += static_cast<double>(gv[i]) * d[i];
        // L at x + t d.
        double abs_sum = 0;
        auto at = [&](double t) {
          std::vector<Tensor> in(p.size);
          for (int o : p.leaf_ids) in[static_cast<size_t>(o)] = p.leaves[static_cast<size_t>(o)];
          std::vector<float> xv = x0.to_vector();
          for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(xv[i] + t * d[i]);
          in[static_cast<size_t>(id)] = Tensor::from_vector(xv, x0.shape());
          return loss_double(p, in, t == 0 ? &abs_sum : nullptr);
        };
        const double h = 1e-3, lm = at(-h), l0 = at(0), lp = at(h);
        const double left = (l0 - lm) / h, right = (lp - l0) / h, n1 = (lp - lm) / (2 * h);
        // Forgiven outright: the float rounding of the sinks (a few ulps each)
        // divided by the step, the finite difference's own noise. The rest is
        // scaled by the two values plus 0.1 % of the largest possible
        // directional derivative.
        const double noise = 8 * 0x1p-24 * abs_sum / h, floor = 1e-3 * g1 + 1e-9;
        auto scaled = [&](double a, double b) {
          return std::max(0.0, std::fabs(a - b) - noise) / (std::fabs(a) + std::fabs(b) + floor);
        };
        // One-sided slopes that disagree: the step crosses a kink (ReLU, a max-pool switch). Redraw.
        if (scaled(left, right) > kKinkTol) continue;
        done = true;
        const double err = scaled(analytic, n1);
        r.worst = std::max(r.worst, err);
        ++r.leaves_checked;
        if (err > rtol) {
          if (r.mismatches++ == 0) {
            std::ostringstream os;
            os << "graph seed " << gseed << " ops [";
            for (size_t k = 0; k < p.ops.size(); ++k) os << (k ? ", " : "") << p.ops[k];
            os << "] leaf " << id << " " << x0.shape().str() << ": <grad, d> = " << analytic
               << ", finite difference = " << n1 << " (scaled error " << err << ")";
            r.first_mismatch = os.str();
          }
        }
      }
      if (!done) ++r.leaves_skipped;
    }
  }
  return r;
}

}  // namespace

TEST_CASE("every op of the op table has a spec (fuzzer and CUDA parity cover it)", "[fuzz]") {
  REQUIRE(table_ops().size() >= 20);
  for (const auto& op : table_ops()) {
    INFO("op " << op.name);
    CHECK(find_spec(op.name) != nullptr);
  }
}

TEST_CASE("every differentiable op appears in the fuzzed graphs", "[fuzz]") {
  std::map<std::string, int> seen;
  for (int gi = 0; gi < 300; ++gi) {
    const uint64_t gseed = 7 * 1000003ull + static_cast<uint64_t>(gi);
    for (const auto& op : random_program(gseed, 3 + static_cast<int>(gseed % 12)).ops) ++seen[op];
  }
  for (const auto& op : table_ops()) {
    if (!op.grad) continue;
    INFO("op " << op.name);
    CHECK(seen[op.name] >= 5);
  }
}

TEST_CASE("graph fuzzer: every leaf gradient of 400 random graphs matches finite differences", "[fuzz]") {
  const FuzzReport r = fuzz(7, 400, kRtol);
  INFO("graphs " << r.graphs << ", leaves checked " << r.leaves_checked << ", skipped (kinks) " << r.leaves_skipped
                 << ", worst scaled error " << r.worst << "\nfirst mismatch: " << r.first_mismatch);
  CHECK(r.graphs >= 350);
  CHECK(r.leaves_skipped * 10 <= r.leaves_checked);
  REQUIRE(r.mismatches == 0);
}

TEST_CASE("graph fuzzer self-test: the old accumulation rule is caught", "[fuzz]") {
  set_legacy_accumulation_for_testing(true);
  FuzzReport r;
  try {
    r = fuzz(7, 1600, kRtol);  // the aliasing pattern is rare: ~6 of these 1600 graphs
  } catch (...) {
    set_legacy_accumulation_for_testing(false);
    throw;
  }
  set_legacy_accumulation_for_testing(false);
  INFO("graphs " << r.graphs << ", mismatches " << r.mismatches << "; first: " << r.first_mismatch);
  REQUIRE(r.mismatches >= 2);
}
