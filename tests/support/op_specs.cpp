// The op specs of op_specs.h: one builder per op of the op table.
#include "support/op_specs.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::testing {

namespace {

bool is4d(const Shape& s) { return s.ndim() == 4; }
bool is2d(const Shape& s) { return s.ndim() == 2; }
bool any(const Shape& s) { return s.ndim() >= 1 && s.numel() >= 1; }

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

std::optional<OpCall> call(std::vector<int> args, Fn f) { return OpCall{std::move(args), std::move(f)}; }

// A second operand of the same shape as `a`: often `a` itself (x op x).
// Op outputs are preferred over leaves: two pending gradients can share a
// buffer only between op outputs, which is where composition bugs live.
int partner(GraphBuilder& gb, int a) {
  if (gb.below(3) == 0) return a;
  const Shape s = gb.shape(a);
  std::vector<int> outs, all;
  for (size_t i = 0; i < gb.values.size(); ++i)
    if (static_cast<int>(i) != a && gb.values[i].dtype() == DType::F32 && gb.values[i].shape() == s) {
      all.push_back(static_cast<int>(i));
      if (!gb.leaf[i]) outs.push_back(static_cast<int>(i));
    }
  const std::vector<int>& from = !outs.empty() && gb.below(3) != 0 ? outs : all;
  return from.empty() ? a : from[static_cast<size_t>(gb.below(static_cast<int64_t>(from.size())))];
}

std::optional<OpCall> elementwise_binary(GraphBuilder& gb, Tensor (*op)(const Tensor&, const Tensor&)) {
  const auto a = gb.pick(any);
  if (!a) return std::nullopt;
  return call({*a, partner(gb, *a)}, [op](const std::vector<Tensor>& v) { return op(v[0], v[1]); });
}

std::optional<OpCall> unary(GraphBuilder& gb, const std::function<bool(const Shape&)>& pred, Fn f) {
  const auto a = gb.pick(pred);
  if (!a) return std::nullopt;
  return call({*a}, std::move(f));
}

// Conv geometries of the NAS blocks and the 4-conv baselines, chosen for x.
std::optional<OpCall> conv(GraphBuilder& gb) {
  const auto xi = gb.pick([](const Shape& s) { return is4d(s) && s[2] >= 3 && s[3] >= 3; });
  if (!xi) return std::nullopt;
  const Shape xs = gb.shape(*xi);
  const int64_t C = xs[1];
  Conv2dOptions o;
  int64_t cout = 2 + gb.below(3), kh = 3, kw = 3;
  switch (gb.below(8)) {
    case 0: o = Conv2dOptions::same(1, 1); break;                                  // dense 3x3
    case 1: kh = kw = 1; break;                                                    // 1x1
    case 2: o = Conv2dOptions::same(1, 1, 1, C); cout = C; break;                  // depthwise 3x3
    case 3: o = Conv2dOptions::same(1, 2, 2, C); cout = C; break;                  // dilated depthwise
    case 4: o = Conv2dOptions::same(2, 1); break;                                  // stride 2
    case 5: kh = 1; kw = 5; o.pad_left = o.pad_right = 2; break;                   // 1x5
    case 6: kh = 5; kw = 1; o.pad_top = o.pad_bottom = 2; break;                   // 5x1
    default:                                                                       // grouped / multiplier
      o = Conv2dOptions::same(1, 1, 1, C % 2 == 0 ? 2 : C);
      cout = C % 2 == 0 ? 4 : 2 * C;
  }
  o.relu_input = gb.below(2) == 0;
  const int w = gb.add_leaf(Shape{cout, C / o.groups, kh, kw},
                            1.f / std::sqrt(static_cast<float>(C / o.groups * kh * kw)));
  return call({*xi, w}, [o](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], o); });
}

