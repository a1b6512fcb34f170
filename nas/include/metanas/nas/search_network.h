// The MetaNAS search (one-shot) network, DARTS-style with pair weights and
// soft pruning.
//
//   stem: conv3x3 (in -> stem_multiplier*C, pad 1) + affine BN
//   cells 0..L-1 (reductions at SearchConfig::resolved_reductions()):
//     s0' = ReLU-conv1x1-BN(s0), or FactorizedReduce(s0) after a reduction cell
//     s1' = ReLU-conv1x1-BN(s1)
//     node i (i = 0..nodes-1) reads states h_0..h_{i+1} (s0', s1', nodes < i):
//       u_j  = sum_k W_i[j, k] * op_k(h_j)             (mixed op, W_i = normalize(alpha_i))
//       node = sum_{pairs c=(a,b)} P_i[c] * (u_a + u_b)  (P_i = normalize(pair_i))
//     edges from s0', s1' use stride 2 in reduction cells
//     output = concat(nodes)  (nodes * C channels)
//   global average pool, linear.
// All BN in cells is non-affine with batch statistics; the first cell's two
// inputs are both the stem output.
//
// Soft pruning: pairs with P <= ctx.prune_threshold are dropped, and op k on
// input j is computed only when W[j, k] > threshold and j is in a surviving
// pair. Each node is evaluated as one weighted sum over the surviving
// (input, op) outputs with weight P-coefficient(j) * W[j, k], which equals
// the formula above with the pruned terms removed.
//
// Architecture parameters (ParamSet alphas(), in this order):
//   alpha_normal.i [i+2, 7], alpha_reduce.i [i+2, 7],
//   pair_normal.i [C(i+2, 2)], pair_reduce.i [C(i+2, 2)]
//   edge_normal.i [i+2], edge_reduce.i [i+2]   (only with edge_normalization)
// pairs enumerated (0,1), (0,2), ..., (1,2), ... (a < b, lexicographic).
//
// T-NAS's cell (SearchConfig::node_inputs "all", channel_scale, stem "pooled",
// reduce_pad_odd; docs/nas.md "T-NAS cell options"): no pair parameters, a
// node is the sum over all inputs (as constant pair weights 1 / (n_in - 1)),
// C grows at reductions, and the genotype is DARTS's two-strongest-edges parse.
//
// Regularized MetaNAS (SearchConfig::mixed_op, aux_skip, partial_channels,
// edge_normalization; ForwardContext::aux_skip_beta, skip_dropout) changes
// the mixed op and the node sum as docs/nas.md "Regularized MetaNAS" gives
// (detail::node_output in search_network.cpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "metanas/nas/config.h"
#include "metanas/nas/genotype.h"
#include "metanas/nas/model.h"

namespace metanas::nas {

namespace detail {
struct SearchNetworkImpl;
}

enum class CellType { Normal, Reduce };

// DARTS's `none` (Zero) op adds exactly 0 to a node and gets exactly 0 as its
// weight's gradient, so by default search networks leave its terms out of the
// mixed op instead of materialising zero tensors that the mixed op would read
// forward and backward (unless it is a node's only term). Same values and
// gradients (up to the sign of a zero). METANAS_ZERO_OPS=compute (environment,
// read once) or set_skip_zero_ops(false) computes them as DARTS's code does
// (docs/cli.md); the setter is for programs and tests.
bool skip_zero_ops();
void set_skip_zero_ops(bool on);

// What the last forward computed (for logs and tests).
struct ForwardStats {
  int ops_total = 0;     // candidate op evaluations without pruning
  int ops_computed = 0;  // op evaluations not pruned (`none` terms count, see skip_zero_ops)
  int zero_ops_skipped = 0;  // of those, `none` terms left out of the mixed ops (skip_zero_ops)
  int pairs_total = 0;
  int pairs_kept = 0;
};

class SearchNetwork : public Model {
 public:
  // Weights: PyTorch-default init (kaiming-uniform convs/linear, BN gamma 1,
  // beta 0); alphas and pair weights 1e-3 * N(0, 1); all drawn from rng.
  SearchNetwork(const SearchConfig& cfg, Rng& rng, Device device = Device::CPU);
  ~SearchNetwork() override;
  SearchNetwork(const SearchNetwork&) = delete;
  SearchNetwork& operator=(const SearchNetwork&) = delete;

  Tensor forward(const Tensor& x, const ForwardContext& ctx) override;
  ParamSet& weights() override;
  const ParamSet& weights() const override;
  ParamSet* alphas() override;
  const ParamSet* alphas() const override;
  int64_t sparse_param_count(const ForwardContext& ctx) const override;
  uint64_t plan_version() const override;
  std::optional<Genotype> architecture() const override { return genotype(); }
  int prune_architecture(float threshold, float t_min, Normalizer normalizer) override;
  std::string kind() const override { return "search"; }
  int num_classes() const override;
  std::unique_ptr<Model> clone() const override;
  void to(Device device) override;

  const SearchConfig& config() const;
  // Arg-max pair per node, then the arg-max op for each of its two inputs
  // (ties: the first). Independent of temperature.
  Genotype genotype() const;

  // Index into alphas() of alpha_<type>.<node> / pair_<type>.<node>.
  int alpha_index(CellType type, int node) const;
  int pair_index(CellType type, int node) const;
  // edge_<type>.<node> [node + 2] (PC-DARTS edge normalization only).
  int edge_index(CellType type, int node) const;
  // Input pairs of a node with `num_inputs` inputs, in pair-weight order.
  static std::vector<std::pair<int, int>> input_pairs(int num_inputs);

  const ForwardStats& last_forward_stats() const;

  // AT-NAS shared stem (docs/algorithms.md "AT-NAS", fitness evaluation):
  // while on, forward() reuses the stem output of an input it has seen (same
  // shape and values) computed with the same stem weights, without gradient
  // history; the stem must be frozen (its parameters stem_param_indices() not
  // requiring gradients), else forward throws. Turning it on or off clears it.
  void set_stem_cache(bool on);
  bool stem_cache() const;
  int64_t stem_cache_hits() const;
  int64_t stem_cache_misses() const;
  // Indices into weights() of the stem's conv and BN parameters.
  std::vector<int> stem_param_indices() const;

  // The states of cell `cell` in a forward of x: its two preprocessed inputs,
  // then its nodes (for tests and analysis; the forward stops there).
  std::vector<Tensor> cell_states(const Tensor& x, const ForwardContext& ctx, int cell);

 private:
  Tensor run(const Tensor& x, const ForwardContext& ctx, int capture_cell, std::vector<Tensor>* captured);
  std::unique_ptr<detail::SearchNetworkImpl> impl_;
};

// Meta-model pruning (MetaNAS prune_alphas): sets to -1e9 every op logit
// whose normalized weight at temperature t_min (relu-softmax: lambda = 1) is
// below `threshold`; pair weights are untouched. Returns how many logits were
// newly pruned. The pruned ops then get weight 0 and, with a prune threshold
// >= 0, are never computed again.
int meta_prune(SearchNetwork& net, float threshold, float t_min,
               Normalizer normalizer = Normalizer::Softmax);

// The logit meta_prune writes.
constexpr float kPrunedLogit = -1e9f;

}  // namespace metanas::nas
