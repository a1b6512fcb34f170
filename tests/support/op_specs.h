// Op specs: for every op of the op table (metanas/kernels/op_table.def), a
// builder that picks valid inputs from a pool of tensors (or adds new leaves)
// and returns a re-runnable call. The graph gradient fuzzer
// (tests/engine/graph_fuzz_test.cpp) composes random graphs from them and the
// CUDA parity test (tests/cuda/parity_test.cpp) runs each on both devices, so
// a new op gets both by adding its spec here; a test fails while an op of the
// table has none.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "metanas/engine/random.h"
#include "metanas/engine/shape.h"
#include "metanas/engine/tensor.h"

namespace metanas::testing {

// The pool a graph is built from. Values are computed while building (without
// gradients) so that builders can see shapes; leaves are the graph's inputs.
struct GraphBuilder {
  explicit GraphBuilder(Rng& r) : rng(r) {}
  Rng& rng;
  std::vector<Tensor> values;
  std::vector<bool> leaf;  // leaf[i]: values[i] is an input (differentiated)

  // A random value whose shape satisfies pred (recent values are favoured,
  // which makes chains and fan-out common); nullopt when none does.
  std::optional<int> pick(const std::function<bool(const Shape&)>& pred);
  // Adds a new leaf ~ N(0, stddev^2) and returns its index.
  int add_leaf(const Shape& s, float stddev = 1.f);
  const Shape& shape(int i) const { return values[static_cast<size_t>(i)].shape(); }
  int64_t below(int64_t n) { return static_cast<int64_t>(rng.below(static_cast<uint64_t>(n))); }
};

// One application of an op: run(values at args, in order) -> output. Constants
// (labels, running statistics, drop-path seeds) live in the closure, so a
// call gives the same result every time it runs on the same inputs, on any
// device.
struct OpCall {
  std::vector<int> args;
  std::function<Tensor(const std::vector<Tensor>&)> run;

  // Each distinct argument once, in first-use order: tests that feed the
  // inputs themselves pass one tensor per entry, so that x op x stays one
  // tensor (and gets one gradient).
  std::vector<int> distinct_args() const;
  // run over the values of distinct_args(), mapped back to args.
  std::function<Tensor(const std::vector<Tensor>&)> over_distinct() const;
};

struct OpSpec {
  std::string name;  // as in the op table
  std::function<std::optional<OpCall>(GraphBuilder&)> build;
  // CUDA vs CPU tolerances (scaled error, see tests/cuda/parity_test.cpp).
  double parity_fwd = 1e-4, parity_bwd = 1e-3;
};

// Every MN_OP of the op table, in table order, with whether it is differentiable.
struct TableOp {
  std::string name;
  bool grad;
};
const std::vector<TableOp>& table_ops();

// The spec of an op (nullptr when it has none).
const OpSpec* find_spec(const std::string& op);

// A pool that every spec can draw from: images of two shapes, a matrix, a
// logits matrix, an architecture-weight matrix and a weight vector.
void seed_pool(GraphBuilder& gb);

}  // namespace metanas::testing