std::optional<OpCall> pool(GraphBuilder& gb, bool max) {
  const auto xi = gb.pick([](const Shape& s) { return is4d(s) && s[2] >= 2 && s[3] >= 2; });
  if (!xi) return std::nullopt;
  struct P {
    int64_t k, s, p;
  };
  const P cfgs[] = {{3, 1, 1}, {2, 2, 0}, {3, 2, 1}};
  const P c = cfgs[gb.below(3)];
  return call({*xi}, [c, max](const std::vector<Tensor>& v) {
    return max ? max_pool2d(v[0], c.k, c.s, c.p) : avg_pool2d(v[0], c.k, c.s, c.p);
  });
}

std::optional<OpCall> bn(GraphBuilder& gb) {
  const auto xi = gb.pick([](const Shape& s) {
    return (is4d(s) && s[0] * s[2] * s[3] >= 8) || (is2d(s) && s[0] >= 4);
  });
  if (!xi) return std::nullopt;
  const int64_t C = gb.shape(*xi)[1];
  std::vector<int> args{*xi};
  const bool affine = gb.below(2) == 0;
  if (affine) {
    args.push_back(gb.add_leaf(Shape{C}, 0.5f));  // gamma around 0 +- 0.5, shifted below
    args.push_back(gb.add_leaf(Shape{C}, 0.5f));
  }
  BatchNormOptions opt;
  opt.training = gb.below(4) != 0;
  // Running statistics: constants re-made for every run (training updates them in place).
  std::vector<float> rm(static_cast<size_t>(C)), rv(static_cast<size_t>(C));
  for (auto& m : rm) m = 0.2f * gb.rng.normal();
  for (auto& s : rv) s = 0.5f + gb.rng.uniform();
  const bool stats = !opt.training || gb.below(2) == 0;
  return call(args, [=](const std::vector<Tensor>& v) {
    const Device d = v[0].device();
    Tensor m = stats ? Tensor::from_vector(rm, Shape{C}, d) : Tensor();
    Tensor s = stats ? Tensor::from_vector(rv, Shape{C}, d) : Tensor();
    Tensor gamma = affine ? add_scalar(v[1], 1.f) : Tensor();
    Tensor beta = affine ? v[2] : Tensor();
    return batch_norm(v[0], gamma, beta, m, s, opt);
  });
}

// The mixed op's arguments: K inputs of a's shape (partners), then w [K].
std::vector<int> mixed_args(GraphBuilder& gb, int a, int K) {
  std::vector<int> args{a};
  for (int k = 1; k < K; ++k) args.push_back(partner(gb, a));
  const auto w = gb.pick([K](const Shape& s) { return s.ndim() == 1 && s[0] == K; });
  args.push_back(w ? *w : gb.add_leaf(Shape{K}, 0.5f));
  return args;
}

// Half the calls fold constant drop-path-like row scales [K, rows] in (0 = dropped); empty: none.
std::vector<float> maybe_row_scales(GraphBuilder& gb, const Shape& s, int K) {
  std::vector<float> rs;
  if (s.ndim() >= 1 && s[0] >= 1 && gb.below(2) == 0) {
    const float pick[3] = {0.f, 1.25f, 0.6f};
    for (int64_t i = 0; i < K * s[0]; ++i) rs.push_back(pick[gb.below(3)]);
  }
  return rs;
}

Tensor row_scales_or_none(const std::vector<float>& rs, int K, int64_t rows, Device d) {
  return rs.empty() ? Tensor() : Tensor::from_vector(rs, Shape{K, rows}, d);
}

std::optional<OpCall> mixed(GraphBuilder& gb) {
  const auto a = gb.pick(any);
  if (!a) return std::nullopt;
  const int K = 2 + static_cast<int>(gb.below(3));
  const Shape s = gb.shape(*a);
  const std::vector<float> rs = maybe_row_scales(gb, s, K);
  return call(mixed_args(gb, *a, K), [K, rs, rows = s.ndim() >= 1 ? s[0] : 0](const std::vector<Tensor>& v) {
    const std::vector<Tensor> xs(v.begin(), v.begin() + K);
    if (rs.empty()) return weighted_sum(xs, v[static_cast<size_t>(K)]);
    return weighted_sum(xs, v[static_cast<size_t>(K)], row_scales_or_none(rs, K, rows, v[0].device()));
  });
}

