// The oneDNN side of conv-lib-bench (Debian libdnnl-dev 2.6: the library
// PyTorch's CPU convolutions are). Each case builds the three convolution
// primitives once, letting oneDNN pick its preferred (blocked) layouts, and
// run() pays the reorders from and to the engine's NCHW / OIHW tensors, as an
// engine integration would. relu_input (the engine's conv(relu(x))) costs an
// eltwise pass here: oneDNN has no input-side ReLU fusion.
#include <dnnl.hpp>

#include "conv_lib.h"
#include "kernels/cpu/dnnl/conv_dnnl_descs.h"

namespace convlib {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// The engine layout for one tensor and, when the primitive prefers another,
// the primitive's copy plus the reorder between them.
struct Staged {
  memory user, prim;
  bool reorder = false;
  void make(const dnnl::engine& eng, const memory::desc& user_md, const memory::desc& prim_md,
            void* user_data) {
    user = memory(user_md, eng, user_data);
    reorder = prim_md != user_md;
    prim = reorder ? memory(prim_md, eng) : user;
  }
  void in(dnnl::stream& s) {
    if (reorder) dnnl::reorder(user, prim).execute(s, user, prim);
  }
  void out(dnnl::stream& s) {
    if (reorder) dnnl::reorder(prim, user).execute(s, prim, user);
  }
};

class DnnlConv final : public ConvImpl {
 public:
  explicit DnnlConv(const ConvData& d) : d_(d), eng_(dnnl::engine::kind::cpu, 0), s_(eng_) {
    const auto& g = d.g;
    x_ = d.x;
    w_ = d.w;
    dy_ = d.dy;
    y_.assign(g.N * g.Cout * g.OH * g.OW, 0.f);
    dx_.assign(x_.size(), 0.f);
    dw_.assign(w_.size(), 0.f);
    xr_.assign(x_.size(), 0.f);

    // The plugin's descriptors (kernels/cpu/dnnl/conv_dnnl_descs.h), over the whole batch.
    const metanas::kernels::cpu::dnnl_descs::ConvDescs descs(g, g.N);
    const memory::desc &x_md = descs.x_md, &y_md = descs.y_md, &w_md = descs.w_md;
    fwd_pd_ = dnnl::convolution_forward::primitive_desc(descs.forward(), eng_);
    bwd_pd_ = dnnl::convolution_backward_data::primitive_desc(descs.backward_data(), eng_, fwd_pd_);
    upd_pd_ = dnnl::convolution_backward_weights::primitive_desc(descs.backward_weights(), eng_, fwd_pd_);
    fwd_ = dnnl::convolution_forward(fwd_pd_);
    bwd_ = dnnl::convolution_backward_data(bwd_pd_);
    upd_ = dnnl::convolution_backward_weights(upd_pd_);

    // relu_input: x -> relu(x) (forward, weight gradient), dx *= (x > 0)
    // (data gradient), both on the NCHW tensors.
    if (g.relu_input) {
      dnnl::eltwise_forward::desc rd(dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_relu,
                                     x_md, 0.f);
      auto rpd = dnnl::eltwise_forward::primitive_desc(rd, eng_);
      relu_ = dnnl::eltwise_forward(rpd);
      dnnl::eltwise_backward::desc rbd(dnnl::algorithm::eltwise_relu, x_md, x_md, 0.f);
      relu_bwd_ = dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(rbd, eng_, rpd));
      x_mem_ = memory(x_md, eng_, x_.data());
      xr_mem_ = memory(x_md, eng_, xr_.data());
      dx_raw_.assign(x_.size(), 0.f);
      dx_raw_mem_ = memory(x_md, eng_, dx_raw_.data());
    }
    float* xin = g.relu_input ? xr_.data() : x_.data();
    f_x_.make(eng_, x_md, fwd_pd_.src_desc(), xin);
    f_w_.make(eng_, w_md, fwd_pd_.weights_desc(), w_.data());
    f_y_.make(eng_, y_md, fwd_pd_.dst_desc(), y_.data());
    b_dy_.make(eng_, y_md, bwd_pd_.diff_dst_desc(), dy_.data());
    b_w_.make(eng_, w_md, bwd_pd_.weights_desc(), w_.data());
    b_dx_.make(eng_, x_md, bwd_pd_.diff_src_desc(), g.relu_input ? dx_raw_.data() : dx_.data());
    u_x_.make(eng_, x_md, upd_pd_.src_desc(), xin);
    u_dy_.make(eng_, y_md, upd_pd_.diff_dst_desc(), dy_.data());
    u_dw_.make(eng_, w_md, upd_pd_.diff_weights_desc(), dw_.data());
    if (g.relu_input) dx_mem_ = memory(x_md, eng_, dx_.data());
  }

