// Internal building blocks shared by the NAS networks: parameter declaration
// with PyTorch-default initialisation, and the candidate ops / preprocessing
// blocks as (parameter indices, forward function) over a model's ParamSet.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "metanas/engine/ops.h"
#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"
#include "metanas/nas/model.h"
#include "metanas/nas/primitives.h"

namespace metanas::nas::detail {

// A batch norm: affine when gamma/beta are parameter indices, plain when -1.
struct Bn {
  int gamma = -1, beta = -1;
};

// Declares parameters in a ParamSet and remembers how to initialise them.
class ParamBuilder {
 public:
  explicit ParamBuilder(ParamSet& ps) : ps_(ps) {}
  // Conv weight [cout, cin_per_group, kh, kw], U(-b, b) with b = 1/sqrt(fan_in)
  // (PyTorch's kaiming_uniform(a = sqrt(5)) default).
  int conv(const std::string& name, int64_t cout, int64_t cin_per_group, int64_t kh, int64_t kw);
  Bn bn(const std::string& name, int64_t channels, bool affine);
  // Linear weight [out, in] and bias [out], both U(-1/sqrt(in), 1/sqrt(in)).
  int linear_weight(const std::string& name, int64_t out, int64_t in);
  int linear_bias(const std::string& name, int64_t out, int64_t in);
  // Any tensor filled with U(-bound, bound) (Xavier-uniform layers), or with a constant.
  int uniform(const std::string& name, const Shape& shape, float bound);
  int constant(const std::string& name, const Shape& shape, float value);
  // Any tensor filled with stddev * N(0, 1) (architecture parameters).
  int normal(const std::string& name, const Shape& shape, float stddev);
  // Finalizes the set and writes the initial values, drawn in declaration order.
  void finish(Rng& rng);

 private:
  enum class Kind { Uniform, Constant, Normal };
  struct Init {
    int index;
    Kind kind;
    float a;  // bound, constant or stddev
  };
  int declare(const std::string& name, const Shape& shape, Kind kind, float a);
  ParamSet& ps_;
  std::vector<Init> inits_;
};

Tensor apply_bn(const Tensor& x, const ParamSet& ps, const Bn& bn);

// ReLU, two 1x1 stride-2 convs (cout/2 each; the second on the input shifted
// by one pixel in each even-sized dim), concat, BN. pad_odd (T-NAS): in an
// odd-sized dim the first conv reads the input padded by one zero at the
// start instead (the odd pixels), the second the input itself.
struct FactorizedReduce {
  int conv_a = -1, conv_b = -1;
  Bn bn;
  bool pad_odd = false;
};
FactorizedReduce make_factorized_reduce(ParamBuilder& b, const std::string& name, int64_t cin,
                                        int64_t cout, bool affine, bool pad_odd = false);
Tensor apply(const FactorizedReduce& fr, const ParamSet& ps, const Tensor& x);

// ReLU, conv1x1, BN (cell-input preprocessing).
struct ReluConvBn {
  int conv = -1;
  Bn bn;
};
ReluConvBn make_relu_conv_bn(ParamBuilder& b, const std::string& name, int64_t cin, int64_t cout,
                             bool affine);
Tensor apply(const ReluConvBn& rcb, const ParamSet& ps, const Tensor& x);

// Preprocessing of a cell input: one of the two blocks above.
struct Preprocess {
  bool reduce = false;
  FactorizedReduce fr;
  ReluConvBn rcb;
};
Tensor apply(const Preprocess& p, const ParamSet& ps, const Tensor& x);
// A factorized reduce when `reduce` (the previous cell halved the size), else
// ReLU-conv-BN; parameters named <name>.*.
Preprocess make_preprocess(ParamBuilder& b, const std::string& name, int64_t cin, int64_t cout, bool reduce,
                           bool affine, bool pad_odd = false);

// The states of one cell: its two preprocessed inputs, each computed on first
// use (an input that no computed edge reads is never preprocessed), then the
// nodes in order.
class CellStates {
 public:
  CellStates(const Preprocess& pre0, const Preprocess& pre1, const ParamSet& ps, const Tensor& s0,
             const Tensor& s1)
      : pre_{&pre0, &pre1}, ps_(ps), in_{&s0, &s1}, states_(2) {}
  // State j: 0 and 1 the preprocessed inputs, 2.. the nodes pushed so far.
  Tensor get(int j);
  void push(const Tensor& node) { states_.push_back(node); }
  // The node states (from 2 on).
  std::vector<Tensor> nodes() const { return {states_.begin() + 2, states_.end()}; }

