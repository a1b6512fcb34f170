// Configurations of the three model families, with validation and JSON
// (text here; nlohmann adapters in metanas/nas/json.h). Unknown JSON keys are
// an error (a typo must not silently fall back to a default).
#pragma once
#include <string>
#include <vector>

namespace metanas::nas {

// The MetaNAS search network. Defaults: Omniglot 20-way (462,272 weights).
struct SearchConfig {
  int in_channels = 1;
  int image_size = 28;  // the input size it is meant for (forward accepts any size)
  int num_classes = 20;
  int C = 28;           // channels of every op (constant: no doubling at reductions)
  int layers = 4;       // number of cells
  int nodes = 3;        // intermediate nodes per cell
  int stem_multiplier = 3;  // stem outputs stem_multiplier * C channels
  // Candidate ops per edge: "metanas" (its 7-op few-shot space) or "darts"
  // (DARTS's 8 ops with `none`; see primitives.h).
  std::string space = "metanas";
  // Regularized MetaNAS (docs/nas.md "Regularized MetaNAS"):
  // mixed-op weighting: "scalar" (sum_k w_k op_k) or "max_w" (SharpDARTS:
  // sum_k (1 - max_w + w_k) op_k);
  std::string mixed_op = "scalar";
  // DARTS-: an auxiliary skip per edge (identity; a non-affine factorized
  // reduce on reducing edges) added with weight ForwardContext::aux_skip_beta;
  bool aux_skip = false;
  // PC-DARTS: the ops see 1/K of an edge's channels (K = partial_channels;
  // 1 = off), the rest passes through, then channel shuffle ...
  int partial_channels = 1;
  // ... and edge normalization: a softmaxed weight per input of each node.
  bool edge_normalization = false;
  // Indices of reduction cells; empty: {floor(L/3), round(2L/3)}, i.e. cells
  // 1 and 3 of 4 (MetaNAS), 1 and 3 of 5, 2 and 5 of 8 (DARTS).
  std::vector<int> reduction_layers;
  // The cell form of T-NAS's own search network (T-NAS learner.py; docs/nas.md
  // "T-NAS cell options"):
  // how a node reads its inputs: "pairs" (MetaNAS: pair weights over input
  // pairs) or "all" (DARTS/T-NAS: the sum of every input's mixed op, no pair
  // weights; the genotype keeps the two strongest non-`none` edges);
  std::string node_inputs = "pairs";
  // channel factor at each reduction cell (MetaNAS 1: constant C; DARTS/T-NAS 2);
  int channel_scale = 1;
  // the stem: "conv" (MetaNAS: conv3x3 + BN) or "pooled" (T-NAS: conv3x3 to
  // half the stem channels, BN, max pool 2, ReLU, conv3x3, BN, max pool 2);
  std::string stem = "conv";
  // factorized reduce on odd sizes: false, both 1x1 convs read the even
  // pixels; true (T-NAS operations.py), the first reads the input padded by
  // one pixel at the top and left, i.e. the odd pixels.
  bool reduce_pad_odd = false;

  // The reduction cell indices actually used (defaults resolved, sorted, unique).
  std::vector<int> resolved_reductions() const;
  // Throws metanas::Error naming the bad field.
  void validate() const;
  std::string to_json() const;  // a JSON object
  static SearchConfig from_json(const std::string& text);
  bool operator==(const SearchConfig& o) const;
  bool operator!=(const SearchConfig& o) const { return !(*this == o); }
};

// A network built from a genotype (MetaNAS's AugmentCNN): affine BN,
// configurable width and depth, drop-path on non-identity ops.
struct DiscreteConfig {
  int in_channels = 1;
  int image_size = 28;
  int num_classes = 20;
  int C = 28;
  int layers = 4;
  int stem_multiplier = 3;
  // Channel factor at each reduction cell (MetaNAS: 1, i.e. constant C;
  // DARTS: 2).
  int channel_scale = 1;
  std::vector<int> reduction_layers;  // empty: as SearchConfig
  std::string stem = "conv";           // as SearchConfig::stem
  bool reduce_pad_odd = false;         // as SearchConfig::reduce_pad_odd
  // A BN after each max/avg pool (MetaNAS AugmentCNN's PoolBN) or none
  // (T-NAS/DARTS model.py: OPS pools are bare in the trained network).
  bool pool_bn = true;

  std::vector<int> resolved_reductions() const;
  void validate() const;
  std::string to_json() const;
  static DiscreteConfig from_json(const std::string& text);
  bool operator==(const DiscreteConfig& o) const;
  bool operator!=(const DiscreteConfig& o) const { return !(*this == o); }
};

// The 4-conv baseline of MAML/REPTILE: 4 x [conv3x3 (pad 1), BN (affine),
// ReLU, max pool 2x2 stride 2], then linear.
struct ConvNet4Config {
  int in_channels = 1;
  int image_size = 28;
  int num_classes = 20;
  int channels = 64;  // MAML: 64 (Omniglot), 32 (miniImageNet)

  // Spatial size after the four pools (floor halving); >= 1 required.
  int final_size() const;
  void validate() const;
  std::string to_json() const;
  static ConvNet4Config from_json(const std::string& text);
  bool operator==(const ConvNet4Config& o) const;
  bool operator!=(const ConvNet4Config& o) const { return !(*this == o); }
};

}  // namespace metanas::nas
