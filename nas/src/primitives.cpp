// Primitive names and the standalone PrimitiveOp.
#include "metanas/nas/primitives.h"

#include "blocks.h"
#include "metanas/engine/error.h"

namespace metanas::nas {

namespace {
const char* const kNames[kNumAllPrimitives] = {"max_pool_3x3", "avg_pool_3x3", "skip_connect", "conv_1x5_5x1",
                                               "conv_3x3",     "sep_conv_3x3", "dil_conv_3x3", "none",
                                               "sep_conv_5x5", "dil_conv_5x5", "sharp_avg_pool_3x3", "sharp_max_pool_3x3",
                                               "sharp_sep_conv_3x3", "flood_conv_3x3", "sharp_dil_conv_3x3",
                                               "dil_flood_conv_3x3"};
}

const std::vector<Primitive>& space_primitives(SearchSpace s) {
  static const std::vector<Primitive> metanas(all_primitives().begin(), all_primitives().end());
  static const std::vector<Primitive> darts = {Primitive::None,       Primitive::MaxPool3x3, Primitive::AvgPool3x3,
                                               Primitive::SkipConnect, Primitive::SepConv3x3, Primitive::SepConv5x5,
                                               Primitive::DilConv3x3, Primitive::DilConv5x5};
  static const std::vector<Primitive> sharp = {Primitive::SharpAvgPool3x3, Primitive::SharpMaxPool3x3,
                                               Primitive::SkipConnect,     Primitive::SharpSepConv3x3,
                                               Primitive::FloodConv3x3,    Primitive::SharpDilConv3x3,
                                               Primitive::DilFloodConv3x3};
  if (s == SearchSpace::Sharp) return sharp;
  return s == SearchSpace::Darts ? darts : metanas;
}

const char* search_space_name(SearchSpace s) {
  return s == SearchSpace::Sharp ? "sharp" : s == SearchSpace::Darts ? "darts" : "metanas";
}

SearchSpace parse_search_space(const std::string& name) {
  if (name == "metanas") return SearchSpace::MetaNAS;
  if (name == "darts") return SearchSpace::Darts;
  if (name == "sharp") return SearchSpace::Sharp;
  MN_THROW("unknown search space '", name, "' (valid: metanas, darts, sharp)");
}

const std::array<Primitive, kNumPrimitives>& all_primitives() {
  static const std::array<Primitive, kNumPrimitives> all = {
      Primitive::MaxPool3x3, Primitive::AvgPool3x3, Primitive::SkipConnect, Primitive::Conv1x5_5x1,
      Primitive::Conv3x3,    Primitive::SepConv3x3, Primitive::DilConv3x3};
  return all;
}

const char* primitive_name(Primitive p) {
  const int i = static_cast<int>(p);
  MN_CHECK(i >= 0 && i < kNumAllPrimitives, "primitive_name: invalid primitive ", i);
  return kNames[i];
}

Primitive parse_primitive(const std::string& name) {
  for (int i = 0; i < kNumAllPrimitives; ++i)
    if (name == kNames[i]) return static_cast<Primitive>(i);
  std::string valid;
  for (int i = 0; i < kNumAllPrimitives; ++i) valid += std::string(i ? ", " : "") + kNames[i];
  MN_THROW("unknown op '", name, "' (valid: ", valid, ")");
}

Primitive primitive_at(int index) {
  MN_CHECK(index >= 0 && index < kNumAllPrimitives, "primitive_at: index ", index,
           " outside 0..", kNumAllPrimitives - 1);
  return static_cast<Primitive>(index);
}

PrimitiveOp::PrimitiveOp(Primitive p, int64_t channels, int stride, bool affine, Rng& rng,
                         Device device)
    : prim_(p), stride_(stride), weights_(device) {
  MN_CHECK(channels > 0, "PrimitiveOp: channels must be positive, got ", channels);
  detail::ParamBuilder b(weights_);
  block_ = std::make_shared<detail::OpBlock>(
      detail::make_op(b, "op", p, channels, stride, affine));
  b.finish(rng);
}

Tensor PrimitiveOp::forward(const Tensor& x) const { return detail::apply(*block_, weights_, x); }

}  // namespace metanas::nas
