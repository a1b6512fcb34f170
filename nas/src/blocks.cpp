// Candidate ops, preprocessing blocks and parameter initialisation shared by
// the NAS networks (see blocks.h).
#include "blocks.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "metanas/engine/error.h"

namespace metanas::nas::detail {

// ---- parameters ----

int ParamBuilder::declare(const std::string& name, const Shape& shape, Kind kind, float a) {
  const int idx = ps_.add(name, shape);
  inits_.push_back({idx, kind, a});
  return idx;
}

int ParamBuilder::conv(const std::string& name, int64_t cout, int64_t cin_per_group, int64_t kh,
                       int64_t kw) {
  const double fan_in = static_cast<double>(cin_per_group * kh * kw);
  return declare(name, Shape{cout, cin_per_group, kh, kw}, Kind::Uniform,
                 static_cast<float>(1.0 / std::sqrt(fan_in)));
}

Bn ParamBuilder::bn(const std::string& name, int64_t channels, bool affine) {
  Bn b;
  if (!affine) return b;
  b.gamma = declare(name + ".gamma", Shape{channels}, Kind::Constant, 1.f);
  b.beta = declare(name + ".beta", Shape{channels}, Kind::Constant, 0.f);
  return b;
}

int ParamBuilder::linear_weight(const std::string& name, int64_t out, int64_t in) {
  return declare(name, Shape{out, in}, Kind::Uniform,
                 static_cast<float>(1.0 / std::sqrt(static_cast<double>(in))));
}

int ParamBuilder::linear_bias(const std::string& name, int64_t out, int64_t in) {
  return declare(name, Shape{out}, Kind::Uniform,
                 static_cast<float>(1.0 / std::sqrt(static_cast<double>(in))));
}

int ParamBuilder::uniform(const std::string& name, const Shape& shape, float bound) {
  return declare(name, shape, Kind::Uniform, bound);
}

int ParamBuilder::constant(const std::string& name, const Shape& shape, float value) {
  return declare(name, shape, Kind::Constant, value);
}

int ParamBuilder::normal(const std::string& name, const Shape& shape, float stddev) {
  return declare(name, shape, Kind::Normal, stddev);
}

void ParamBuilder::finish(Rng& rng) {
  ps_.finalize();
  // Fill on the host in declaration order, then one copy to the device.
  std::vector<float> v(static_cast<size_t>(ps_.numel()), 0.f);
  for (const Init& in : inits_) {
    const int64_t off = ps_.offset(in.index);
    const int64_t n = ps_.shape(in.index).numel();
    for (int64_t i = 0; i < n; ++i) {
      float x = 0.f;
      switch (in.kind) {
        case Kind::Uniform: x = (2.f * rng.uniform() - 1.f) * in.a; break;
        case Kind::Constant: x = in.a; break;
        case Kind::Normal: x = in.a * rng.normal(); break;
      }
      v[static_cast<size_t>(off + i)] = x;
    }
  }
  if (!v.empty()) ps_.values().copy_(Tensor::from_vector(v, Shape{ps_.numel()}));
}

int64_t count_params(const ParamSet& ps, const std::vector<int>& indices) {
  int64_t n = 0;
  for (int i : indices) n += ps.shape(i).numel();
  return n;
}

std::vector<int> resolve_reductions(int layers, const std::vector<int>& given) {
  std::vector<int> r = given;
  if (r.empty()) {
    // floor(L/3) and round(2L/3): cells 1 and 3 of 4 (MetaNAS), 2 and 5 of 8 (DARTS).
    for (int k : {layers / 3, (2 * layers + 1) / 3})
      if (k < layers) r.push_back(k);
  }
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  return r;
}

// ---- blocks ----

Tensor apply_bn(const Tensor& x, const ParamSet& ps, const Bn& bn) {
  BatchNormOptions o;
  o.training = true;  // batch statistics, no running statistics
  const Tensor gamma = bn.gamma >= 0 ? ps[bn.gamma] : Tensor();
  const Tensor beta = bn.beta >= 0 ? ps[bn.beta] : Tensor();
  return batch_norm(x, gamma, beta, Tensor(), Tensor(), o);
}

FactorizedReduce make_factorized_reduce(ParamBuilder& b, const std::string& name, int64_t cin,
                                        int64_t cout, bool affine, bool pad_odd) {
  MN_CHECK(cout % 2 == 0, "FactorizedReduce ", name, ": output channels must be even, got ", cout);
  FactorizedReduce fr;
  fr.pad_odd = pad_odd;
  fr.conv_a = b.conv(name + ".conv_a", cout / 2, cin, 1, 1);
  fr.conv_b = b.conv(name + ".conv_b", cout / 2, cin, 1, 1);
  fr.bn = b.bn(name + ".bn", cout, affine);
  return fr;
}

Tensor apply(const FactorizedReduce& fr, const ParamSet& ps, const Tensor& x) {
  MN_CHECK(x.ndim() == 4, "FactorizedReduce: input must be 4-D, got ", x.describe());
  Conv2dOptions o = Conv2dOptions::same(2, 0);
  o.relu_input = true;  // ReLU folded into the convs (crop commutes with ReLU)
  const int64_t H = x.dim(2), W = x.dim(3);
  // Shift by one pixel in each even-sized dim (odd sizes would lose a row).
  const int64_t sh = H % 2 == 0 ? 1 : 0, sw = W % 2 == 0 ? 1 : 0;
  Tensor shifted = (sh || sw) ? crop2d(x, sh, sw, H - sh, W - sw) : x;
  Conv2dOptions oa = o;
  if (fr.pad_odd) {
    // T-NAS: an odd dim is padded by one zero in front for the first conv
    // (F.pad(x, (1, 0, 1, 0))), whose padded-input pixel 2i is input pixel 2i - 1.
    oa.pad_top = 1 - sh;
    oa.pad_left = 1 - sw;
  }
  Tensor a = conv2d(x, ps[fr.conv_a], oa);
  Tensor c = conv2d(shifted, ps[fr.conv_b], o);
  return apply_bn(concat_channels({a, c}), ps, fr.bn);
}

ReluConvBn make_relu_conv_bn(ParamBuilder& b, const std::string& name, int64_t cin, int64_t cout,
                             bool affine) {
  ReluConvBn r;
  r.conv = b.conv(name + ".conv", cout, cin, 1, 1);
  r.bn = b.bn(name + ".bn", cout, affine);
  return r;
}

Tensor apply(const ReluConvBn& r, const ParamSet& ps, const Tensor& x) {
  Conv2dOptions o;
  o.relu_input = true;
  return apply_bn(conv2d(x, ps[r.conv], o), ps, r.bn);
}

Tensor apply(const Preprocess& p, const ParamSet& ps, const Tensor& x) {
  return p.reduce ? apply(p.fr, ps, x) : apply(p.rcb, ps, x);
}

Preprocess make_preprocess(ParamBuilder& b, const std::string& name, int64_t cin, int64_t cout, bool reduce,
                           bool affine, bool pad_odd) {
  Preprocess p;
  p.reduce = reduce;
  if (reduce)
    p.fr = make_factorized_reduce(b, name, cin, cout, affine, pad_odd);
  else
    p.rcb = make_relu_conv_bn(b, name, cin, cout, affine);
  return p;
}

Tensor CellStates::get(int j) {
  Tensor& s = states_[static_cast<size_t>(j)];
  if (!s.defined()) s = apply(*pre_[j], ps_, *in_[j]);  // only inputs 0 and 1 start undefined
  return s;
}

Stem make_stem(ParamBuilder& b, int64_t cin, int64_t cout, const std::string& kind) {
  Stem s;
  if (kind == "pooled") {
    MN_CHECK(cout % 2 == 0, "pooled stem: output channels must be even, got ", cout);
    s.conv = b.conv("stem.conv", cout / 2, cin, 3, 3);
    s.bn = b.bn("stem.bn", cout / 2, /*affine=*/true);
    s.conv2 = b.conv("stem.conv2", cout, cout / 2, 3, 3);
    s.bn2 = b.bn("stem.bn2", cout, /*affine=*/true);
    return s;
  }
  MN_CHECK(kind == "conv", "unknown stem '", kind, "' (valid: conv, pooled)");
  s.conv = b.conv("stem.conv", cout, cin, 3, 3);
  s.bn = b.bn("stem.bn", cout, /*affine=*/true);
  return s;
}

Tensor apply(const Stem& s, const ParamSet& ps, const Tensor& x) {
  Tensor h = apply_bn(conv2d(x, ps[s.conv], Conv2dOptions::same(1, 1)), ps, s.bn);
  if (s.conv2 < 0) return h;
  // Max pool, then ReLU (T-NAS's order), folded into the second conv.
  Conv2dOptions o = Conv2dOptions::same(1, 1);
  o.relu_input = true;
  h = apply_bn(conv2d(max_pool2d(h, 2, 2, 0), ps[s.conv2], o), ps, s.bn2);
  return max_pool2d(h, 2, 2, 0);
}

Classifier make_classifier(ParamBuilder& b, int64_t num_classes, int64_t in) {
  Classifier c;
  c.weight = b.linear_weight("classifier.weight", num_classes, in);
  c.bias = b.linear_bias("classifier.bias", num_classes, in);
  return c;
}

Tensor apply(const Classifier& c, const ParamSet& ps, const Tensor& x) {
  return linear(global_avg_pool(x), ps[c.weight], ps[c.bias]);
}

void check_input(const char* who, const Tensor& x, int64_t in_channels) {
  MN_CHECK(x.defined() && x.ndim() == 4 && x.dim(1) == in_channels, who, ": expected input [N, ",
           in_channels, ", H, W], got ", x.defined() ? x.describe() : std::string("an undefined tensor"));
}

bool check_cell_forward(const char* who, const Tensor& x, int64_t in_channels, Device device,
                        const ForwardContext& ctx) {
  check_input(who, x, in_channels);
  MN_CHECK(x.device() == device, who, ": input on ", device_name(x.device()), " but the network is on ",
           device_name(device));
  const bool drop = ctx.training && ctx.drop_path_prob > 0.f;
  MN_CHECK(!drop || ctx.rng, who, ": drop-path needs ForwardContext::rng");
  MN_CHECK(ctx.drop_path_prob >= 0.f && ctx.drop_path_prob < 1.f, who,
           ": drop_path_prob must be in [0, 1), got ", ctx.drop_path_prob);
  return drop;
}

PhiloxKey forward_drop_key(const ForwardContext& ctx) {
  if (ctx.drop_key) return *ctx.drop_key;
  PhiloxKey k;
  k.seed = ctx.rng->next_u64();
  return k;
}

Tensor keyed_drop_path(const Tensor& y, const ForwardContext& ctx, PhiloxKey key, uint32_t op_index) {
  key.op += op_index;
  // Device words only for the context's own key (not one drawn from rng).
  if (ctx.drop_key && ctx.drop_key_words.defined()) return drop_path(y, ctx.drop_path_prob, key, ctx.drop_key_words);
  return drop_path(y, ctx.drop_path_prob, key);
}

Tensor MixedOpSum::sum(const std::vector<Tensor>& xs, const Tensor& w, const ForwardContext& ctx, PhiloxKey key,
                       int64_t N, Device device) const {
  Tensor rs;
  if (any_dropped) {
    std::vector<int64_t> all = ops;
    all.resize(xs.size(), -1);
    const bool words = ctx.drop_key && ctx.drop_key_words.defined();
    rs = drop_path_scales(N, ctx.drop_path_prob, key, all, device, words ? &ctx.drop_key_words : nullptr);
  }
  if (any_normalized) {
    std::vector<bool> norm = normalize;
    norm.resize(xs.size(), false);
    return normalized_weighted_sum(xs, w, rs, norm);
  }
  return rs.defined() ? weighted_sum(xs, w, rs) : weighted_sum(xs, w);
}

std::vector<int> OpBlock::param_indices() const {
  std::vector<int> r = convs;
  for (const Bn& b : bn) {
    if (b.gamma >= 0) r.push_back(b.gamma);
    if (b.beta >= 0) r.push_back(b.beta);
  }
  if (fr.conv_a >= 0) {
    r.push_back(fr.conv_a);
    r.push_back(fr.conv_b);
    if (fr.bn.gamma >= 0) r.push_back(fr.bn.gamma);
    if (fr.bn.beta >= 0) r.push_back(fr.bn.beta);
  }
  return r;
}

namespace {
// Declares the depthwise KxK, pointwise 1x1 and BN that relu_dw_pw_bn applies
// (names <n>.dw<k>, .pw<k>, .bn<k>; the BN goes to op.bn[slot]).
void declare_dw_pw_bn(ParamBuilder& b, OpBlock& op, const std::string& n, const std::string& k, int slot,
                      bool affine, int kernel = 3) {
  op.convs.push_back(b.conv(n + ".dw" + k, op.C, 1, kernel, kernel));
  op.convs.push_back(b.conv(n + ".pw" + k, op.C, op.C, 1, 1));
  op.bn[slot] = b.bn(n + ".bn" + k, op.C, affine);
}
}  // namespace

OpBlock make_op(ParamBuilder& b, const std::string& name, Primitive prim, int64_t C, int stride,
                bool affine, bool reduce_pad_odd, bool pool_bn) {
  MN_CHECK(stride == 1 || stride == 2, "op ", name, ": stride must be 1 or 2, got ", stride);
  OpBlock op;
  op.prim = prim;
  op.stride = stride;
  op.C = C;
  const std::string n = name + "." + primitive_name(prim);
  switch (prim) {
    case Primitive::MaxPool3x3:
    case Primitive::AvgPool3x3:
      op.pool_bn = pool_bn;
      if (pool_bn) op.bn[0] = b.bn(n + ".bn", C, affine);
      break;
    case Primitive::SkipConnect:
      if (stride == 2) op.fr = make_factorized_reduce(b, n, C, C, affine, reduce_pad_odd);
      break;
    case Primitive::Conv1x5_5x1:
      op.convs.push_back(b.conv(n + ".conv1x5", C, C, 1, 5));
      op.convs.push_back(b.conv(n + ".conv5x1", C, C, 5, 1));
      op.bn[0] = b.bn(n + ".bn", C, affine);
      break;
    case Primitive::Conv3x3:
    case Primitive::DilConv3x3:
      declare_dw_pw_bn(b, op, n, "", 0, affine);
      break;
    case Primitive::SepConv3x3:
      declare_dw_pw_bn(b, op, n, "1", 0, affine);
      declare_dw_pw_bn(b, op, n, "2", 1, affine);
      break;
    case Primitive::None:
      break;  // no parameters
    case Primitive::SepConv5x5:
      declare_dw_pw_bn(b, op, n, "1", 0, affine, 5);
      declare_dw_pw_bn(b, op, n, "2", 1, affine, 5);
      break;
    case Primitive::DilConv5x5:
      declare_dw_pw_bn(b, op, n, "", 0, affine, 5);
      break;
    case Primitive::SharpAvgPool3x3:
    case Primitive::SharpMaxPool3x3:
      break;  // plain pools (SharpDARTS's ResizablePool at C_in == C_out)
    case Primitive::SharpSepConv3x3:
    case Primitive::FloodConv3x3:
    case Primitive::SharpDilConv3x3:
    case Primitive::DilFloodConv3x3: {
      const bool flood = prim == Primitive::FloodConv3x3 || prim == Primitive::DilFloodConv3x3;
      const int64_t mid = flood ? 4 * C : C;
      op.convs.push_back(b.conv(n + ".dw1", C, 1, 3, 3));
      op.convs.push_back(b.conv(n + ".pw1", mid, C, 1, 1));
      op.bn[0] = b.bn(n + ".bn1", mid, affine);
      op.convs.push_back(b.conv(n + ".dw2", mid, 1, 3, 3));
      op.convs.push_back(b.conv(n + ".pw2", C, mid, 1, 1));
      op.bn[1] = b.bn(n + ".bn2", C, affine);
      break;
    }
  }
  return op;
}

namespace {
// ReLU, depthwise KxK (stride, dilation; "same" padding), pointwise 1x1, BN.
// ReLU, depthwise conv, pointwise conv (the BN after it is the caller's).
Tensor relu_dw_pw(const Tensor& x, const ParamSet& ps, int dw, int pw, int64_t C, int stride, int dilation,
                  int kernel = 3) {
  Conv2dOptions o = Conv2dOptions::same(stride, dilation * (kernel - 1) / 2, dilation, C);
  o.relu_input = true;
  return conv2d(conv2d(x, ps[dw], o), ps[pw]);
}
Tensor relu_dw_pw_bn(const Tensor& x, const ParamSet& ps, int dw, int pw, const Bn& bn, int64_t C,
                     int stride, int dilation, int kernel = 3) {
  return apply_bn(relu_dw_pw(x, ps, dw, pw, C, stride, dilation, kernel), ps, bn);
}
// SharpDARTS's SharpSepConv: ReLU, depthwise 3x3 (stride, dilation), pointwise
// C -> M, BN, ReLU, depthwise 3x3 on M (stride 1, dilation 1), pointwise M -> C, BN.
Tensor sharp_sep_conv(const OpBlock& op, const ParamSet& ps, const Tensor& x, int dilation) {
  Conv2dOptions o1 = Conv2dOptions::same(op.stride, dilation, dilation, op.C);
  o1.relu_input = true;
  Tensor h = apply_bn(conv2d(conv2d(x, ps[op.convs[0]], o1), ps[op.convs[1]]), ps, op.bn[0]);
  const int64_t mid = ps[op.convs[1]].dim(0);
  Conv2dOptions o2 = Conv2dOptions::same(1, 1, 1, mid);
  o2.relu_input = true;
  return apply_bn(conv2d(conv2d(h, ps[op.convs[2]], o2), ps[op.convs[3]]), ps, op.bn[1]);
}

// PyTorch's nn.AvgPool2d(3, s, 1) default (count_include_pad): the window sum
// over 9, i.e. a depthwise conv with constant weights 1/9.
Tensor avg_pool_include_pad(const Tensor& x, int stride) {
  const int64_t C = x.dim(1);
  Tensor w = Tensor::full(Shape{C, 1, 3, 3}, 1.f / 9.f, x.device());
  return conv2d(x, w, Conv2dOptions::same(stride, 1, 1, C));
}
}  // namespace

bool fold_bn_enabled(Device device) {
  static const int mode = [] {
    const char* e = std::getenv("METANAS_FOLD_BN");
    const std::string v = e ? e : "";
    MN_CHECK(v.empty() || v == "0" || v == "1" || v == "cpu",
             "METANAS_FOLD_BN must be 0 (off), 1 (on every device) or cpu (the default), got '", v, "'");
    return v == "0" ? 0 : v == "1" ? 1 : 2;
  }();
  return mode == 1 || (mode == 2 && device == Device::CPU);
}

Tensor apply(const OpBlock& op, const ParamSet& ps, const Tensor& x, bool fold, bool& folded) {
  folded = false;
  auto last_bn = [&](const Tensor& h, const Bn& bn) {
    if (!fold || bn.gamma >= 0 || bn.beta >= 0) return apply_bn(h, ps, bn);
    folded = true;
    return h;
  };
  MN_CHECK(x.ndim() == 4 && x.dim(1) == op.C, primitive_name(op.prim), ": expected [N, ", op.C,
           ", H, W], got ", x.describe());
  switch (op.prim) {
    case Primitive::MaxPool3x3: {
      Tensor y = max_pool2d(x, 3, op.stride, 1);
      return op.pool_bn ? last_bn(y, op.bn[0]) : y;
    }
    case Primitive::AvgPool3x3: {
      Tensor y = avg_pool2d(x, 3, op.stride, 1);
      return op.pool_bn ? last_bn(y, op.bn[0]) : y;
    }
    case Primitive::SkipConnect:
      return op.stride == 1 ? x : apply(op.fr, ps, x);
    case Primitive::Conv1x5_5x1: {
      Conv2dOptions a;
      a.stride_h = a.stride_w = op.stride;
      a.pad_left = a.pad_right = 2;
      a.relu_input = true;
      Conv2dOptions c;
      c.pad_top = c.pad_bottom = 2;
      Tensor h = conv2d(x, ps[op.convs[0]], a);
      return last_bn(conv2d(h, ps[op.convs[1]], c), op.bn[0]);
    }
    case Primitive::Conv3x3:
      return last_bn(relu_dw_pw(x, ps, op.convs[0], op.convs[1], op.C, op.stride, 1), op.bn[0]);
    case Primitive::SepConv3x3: {
      Tensor h = relu_dw_pw_bn(x, ps, op.convs[0], op.convs[1], op.bn[0], op.C, op.stride, 1);
      return last_bn(relu_dw_pw(h, ps, op.convs[2], op.convs[3], op.C, 1, 1), op.bn[1]);
    }
    case Primitive::DilConv3x3:
      return last_bn(relu_dw_pw(x, ps, op.convs[0], op.convs[1], op.C, op.stride, 2), op.bn[0]);
    case Primitive::None:
      // DARTS's Zero: x[:, :, ::s, ::s] * 0. Constant, so no graph is needed.
      return Tensor::zeros(Shape{x.dim(0), op.C, strided_size(x.dim(2), op.stride),
                                 strided_size(x.dim(3), op.stride)},
                           DType::F32, x.device());
    case Primitive::SepConv5x5: {
      Tensor h = relu_dw_pw_bn(x, ps, op.convs[0], op.convs[1], op.bn[0], op.C, op.stride, 1, 5);
      return last_bn(relu_dw_pw(h, ps, op.convs[2], op.convs[3], op.C, 1, 1, 5), op.bn[1]);
    }
    case Primitive::DilConv5x5:
      return last_bn(relu_dw_pw(x, ps, op.convs[0], op.convs[1], op.C, op.stride, 2, 5), op.bn[0]);
    case Primitive::SharpAvgPool3x3:
      return avg_pool_include_pad(x, op.stride);
    case Primitive::SharpMaxPool3x3:
      return max_pool2d(x, 3, op.stride, 1);
    case Primitive::SharpSepConv3x3:
    case Primitive::FloodConv3x3:
      return sharp_sep_conv(op, ps, x, 1);
    case Primitive::SharpDilConv3x3:
    case Primitive::DilFloodConv3x3:
      return sharp_sep_conv(op, ps, x, 2);
  }
  MN_THROW("unknown primitive ", static_cast<int>(op.prim));
}

Tensor apply(const OpBlock& op, const ParamSet& ps, const Tensor& x) {
  bool folded = false;
  return apply(op, ps, x, false, folded);
}

}  // namespace metanas::nas::detail