// The mixed op with some inputs batch-normalised (DARTS's search ops' last batch norm folded in).
std::optional<OpCall> normalized_mixed(GraphBuilder& gb) {
  const auto a = gb.pick([](const Shape& s) {
    return (is4d(s) && s[0] * s[2] * s[3] >= 8) || (is2d(s) && s[0] >= 4);
  });
  if (!a) return std::nullopt;
  const int K = 1 + static_cast<int>(gb.below(4));
  const Shape s = gb.shape(*a);
  std::vector<bool> norm(static_cast<size_t>(K));
  for (int k = 0; k < K; ++k) norm[static_cast<size_t>(k)] = gb.below(3) != 0;
  const std::vector<float> rs = maybe_row_scales(gb, s, K);
  return call(mixed_args(gb, *a, K), [K, rs, norm, rows = s[0]](const std::vector<Tensor>& v) {
    const std::vector<Tensor> xs(v.begin(), v.begin() + K);
    return normalized_weighted_sum(xs, v[static_cast<size_t>(K)], row_scales_or_none(rs, K, rows, v[0].device()),
                                   norm);
  });
}

std::optional<OpCall> concat(GraphBuilder& gb) {
  const auto a = gb.pick(is4d);
  if (!a) return std::nullopt;
  const Shape s = gb.shape(*a);
  std::vector<int> args{*a};
  const int more = 1 + static_cast<int>(gb.below(2));
  for (int i = 0; i < more; ++i)
    args.push_back(gb.below(3) == 0 ? *a : gb.pick([&](const Shape& t) {
      return is4d(t) && t[0] == s[0] && t[2] == s[2] && t[3] == s[3];
    }).value_or(*a));
  return call(args, [](const std::vector<Tensor>& v) { return concat_channels(v); });
}

std::optional<OpCall> reshape_op(GraphBuilder& gb) {
  const auto a = gb.pick([](const Shape& s) { return s.ndim() >= 1 && s.numel() >= 2; });
  if (!a) return std::nullopt;
  const Shape s = gb.shape(*a);
  Shape to;
  if (s.ndim() == 4)
    to = gb.below(2) ? Shape{s[0] * s[1], 1, s[2], s[3]} : Shape{s[0], s[1] * s[2] * s[3]};
  else if (s.ndim() == 2)
    to = Shape{s.numel()};
  else
    to = Shape{1, s.numel()};
  return call({*a}, [to](const std::vector<Tensor>& v) { return v[0].reshape(to); });
}

std::optional<OpCall> classes(GraphBuilder& gb, bool loss) {
  const auto a = gb.pick([](const Shape& s) { return is2d(s) && s[1] >= 2; });
  if (!a) return std::nullopt;
  const Shape s = gb.shape(*a);
  std::vector<int32_t> labels(static_cast<size_t>(s[0]));
  for (auto& l : labels) l = static_cast<int32_t>(gb.below(s[1]));
  return call({*a}, [labels, loss](const std::vector<Tensor>& v) {
    const Tensor y = Tensor::from_ints(labels, Shape{static_cast<int64_t>(labels.size())}, v[0].device());
    return loss ? cross_entropy(v[0], y) : accuracy(v[0], y);
  });
}