  void run(Pass p) override {
    const bool relu = d_.g.relu_input;
    switch (p) {
      case Pass::forward:
        if (relu) relu_.execute(s_, {{DNNL_ARG_SRC, x_mem_}, {DNNL_ARG_DST, xr_mem_}});
        f_x_.in(s_);
        f_w_.in(s_);
        fwd_.execute(s_, {{DNNL_ARG_SRC, f_x_.prim}, {DNNL_ARG_WEIGHTS, f_w_.prim},
                          {DNNL_ARG_DST, f_y_.prim}});
        f_y_.out(s_);
        break;
      case Pass::backward_data:
        b_dy_.in(s_);
        b_w_.in(s_);
        bwd_.execute(s_, {{DNNL_ARG_DIFF_DST, b_dy_.prim}, {DNNL_ARG_WEIGHTS, b_w_.prim},
                          {DNNL_ARG_DIFF_SRC, b_dx_.prim}});
        b_dx_.out(s_);
        if (relu)
          relu_bwd_.execute(s_, {{DNNL_ARG_SRC, x_mem_}, {DNNL_ARG_DIFF_DST, dx_raw_mem_},
                                 {DNNL_ARG_DIFF_SRC, dx_mem_}});
        break;
      case Pass::backward_weight:
        if (relu) relu_.execute(s_, {{DNNL_ARG_SRC, x_mem_}, {DNNL_ARG_DST, xr_mem_}});
        u_x_.in(s_);
        u_dy_.in(s_);
        upd_.execute(s_, {{DNNL_ARG_SRC, u_x_.prim}, {DNNL_ARG_DIFF_DST, u_dy_.prim},
                          {DNNL_ARG_DIFF_WEIGHTS, u_dw_.prim}});
        u_dw_.out(s_);
        break;
    }
    s_.wait();
  }

  const std::vector<float>& result(Pass p) override {
    return p == Pass::forward ? y_ : p == Pass::backward_data ? dx_ : dw_;
  }

 private:
  ConvData d_;
  dnnl::engine eng_;
  dnnl::stream s_;
  std::vector<float> x_, w_, dy_, y_, dx_, dw_, xr_, dx_raw_;
  dnnl::convolution_forward::primitive_desc fwd_pd_;
  dnnl::convolution_backward_data::primitive_desc bwd_pd_;
  dnnl::convolution_backward_weights::primitive_desc upd_pd_;
  dnnl::convolution_forward fwd_;
  dnnl::convolution_backward_data bwd_;
  dnnl::convolution_backward_weights upd_;
  dnnl::eltwise_forward relu_;
  dnnl::eltwise_backward relu_bwd_;
  memory x_mem_, xr_mem_, dx_raw_mem_, dx_mem_;
  Staged f_x_, f_w_, f_y_, b_dy_, b_w_, b_dx_, u_x_, u_dy_, u_dw_;
};

}  // namespace

std::unique_ptr<ConvImpl> make_dnnl(const ConvData& d, int threads, std::string* why) {
  (void)threads;  // oneDNN's OpenMP runtime uses omp_get_max_threads(), set by the caller
  try {
    return std::make_unique<DnnlConv>(d);
  } catch (const dnnl::error& e) {
    *why = std::string("oneDNN: ") + e.what();
    return nullptr;
  }
}

}  // namespace convlib