 private:
  const Preprocess* pre_[2];
  const ParamSet& ps_;
  const Tensor* in_[2];
  std::vector<Tensor> states_;
};

// The stem of the cell networks: conv 3x3 (pad 1), affine BN ("stem.conv",
// "stem.bn"); pooled (T-NAS, SearchConfig::stem): conv 3x3 to cout/2, BN, max
// pool 2x2, ReLU, conv 3x3 to cout ("stem.conv2"), BN ("stem.bn2"), max pool 2x2.
struct Stem {
  int conv = -1, conv2 = -1;
  Bn bn, bn2;
};
Stem make_stem(ParamBuilder& b, int64_t cin, int64_t cout, const std::string& kind = "conv");
Tensor apply(const Stem& s, const ParamSet& ps, const Tensor& x);

// The head of the cell networks: global average pool, linear
// ("classifier.weight", "classifier.bias").
struct Classifier {
  int weight = -1, bias = -1;
};
Classifier make_classifier(ParamBuilder& b, int64_t num_classes, int64_t in);
Tensor apply(const Classifier& c, const ParamSet& ps, const Tensor& x);

// Forward-argument checks, errors prefixed with `who`: x must be
// [N, in_channels, H, W] ...
void check_input(const char* who, const Tensor& x, int64_t in_channels);
// ... and, for the cell networks, on `device`, with a valid drop-path setting.
// Returns whether drop-path is on.
bool check_cell_forward(const char* who, const Tensor& x, int64_t in_channels, Device device,
                        const ForwardContext& ctx);
// The drop-path key of one forward: ctx.drop_key, or one seed drawn from
// ctx.rng (task = step = op = 0). Op o's mask then uses op = key.op + o.
PhiloxKey forward_drop_key(const ForwardContext& ctx);
// y with drop-path applied under key.op + op_index.
Tensor keyed_drop_path(const Tensor& y, const ForwardContext& ctx, PhiloxKey key, uint32_t op_index);
// What a mixed op folds into its sum: each term's drop-path mask (as
// weighted_sum row scales) and its last, affine-free batch norm (then the sum
// is normalized_weighted_sum). add() each term, then sum().
struct MixedOpSum {
  std::vector<int64_t> ops;     // each term's op index, -1 = not dropped
  std::vector<bool> normalize;  // each term's output still to be batch-normalised
  bool any_dropped = false, any_normalized = false;
  void add(bool dropped, int64_t op_index, bool normalized) {
    ops.push_back(dropped ? op_index : -1);
    normalize.push_back(normalized);
    any_dropped = any_dropped || dropped;
    any_normalized = any_normalized || normalized;
  }
  // weighted_sum(xs, w) with the masks keyed_drop_path would apply to the N
  // samples and the folded batch norms (inputs past the added terms are
  // neither dropped nor normalised).
  Tensor sum(const std::vector<Tensor>& xs, const Tensor& w, const ForwardContext& ctx, PhiloxKey key, int64_t N,
             Device device) const;
};

// One candidate op on C channels.
struct OpBlock {
  Primitive prim = Primitive::SkipConnect;
  int stride = 1;
  int64_t C = 0;
  std::vector<int> convs;  // conv weights in application order
  Bn bn[2];                // bn[1] only for sep_conv_3x3
  FactorizedReduce fr;     // skip_connect at stride 2
  bool pool_bn = true;     // max/avg pool followed by bn[0] (false: the bare pool)
  // Whether the op is the identity (no drop-path on it).
  bool identity() const { return prim == Primitive::SkipConnect && stride == 1; }
  // All parameter indices it uses.
  std::vector<int> param_indices() const;
};
// reduce_pad_odd: FactorizedReduce::pad_odd of a strided skip_connect;
// pool_bn: a BN after max/avg pool (MetaNAS PoolBN, DARTS search MixedOp) or
// none (DARTS/T-NAS model.py).
OpBlock make_op(ParamBuilder& b, const std::string& name, Primitive prim, int64_t C, int stride,
                bool affine, bool reduce_pad_odd = false, bool pool_bn = true);
Tensor apply(const OpBlock& op, const ParamSet& ps, const Tensor& x);
// The same with fold: an op ending in an affine-free batch norm returns its
// output before that batch norm and sets `folded` (the mixed op then folds it
// into its sum: MixedOpSum, normalized_weighted_sum).
Tensor apply(const OpBlock& op, const ParamSet& ps, const Tensor& x, bool fold, bool& folded);
// Whether search networks fold those batch norms on `device`: METANAS_FOLD_BN
// = cpu (default; the CUDA kernel is a composite of the unfused ones), 1, 0.
bool fold_bn_enabled(Device device);

// Total number of elements of the given parameters.
int64_t count_params(const ParamSet& ps, const std::vector<int>& indices);

// Output size of a stride-s op with a 3x3 window and padding 1: ceil(n / s).
inline int64_t strided_size(int64_t n, int stride) { return (n + stride - 1) / stride; }

// The default reduction cells {floor(L/3), round(2L/3)} or the given ones, sorted/unique.
std::vector<int> resolve_reductions(int layers, const std::vector<int>& given);

}  // namespace metanas::nas::detail