std::vector<OpSpec> make_specs() {
  std::vector<OpSpec> s;
  auto add_spec = [&](const char* name, std::function<std::optional<OpCall>(GraphBuilder&)> b, double fwd = 1e-4,
                      double bwd = 1e-3) { s.push_back(OpSpec{name, std::move(b), fwd, bwd}); };
  add_spec("add", [](GraphBuilder& gb) { return elementwise_binary(gb, add); }, 1e-5, 1e-5);
  add_spec("sub", [](GraphBuilder& gb) { return elementwise_binary(gb, sub); }, 1e-5, 1e-5);
  add_spec("mul", [](GraphBuilder& gb) { return elementwise_binary(gb, mul); }, 1e-5, 1e-5);
  add_spec("add_scalar", [](GraphBuilder& gb) {
    const float c = gb.rng.normal();
    return unary(gb, any, [c](const std::vector<Tensor>& v) { return add_scalar(v[0], c); });
  }, 1e-5, 1e-5);
  add_spec("mul_scalar", [](GraphBuilder& gb) {
    const float c = 2.f * gb.rng.normal();
    return unary(gb, any, [c](const std::vector<Tensor>& v) { return mul_scalar(v[0], c); });
  }, 1e-5, 1e-5);
  add_spec("relu", [](GraphBuilder& gb) { return unary(gb, any, [](const std::vector<Tensor>& v) { return relu(v[0]); }); },
           1e-5, 1e-5);
  add_spec("sum", [](GraphBuilder& gb) { return unary(gb, any, [](const std::vector<Tensor>& v) { return sum(v[0]); }); },
           1e-5, 1e-5);
  add_spec("mean", [](GraphBuilder& gb) { return unary(gb, any, [](const std::vector<Tensor>& v) { return mean(v[0]); }); },
           1e-5, 1e-5);
  add_spec("sum_squares",
           [](GraphBuilder& gb) { return unary(gb, any, [](const std::vector<Tensor>& v) { return sum_squares(v[0]); }); },
           1e-5, 1e-5);
  add_spec("reshape", reshape_op, 0, 0);
  add_spec("linear", [](GraphBuilder& gb) -> std::optional<OpCall> {
    const auto x = gb.pick(is2d);
    if (!x) return std::nullopt;
    const int64_t in = gb.shape(*x)[1], out = 2 + gb.below(4);
    std::vector<int> args{*x, gb.add_leaf(Shape{out, in}, 1.f / std::sqrt(static_cast<float>(in)))};
    const bool bias = gb.below(2) == 0;
    if (bias) args.push_back(gb.add_leaf(Shape{out}, 0.5f));
    return call(args, [bias](const std::vector<Tensor>& v) { return linear(v[0], v[1], bias ? v[2] : Tensor()); });
  });
  add_spec("weighted_sum", mixed);
  add_spec("normalized_weighted_sum", normalized_mixed);
  add_spec("softmax", [](GraphBuilder& gb) {
    const float T = std::array<float, 3>{0.5f, 1.f, 2.f}[static_cast<size_t>(gb.below(3))];
    return unary(gb, [](const Shape& s) { return s.ndim() == 1 || is2d(s); },
                 [T](const std::vector<Tensor>& v) { return softmax(v[0], T); });
  }, 1e-5, 1e-4);
  add_spec("select_row", [](GraphBuilder& gb) -> std::optional<OpCall> {
    const auto a = gb.pick(is2d);
    if (!a) return std::nullopt;
    const int64_t r = gb.below(gb.shape(*a)[0]);
    return call({*a}, [r](const std::vector<Tensor>& v) { return select_row(v[0], r); });
  }, 0, 0);
  add_spec("cross_entropy", [](GraphBuilder& gb) { return classes(gb, true); }, 1e-5, 1e-4);
  add_spec("argmax", [](GraphBuilder& gb) {
    return unary(gb, [](const Shape& s) { return is2d(s) && s[1] >= 2; },
                 [](const std::vector<Tensor>& v) { return argmax(v[0]); });
  }, 0, 0);
  add_spec("accuracy", [](GraphBuilder& gb) { return classes(gb, false); }, 1e-7, 0);
  add_spec("conv2d", conv);
  add_spec("max_pool2d", [](GraphBuilder& gb) { return pool(gb, true); }, 0, 1e-4);
  add_spec("avg_pool2d", [](GraphBuilder& gb) { return pool(gb, false); }, 1e-4, 1e-4);
  add_spec("global_avg_pool", [](GraphBuilder& gb) {
    return unary(gb, is4d, [](const std::vector<Tensor>& v) { return global_avg_pool(v[0]); });
  }, 1e-5, 1e-5);
  add_spec("batch_norm", bn);
  add_spec("concat_channels", concat, 0, 1e-5);
  add_spec("slice_channels", [](GraphBuilder& gb) -> std::optional<OpCall> {
    const auto a = gb.pick([](const Shape& s) { return is4d(s) && s[1] >= 2; });
    if (!a) return std::nullopt;
    const int64_t C = gb.shape(*a)[1], c0 = gb.below(C - 1), n = 1 + gb.below(C - c0);
    return call({*a}, [c0, n](const std::vector<Tensor>& v) { return slice_channels(v[0], c0, n); });
  }, 0, 1e-5);
  add_spec("crop2d", [](GraphBuilder& gb) -> std::optional<OpCall> {
    const auto a = gb.pick([](const Shape& s) { return is4d(s) && s[2] >= 2 && s[3] >= 2; });
    if (!a) return std::nullopt;
    const Shape s = gb.shape(*a);
    const int64_t h0 = gb.below(s[2] - 1), w0 = gb.below(s[3] - 1);
    const int64_t h = 1 + gb.below(s[2] - h0), w = 1 + gb.below(s[3] - w0);
    return call({*a}, [=](const std::vector<Tensor>& v) { return crop2d(v[0], h0, w0, h, w); });
  }, 0, 1e-5);
  add_spec("flatten", [](GraphBuilder& gb) {
    return unary(gb, is4d, [](const std::vector<Tensor>& v) { return flatten(v[0]); });
  }, 0, 1e-5);
  add_spec("drop_path", [](GraphBuilder& gb) {
    const uint64_t seed = gb.rng.next_u64();
    return unary(gb, [](const Shape& s) { return s.ndim() >= 2; }, [seed](const std::vector<Tensor>& v) {
      Rng r(seed);  // the same mask on every run of this call
      return drop_path(v[0], 0.4f, r);
    });
  }, 1e-5, 1e-5);
  add_spec("sigmoid", [](GraphBuilder& gb) {
    return unary(gb, any, [](const std::vector<Tensor>& v) { return sigmoid(v[0]); });
  }, 1e-5, 1e-5);
  add_spec("tanh", [](GraphBuilder& gb) {
    return unary(gb, any, [](const std::vector<Tensor>& v) { return metanas::tanh(v[0]); });
  }, 1e-5, 1e-5);
  add_spec("exp", [](GraphBuilder& gb) {
    // Inputs of the graph can be large (products, sums): exp of a tanh stays in range.
    return unary(gb, any, [](const std::vector<Tensor>& v) { return metanas::exp(metanas::tanh(v[0])); });
  }, 1e-5, 1e-5);
  add_spec("log_softmax", [](GraphBuilder& gb) -> std::optional<OpCall> {
    const auto a = gb.pick([](const Shape& s) { return is2d(s) && s[1] >= 2; });
    if (!a) return std::nullopt;
    const Shape s = gb.shape(*a);
    std::vector<int32_t> mask;
    if (gb.below(2) == 0) {  // a random action mask with at least one allowed entry per row
      mask.resize(static_cast<size_t>(s.numel()));
      for (auto& m : mask) m = gb.below(3) != 0;
      for (int64_t r = 0; r < s[0]; ++r) mask[static_cast<size_t>(r * s[1] + gb.below(s[1]))] = 1;
    }
    return call({*a}, [mask, s](const std::vector<Tensor>& v) {
      const Tensor m = mask.empty() ? Tensor() : Tensor::from_ints(mask, s, v[0].device());
      Tensor y = log_softmax(v[0], m);
      // Masked entries are -1e30: a loss sees them through exp (the probabilities), as PPO does.
      return m.defined() ? metanas::exp(y) : y;
    });
  }, 1e-5, 1e-4);
  add_spec("gather_cols", [](GraphBuilder& gb) -> std::optional<OpCall> {
    const auto a = gb.pick(is2d);
    if (!a) return std::nullopt;
    const Shape s = gb.shape(*a);
    std::vector<int32_t> idx(static_cast<size_t>(s[0]));
    for (auto& i : idx) i = static_cast<int32_t>(gb.below(s[1]));
    return call({*a}, [idx](const std::vector<Tensor>& v) {
      return gather_cols(v[0], Tensor::from_ints(idx, Shape{static_cast<int64_t>(idx.size())}, v[0].device()));
    });
  }, 0, 0);
  add_spec("clamp", [](GraphBuilder& gb) {
    const float lo = -0.5f - gb.rng.uniform(), hi = 0.5f + gb.rng.uniform();
    return unary(gb, any, [lo, hi](const std::vector<Tensor>& v) { return clamp(v[0], lo, hi); });
  }, 0, 0);
  add_spec("minimum", [](GraphBuilder& gb) { return elementwise_binary(gb, minimum); }, 0, 0);
  return s;
}

}  // namespace

