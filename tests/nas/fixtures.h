// Fixtures shared by the NAS tests: a tiny search-network configuration, a
// small ConvNet4, random images and MetaNAS's published Omniglot genotype.
#pragma once
#include <cstdint>

#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"
#include "metanas/nas/config.h"

namespace metanas::testing {

// 2 cells (cell 1 reduces), C 4, 2 nodes, stem x1, 3 classes, for 8x8 images.
inline nas::SearchConfig tiny_search_config() {
  nas::SearchConfig c;
  c.in_channels = 1;
  c.image_size = 8;
  c.num_classes = 3;
  c.C = 4;
  c.layers = 2;
  c.nodes = 2;
  c.stem_multiplier = 1;
  c.reduction_layers = {1};
  return c;
}

// 4 channels, 3 classes, for 16x16 images.
inline nas::ConvNet4Config tiny_convnet4_config() {
  nas::ConvNet4Config c;
  c.channels = 4;
  c.image_size = 16;
  c.num_classes = 3;
  return c;
}

// Images [n, c, size, size] drawn N(0, 1) from Rng(seed).
inline Tensor random_images(int64_t n, int64_t c, int64_t size, uint64_t seed) {
  Rng r(seed);
  return Tensor::randn(Shape{n, c, size, size}, r);
}

// MetaNAS's published Omniglot genotype (genotype_metanas_og_v2), as printed by Python.
inline constexpr const char* kOgV2 =
    "Genotype(normal=[[('dil_conv_3x3', 0), ('sep_conv_3x3', 1)], [('avg_pool_3x3', 0), "
    "('sep_conv_3x3', 1)], [('conv_1x5_5x1', 0), ('conv_3x3', 2)]], normal_concat=range(2, 5), "
    "reduce=[[('skip_connect', 0), ('sep_conv_3x3', 1)], [('conv_3x3', 0), ('dil_conv_3x3', 1)], "
    "[('dil_conv_3x3', 0), ('conv_1x5_5x1', 2)]], reduce_concat=range(2, 5))";

}  // namespace metanas::testing
