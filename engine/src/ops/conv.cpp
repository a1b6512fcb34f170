// conv2d (NCHW, no bias; stride, asymmetric padding, dilation, groups, fused
// input relu) and conv_out_size: checks, forward and backward.
#include "ops/op_util.h"

namespace metanas {

using namespace detail;

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                      int64_t dilation) {
  MN_CHECK(in >= 1 && k >= 1 && stride >= 1 && dilation >= 1 && pad_lo >= 0 && pad_hi >= 0,
           "conv_out_size: needs in >= 1, k >= 1, stride >= 1, dilation >= 1, pads >= 0; got in ",
           in, ", k ", k, ", stride ", stride, ", pads ", pad_lo, "/", pad_hi, ", dilation ", dilation);
  const int64_t span = dilation * (k - 1) + 1;  // extent of the dilated window
  const int64_t padded = in + pad_lo + pad_hi;
  MN_CHECK(padded >= span, "conv_out_size: window of ", k, " (dilation ", dilation, ", span ", span,
           ") does not fit input ", in, " with padding ", pad_lo, "+", pad_hi);
  return (padded - span) / stride + 1;
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Conv2dOptions& opt) {
  const char* op = "conv2d";
  check_f32(op, x, "input x");
  check_f32(op, w, "weight");
  check_ndim(op, x, 4, "input x [N, Cin, H, W]");
  check_ndim(op, w, 4, "weight [Cout, Cin/groups, KH, KW]");
  const Device dev = common_device(op, {x, w});
  MN_CHECK(opt.groups >= 1, "conv2d: groups must be >= 1, got ", opt.groups);
  MN_CHECK(opt.stride_h >= 1 && opt.stride_w >= 1, "conv2d: strides must be >= 1, got ",
           opt.stride_h, "x", opt.stride_w);
  MN_CHECK(opt.dil_h >= 1 && opt.dil_w >= 1, "conv2d: dilations must be >= 1, got ", opt.dil_h,
           "x", opt.dil_w);
  MN_CHECK(opt.pad_top >= 0 && opt.pad_bottom >= 0 && opt.pad_left >= 0 && opt.pad_right >= 0,
           "conv2d: padding must be >= 0, got top/bottom/left/right ", opt.pad_top, "/",
           opt.pad_bottom, "/", opt.pad_left, "/", opt.pad_right);

  ConvGeom g;
  g.N = x.dim(0);
  g.Cin = x.dim(1);
  g.H = x.dim(2);
  g.W = x.dim(3);
  g.Cout = w.dim(0);
  g.KH = w.dim(2);
  g.KW = w.dim(3);
  MN_CHECK(g.Cout >= 1 && w.dim(1) >= 1 && g.KH >= 1 && g.KW >= 1,
           "conv2d: weight ", w.shape(), " has an empty dimension");
  MN_CHECK(g.Cin == w.dim(1) * opt.groups, "conv2d: weight ", w.shape(),
           " needs input channels/groups = ", w.dim(1), ", i.e. ", w.dim(1) * opt.groups,
           " input channels with groups = ", opt.groups, ", but x ", x.describe(), " has ", g.Cin);
  MN_CHECK(g.Cout % opt.groups == 0, "conv2d: weight ", w.shape(), " has ", g.Cout,
           " output channels, not divisible by groups ", opt.groups);
  MN_CHECK(g.H >= 1 && g.W >= 1, "conv2d: input x ", x.describe(), " has an empty spatial size");
  g.stride_h = opt.stride_h;
  g.stride_w = opt.stride_w;
  g.pad_top = opt.pad_top;
  g.pad_bottom = opt.pad_bottom;
  g.pad_left = opt.pad_left;
  g.pad_right = opt.pad_right;
  g.dil_h = opt.dil_h;
  g.dil_w = opt.dil_w;
  g.groups = opt.groups;
  g.relu_input = opt.relu_input;
  try {
    g.OH = conv_out_size(g.H, g.KH, g.stride_h, g.pad_top, g.pad_bottom, g.dil_h);
    g.OW = conv_out_size(g.W, g.KW, g.stride_w, g.pad_left, g.pad_right, g.dil_w);
  } catch (const Error& e) {
    MN_THROW("conv2d: input x ", x.describe(), " with weight ", w.shape(), ": ", e.what());
  }

  Tensor y = Tensor::empty(Shape{g.N, g.Cout, g.OH, g.OW}, DType::F32, dev);
  backend(dev).conv2d_forward(g, x.data(), w.data(), y.data());

  const bool need_dx = x.requires_grad(), need_dw = w.requires_grad();
  // Saved: x for the weight gradient or the relu mask, w for the data gradient.
  Tensor sx = (need_dw || (need_dx && g.relu_input)) ? x : Tensor();
  Tensor sw = need_dx ? w : Tensor();
  // Accumulate-into form: a tensor read by several ops (a MetaNAS cell state
  // feeds every candidate op of every edge it starts) gets the conv's
  // gradient added by the kernel itself, not in a separate add pass.
  record_into(y, op, {x, w},
              [g, sx, sw, need_dx, need_dw](const Tensor& dy, const std::vector<Tensor>& into) -> std::vector<Tensor> {
                Tensor dx, dw;
                Backend& be = backend(dy.device());
                bool dx_into = false, dw_into = false;
                if (need_dx) {
                  dx = grad_target(into, 0, Shape{g.N, g.Cin, g.H, g.W}, dy.device(), dx_into);
                  be.conv2d_backward_data(g, dy.data(), sw.data(), g.relu_input ? sx.data() : nullptr, dx.data(),
                                          dx_into);
                }
                if (need_dw) {
                  dw = grad_target(into, 1, Shape{g.Cout, g.Cin / g.groups, g.KH, g.KW}, dy.device(), dw_into);
                  be.conv2d_backward_weight(g, sx.data(), dy.data(), dw.data(), dw_into);
                }
                return {dx, dw};
              });
  return y;
}

}  // namespace metanas