std::optional<int> GraphBuilder::pick(const std::function<bool(const Shape&)>& pred) {
  std::vector<int> ok;
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].dtype() == DType::F32 && pred(values[i].shape())) ok.push_back(static_cast<int>(i));
  if (ok.empty()) return std::nullopt;
  // Half the time one of the three newest candidates: graphs grow deep, not only wide.
  if (below(2) == 0) {
    const size_t n = std::min<size_t>(3, ok.size());
    return ok[ok.size() - 1 - static_cast<size_t>(below(static_cast<int64_t>(n)))];
  }
  return ok[static_cast<size_t>(below(static_cast<int64_t>(ok.size())))];
}

int GraphBuilder::add_leaf(const Shape& s, float stddev) {
  values.push_back(Tensor::randn(s, rng, stddev));
  leaf.push_back(true);
  return static_cast<int>(values.size()) - 1;
}

void seed_pool(GraphBuilder& gb) {
  const int64_t C = 2 + gb.below(3), H = 4 + gb.below(3);
  gb.add_leaf(Shape{3, C, H, H});
  gb.add_leaf(Shape{3, C, H, H});
  gb.add_leaf(Shape{3, 1 + gb.below(3), H, H});
  gb.add_leaf(Shape{4, 5});
  gb.add_leaf(Shape{3, 4});  // architecture logits
  gb.add_leaf(Shape{3}, 0.5f);
}

