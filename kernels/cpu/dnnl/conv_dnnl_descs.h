// The oneDNN descriptors of one engine convolution (ConvGeom) over a batch of
// mb samples: the NCHW / OIHW (GOIHW) user layouts, the "any" layouts oneDNN
// chooses from, and the forward-training convolution descriptor the three
// passes are built on. Shared by the plugin (conv_dnnl.cpp) and the library
// comparison (benchmarks/conv-lib/conv_dnnl.cpp), so both time the same
// oneDNN convolution.
#pragma once
#include <dnnl.hpp>

#include "metanas/kernels/kernel_types.h"

namespace metanas::kernels::cpu::dnnl_descs {

struct ConvDescs {
  dnnl::memory::desc x_md, y_md, w_md;  // user layouts: x, y NCHW; w OIHW or GOIHW
  dnnl::memory::desc xa, ya, wa;        // format_tag::any: oneDNN's choice
  dnnl::memory::dims strides, dil, pl, pr;

  ConvDescs(const ConvGeom& g, int64_t mb) {
    using dnnl::memory;
    using tag = memory::format_tag;
    const auto f32 = memory::data_type::f32;
    const memory::dims xd = {mb, g.Cin, g.H, g.W}, yd = {mb, g.Cout, g.OH, g.OW};
    const memory::dims wd = g.groups == 1 ? memory::dims{g.Cout, g.Cin, g.KH, g.KW}
                                          : memory::dims{g.groups, g.Cout / g.groups, g.Cin / g.groups, g.KH, g.KW};
    strides = {g.stride_h, g.stride_w};
    dil = {g.dil_h - 1, g.dil_w - 1};  // oneDNN counts dilation from 0
    pl = {g.pad_top, g.pad_left};
    pr = {g.pad_bottom, g.pad_right};
    x_md = memory::desc(xd, f32, tag::nchw);
    y_md = memory::desc(yd, f32, tag::nchw);
    w_md = memory::desc(wd, f32, g.groups == 1 ? tag::oihw : tag::goihw);
    xa = memory::desc(xd, f32, tag::any);
    ya = memory::desc(yd, f32, tag::any);
    wa = memory::desc(wd, f32, tag::any);
  }

  dnnl::convolution_forward::desc forward() const {
    return dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                           xa, wa, ya, strides, dil, pl, pr);
  }
  dnnl::convolution_backward_data::desc backward_data() const {
    return dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, xa, wa, ya, strides, dil, pl,
                                                 pr);
  }
  dnnl::convolution_backward_weights::desc backward_weights() const {
    return dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, xa, wa, ya, strides, dil,
                                                    pl, pr);
  }
};

}  // namespace metanas::kernels::cpu::dnnl_descs
