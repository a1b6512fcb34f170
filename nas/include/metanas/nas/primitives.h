// The MetaNAS candidate operations ("primitives"). Their order is fixed: it
// defines the columns of every alpha matrix and the indices in genotypes.
//
//   0 max_pool_3x3   max pool 3x3 (pad 1, stride s), BN
//   1 avg_pool_3x3   avg pool 3x3 (pad 1, stride s, padding excluded), BN
//   2 skip_connect   identity (s = 1) / factorized reduce (s = 2)
//   3 conv_1x5_5x1   ReLU, conv 1x5 (stride s, pad (0,2)), conv 5x1 (pad (2,0)), BN
//   4 conv_3x3       ReLU, depthwise 3x3 (stride s, pad 1), pointwise 1x1, BN
//   5 sep_conv_3x3   the conv_3x3 block twice, only the first strided
//   6 dil_conv_3x3   ReLU, depthwise 3x3 dilation 2 (stride s, pad 2), pointwise 1x1, BN
//
// DARTS's 8-op space (SearchSpace::Darts, in DARTS's column order: none,
// max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5,
// dil_conv_3x3, dil_conv_5x5) adds three primitives:
//
//   7 none           zeros of the output shape (DARTS's Zero op)
//   8 sep_conv_5x5   as sep_conv_3x3 with 5x5 depthwise convs (pad 2)
//   9 dil_conv_5x5   as dil_conv_3x3 with a 5x5 kernel (dilation 2, pad 4)
//
// SharpDARTS's op set (SearchSpace::Sharp, reg-MetaNAS PRIMITIVES_SHARP, in
// its column order: avg pool, max pool, skip, sep conv, flood conv, dil conv,
// dil flood conv) adds six (docs/nas.md "SharpDARTS"); the "sharp sep conv"
// block is ReLU, depthwise 3x3 (stride s, dilation d), pointwise C -> M, BN,
// ReLU, depthwise 3x3 on M, pointwise M -> C, BN:
//
//  10 sharp_avg_pool_3x3   avg pool 3x3 (pad 1, stride s, padding counted), no BN
//  11 sharp_max_pool_3x3   max pool 3x3 (pad 1, stride s), no BN
//  12 sharp_sep_conv_3x3   sharp sep conv, d = 1, M = C
//  13 flood_conv_3x3       sharp sep conv, d = 1, M = 4C
//  14 sharp_dil_conv_3x3   sharp sep conv, d = 2 (pad 2), M = C
//  15 dil_flood_conv_3x3   sharp sep conv, d = 2 (pad 2), M = 4C
//
// Convs have no bias. PrimitiveOp is a standalone instance (its own weights),
// for tests, benchmarks and experiments; the networks build the same blocks
// inside their own ParamSet.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"

namespace metanas::nas {

namespace detail {
struct OpBlock;
}

enum class Primitive : int {
  MaxPool3x3 = 0,
  AvgPool3x3 = 1,
  SkipConnect = 2,
  Conv1x5_5x1 = 3,
  Conv3x3 = 4,
  SepConv3x3 = 5,
  DilConv3x3 = 6,
  None = 7,
  SepConv5x5 = 8,
  DilConv5x5 = 9,
  SharpAvgPool3x3 = 10,
  SharpMaxPool3x3 = 11,
  SharpSepConv3x3 = 12,
  FloodConv3x3 = 13,
  SharpDilConv3x3 = 14,
  DilFloodConv3x3 = 15,
};

// The MetaNAS few-shot space: 7 candidate ops per edge.
constexpr int kNumPrimitives = 7;
constexpr int kNumAllPrimitives = 16;  // every Primitive value

// The MetaNAS primitives in column order.
const std::array<Primitive, kNumPrimitives>& all_primitives();

// The candidate-op sets a search network can use; the list order defines the
// alpha columns. MetaNAS: the 7 ops above (PRIMITIVES_FEWSHOT); Darts: the 8
// ops of DARTS (genotypes.py PRIMITIVES), `none` first; Sharp: the 7 ops of
// SharpDARTS as reg-MetaNAS uses them.
enum class SearchSpace { MetaNAS, Darts, Sharp };
const std::vector<Primitive>& space_primitives(SearchSpace s);
const char* search_space_name(SearchSpace s);  // "metanas", "darts", "sharp"
SearchSpace parse_search_space(const std::string& name);  // throws listing the names
// "max_pool_3x3", ... (the MetaNAS names).
const char* primitive_name(Primitive p);
// Inverse of primitive_name; throws metanas::Error listing the valid names.
Primitive parse_primitive(const std::string& name);
// Enum value (0..15; the MetaNAS column index for 0..6).
inline int primitive_index(Primitive p) { return static_cast<int>(p); }
// Throws for indices outside 0..15.
Primitive primitive_at(int index);

// One candidate op with its own weights (ParamSet), e.g. for shape tests.
// affine: BN with gamma/beta (discrete networks) or plain (search network).
class PrimitiveOp {
 public:
  PrimitiveOp(Primitive p, int64_t channels, int stride, bool affine, Rng& rng,
              Device device = Device::CPU);
  // x: [N, channels, H, W] -> [N, channels, ceil(H / s), ceil(W / s)].
  Tensor forward(const Tensor& x) const;
  ParamSet& weights() { return weights_; }
  const ParamSet& weights() const { return weights_; }
  Primitive primitive() const { return prim_; }
  int stride() const { return stride_; }

 private:
  Primitive prim_;
  int stride_;
  ParamSet weights_;
  std::shared_ptr<const detail::OpBlock> block_;  // which parameters the op applies, and how
};

}  // namespace metanas::nas