const std::vector<TableOp>& table_ops() {
  static const std::vector<TableOp> ops = [] {
    std::vector<TableOp> v;
#define GRAD true
#define NOGRAD false
#define MN_OP(name, grad) v.push_back(TableOp{#name, grad});
#include "metanas/kernels/op_table.def"
#undef GRAD
#undef NOGRAD
    return v;
  }();
  return ops;
}

const OpSpec* find_spec(const std::string& op) {
  static const std::vector<OpSpec> specs = make_specs();
  for (const auto& s : specs)
    if (s.name == op) return &s;
  return nullptr;
}

std::vector<int> OpCall::distinct_args() const {
  std::vector<int> uniq;
  for (int a : args)
    if (std::find(uniq.begin(), uniq.end(), a) == uniq.end()) uniq.push_back(a);
  return uniq;
}

std::function<Tensor(const std::vector<Tensor>&)> OpCall::over_distinct() const {
  const std::vector<int> uniq = distinct_args();
  std::vector<size_t> slot;
  for (int a : args) slot.push_back(static_cast<size_t>(std::find(uniq.begin(), uniq.end(), a) - uniq.begin()));
  return [f = run, slot](const std::vector<Tensor>& v) {
    std::vector<Tensor> in;
    for (size_t k : slot) in.push_back(v[k]);
    return f(in);
  };
}

}  // namespace metanas::testing
