// conv-lib-bench, the libxsmm side: one convolution case run through the
// libxsmm 1.17 DNN convolution API (direct convolution on libxsmm's blocked
// layouts, its JIT-ed batch-reduce GEMMs inside). The engine keeps NCHW / OIHW
// tensors, so each run() converts its inputs into libxsmm's blocked layout,
// runs the layer and converts the output back, all in one OpenMP region with
// the benchmark's thread count: that round trip is what an engine integration
// would pay, so it is timed. Everything else (layer creation and JIT, tensor
// and scratch buffers, binding) happens once, in make_xsmm.
//
// What libxsmm 1.17 cannot express is refused with a reason instead of being
// approximated: groups != 1, dilation, asymmetric padding (its descriptor has
// one pad per dimension), and shapes whose output size differs from the
// engine's. A layer whose creation or first execution reports a non-success
// status (including LIBXSMM_DNN_WARN_FALLBACK) is refused with libxsmm's own
// message. On AVX2 (no AVX-512) 1.17 runs its generic C loops around JIT-ed
// AVX2 GEMM kernels; two of its shape heuristics give wrong results there
// (and one writes out of bounds), so two cases take an equivalent libxsmm
// formulation instead (see tr_ and upd_ below); the check that found them
// compared every pass against a double-precision reference.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <libxsmm.h>
#include <libxsmm_dnn.h>
#include <libxsmm_dnn_convolution.h>
#include <libxsmm_dnn_tensor.h>

#include "conv_lib.h"

namespace convlib {
namespace {

// libxsmm wants its buffers cache-line aligned (it aligns the scratch itself,
// but the tensors are taken as given); 64-byte-aligned, zero-filled floats.
struct AlignedBuf {
  float* p = nullptr;
  size_t n = 0;
  AlignedBuf() = default;
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
  bool alloc(size_t count) {
    n = count;
    size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
    if (bytes == 0) bytes = 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (p) std::memset(p, 0, bytes);
    return p != nullptr;
  }
  ~AlignedBuf() { std::free(p); }
};

// run_pass's own failure: libxsmm's kernels need all desc.threads threads.
constexpr libxsmm_dnn_err_t kThreadMismatch = ~libxsmm_dnn_err_t(0);

std::string xsmm_error(const char* what, libxsmm_dnn_err_t st) {
  return std::string("libxsmm 1.17: ") + what + ": " + libxsmm_dnn_get_error(st);
}

// The sizes of libxsmm's blocked layouts, read back from the layer (not
// assumed), so a layout we do not understand is refused rather than misread.
struct ActLayout {
  int N = 0, Cb = 0, Hp = 0, Wp = 0, cb = 0;  // [N][Cb][Hp][Wp][cb]
};
struct FilLayout {
  int Kb = 0, Cb = 0, R = 0, S = 0, cb = 0, kb = 0;  // [Kb][Cb][R][S][cb][kb]
};

// One libxsmm layer with the tensors bound to it and its scratch; unbinds
// and frees in the order libxsmm needs.
struct Layer {
  libxsmm_dnn_layer* h = nullptr;
  std::vector<std::pair<libxsmm_dnn_tensor_type, libxsmm_dnn_tensor*>> tensors;
  AlignedBuf scratch;
  Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;
  ~Layer() {
    if (h) {
      libxsmm_dnn_release_scratch(h, LIBXSMM_DNN_COMPUTE_KIND_ALL);
      for (auto& t : tensors) libxsmm_dnn_release_tensor(h, t.first);
    }
    for (auto& t : tensors) libxsmm_dnn_destroy_tensor(t.second);
    if (h) libxsmm_dnn_destroy_conv_layer(h);
  }
};

class XsmmConv final : public ConvImpl {
 public:
  XsmmConv(const ConvData& d, int threads) : d_(d), threads_(threads) {}

  // Creates the layer(s) and buffers and runs each pass once (the first run
  // is where a missing code path would show up); false with *why on failure.
  bool init(std::string* why);

  void run(Pass p) override;
  const std::vector<float>& result(Pass p) override;

 private:
  libxsmm_dnn_conv_desc make_desc(int H, int W, int ph, int pw) const;
  bool create(Layer& L, const libxsmm_dnn_conv_desc& desc, std::string* why);
  // Links buf (allocated here on first use, shared when already there) as the
  // tensor of this type and binds it; the layout libxsmm reports must be the
  // one the conversions below assume, with the expected padded H/W.
  bool bind(Layer& L, libxsmm_dnn_tensor_type type, AlignedBuf& buf, int Hp, int Wp,
            ActLayout* act, std::string* why);
  libxsmm_dnn_err_t run_pass(Pass p);

  // NCHW (engine) -> padded blocked activation, writing only the interior:
  // the zero rim set at allocation is libxsmm's physical padding.
  void act_in(const float* src, float* dst, const ActLayout& L, int C, int H, int W, int ph,
              int pw, bool relu);
  void act_out(const float* src, float* dst, const ActLayout& L, int C, int H, int W, int ph,
               int pw);
  void fil_in(const float* src, float* dst);
  void fil_out(const float* src, float* dst);

  ConvData d_;
  int threads_;
  // The problem as libxsmm is given it. libxsmm 1.17's heuristics take
  // R == 1 for a 1x1 kernel, and 1xk kernels (R == 1, S > 1) then come out
  // wrong (backward data at OW == 28 with K > 32, weight update at OW == 56)
  // or write out of bounds; the transposed problem (H <-> W, kx1) takes the
  // well-trodden paths, so a 1xk case runs transposed (tr_), the conversions
  // swapping h and w on the way in and out.
  bool tr_ = false;
  int H_ = 0, W_ = 0, OH_ = 0, OW_ = 0, R_ = 0, S_ = 0, u_ = 1, v_ = 1;
  int ph_ = 0, pw_ = 0;  // symmetric padding (top == bottom, left == right)

  // Buffers first, so that the layers holding pointers to them go first.
  AlignedBuf x_, y_, w_, dx_, dy_, dw_, dy_upd_;
  ActLayout in_{}, out_{}, out_upd_{};
  FilLayout fil_{};
  Layer main_;
  // The weight-gradient layer when main_'s own UPD cannot be used (see init).
  std::unique_ptr<Layer> upd_;

  std::vector<float> y_out_, dx_out_, dw_out_;
};

bool XsmmConv::bind(Layer& L, libxsmm_dnn_tensor_type type, AlignedBuf& buf, int Hp, int Wp,
                    ActLayout* act, std::string* why) {
  libxsmm_dnn_err_t st = LIBXSMM_DNN_SUCCESS;
  libxsmm_dnn_tensor_datalayout* lay = libxsmm_dnn_create_tensor_datalayout(L.h, type, &st);
  if (!lay || st != LIBXSMM_DNN_SUCCESS) {
    *why = xsmm_error("create_tensor_datalayout", st);
    if (lay) libxsmm_dnn_destroy_tensor_datalayout(lay);
    return false;
  }
  const auto& g = d_.g;
  const bool filter = type == LIBXSMM_DNN_REGULAR_FILTER || type == LIBXSMM_DNN_GRADIENT_FILTER;
  bool ok = lay->datatype == LIBXSMM_DNN_DATATYPE_F32 && lay->num_dims == (filter ? 6u : 5u);
  size_t count = 1;
  for (unsigned i = 0; ok && i < lay->num_dims; ++i) count *= lay->dim_size[i];
  if (ok && filter) {
    // dim 0 is the innermost: [Kb][Cb][R][S][cb][kb].
    ok = lay->dim_type[0] == LIBXSMM_DNN_TENSOR_DIMTYPE_K &&
         lay->dim_type[1] == LIBXSMM_DNN_TENSOR_DIMTYPE_C &&
         lay->dim_type[2] == LIBXSMM_DNN_TENSOR_DIMTYPE_S &&
         lay->dim_type[3] == LIBXSMM_DNN_TENSOR_DIMTYPE_R &&
         lay->dim_type[4] == LIBXSMM_DNN_TENSOR_DIMTYPE_C &&
         lay->dim_type[5] == LIBXSMM_DNN_TENSOR_DIMTYPE_K;
    FilLayout f{int(lay->dim_size[5]), int(lay->dim_size[4]), int(lay->dim_size[3]),
                int(lay->dim_size[2]), int(lay->dim_size[1]), int(lay->dim_size[0])};
    ok = ok && f.Kb * f.kb == g.Cout && f.Cb * f.cb == g.Cin && f.R == R_ && f.S == S_;
    // Both layers block the channels alike (the blocking depends on C and K
    // only); a shared filter buffer must see the same blocks.
    ok = ok && (buf.p == nullptr || (f.cb == fil_.cb && f.kb == fil_.kb));
    fil_ = f;
  } else if (ok) {
    // [N][Cb][Hp][Wp][cb]
    ok = lay->dim_type[0] == LIBXSMM_DNN_TENSOR_DIMTYPE_C &&
         lay->dim_type[1] == LIBXSMM_DNN_TENSOR_DIMTYPE_W &&
         lay->dim_type[2] == LIBXSMM_DNN_TENSOR_DIMTYPE_H &&
         lay->dim_type[3] == LIBXSMM_DNN_TENSOR_DIMTYPE_C &&
         lay->dim_type[4] == LIBXSMM_DNN_TENSOR_DIMTYPE_N;
    ActLayout a{int(lay->dim_size[4]), int(lay->dim_size[3]), int(lay->dim_size[2]),
                int(lay->dim_size[1]), int(lay->dim_size[0])};
    const bool is_in = type == LIBXSMM_DNN_REGULAR_INPUT || type == LIBXSMM_DNN_GRADIENT_INPUT;
    ok = ok && a.N == g.N && a.Cb * a.cb == (is_in ? g.Cin : g.Cout) && a.Hp == Hp && a.Wp == Wp;
    if (act) *act = a;
  }
  ok = ok && (buf.p == nullptr || buf.n == count);
  if (!ok) {
    libxsmm_dnn_destroy_tensor_datalayout(lay);
    *why = "libxsmm 1.17: unexpected blocked tensor layout";
    return false;
  }
  if (!buf.p && !buf.alloc(count)) {
    libxsmm_dnn_destroy_tensor_datalayout(lay);
    *why = "out of memory";
    return false;
  }
  libxsmm_dnn_tensor* t = libxsmm_dnn_link_tensor(lay, buf.p, &st);
  libxsmm_dnn_destroy_tensor_datalayout(lay);  // the tensor keeps its own copy
  if (!t || st != LIBXSMM_DNN_SUCCESS) {
    *why = xsmm_error("link_tensor", st);
    return false;
  }
  st = libxsmm_dnn_bind_tensor(L.h, t, type);
  if (st != LIBXSMM_DNN_SUCCESS) {
    libxsmm_dnn_destroy_tensor(t);
    *why = xsmm_error("bind_tensor", st);
    return false;
  }
  L.tensors.emplace_back(type, t);
  return true;
}

libxsmm_dnn_conv_desc XsmmConv::make_desc(int H, int W, int ph, int pw) const {
  const auto& g = d_.g;
  libxsmm_dnn_conv_desc desc;
  std::memset(&desc, 0, sizeof(desc));
  desc.N = int(g.N);
  desc.C = int(g.Cin);
  desc.H = H;
  desc.W = W;
  desc.K = int(g.Cout);
  desc.R = R_;
  desc.S = S_;
  desc.u = u_;
  desc.v = v_;
  desc.pad_h = ph;
  desc.pad_w = pw;
  // Physical padding on both sides, libxsmm's own convention for its fast
  // paths: the input buffer carries the zero rim (no padding copy inside the
  // kernels), and so does the output / dy buffer, which the backward-data
  // kernels read as the padded input of the transposed convolution.
  desc.pad_h_in = ph;
  desc.pad_w_in = pw;
  desc.pad_h_out = ph;
  desc.pad_w_out = pw;
  desc.threads = threads_;
  desc.datatype_in = LIBXSMM_DNN_DATATYPE_F32;
  desc.datatype_out = LIBXSMM_DNN_DATATYPE_F32;
  desc.buffer_format = LIBXSMM_DNN_TENSOR_FORMAT_LIBXSMM;
  desc.filter_format = LIBXSMM_DNN_TENSOR_FORMAT_LIBXSMM;
  desc.algo = LIBXSMM_DNN_CONV_ALGO_DIRECT;
  // The engine's passes overwrite their outputs (no accumulation).
  desc.options = LIBXSMM_DNN_CONV_OPTION_OVERWRITE;
  desc.fuse_ops = LIBXSMM_DNN_CONV_FUSE_NONE;
  return desc;
}

bool XsmmConv::create(Layer& L, const libxsmm_dnn_conv_desc& desc, std::string* why) {
  libxsmm_dnn_err_t st = LIBXSMM_DNN_SUCCESS;
  L.h = libxsmm_dnn_create_conv_layer(desc, &st);
  if (!L.h || st != LIBXSMM_DNN_SUCCESS) {
    // On failure 1.17 may still hand back a handle; it is not usable.
    L.h = nullptr;
    *why = xsmm_error("create_conv_layer", st);
    return false;
  }
  // One scratch serves all three kinds in 1.17 (its size does not depend on
  // the kind), so it is bound once for ALL.
  size_t bytes = libxsmm_dnn_get_scratch_size(L.h, LIBXSMM_DNN_COMPUTE_KIND_ALL, &st);
  if (st != LIBXSMM_DNN_SUCCESS) {
    *why = xsmm_error("get_scratch_size", st);
    return false;
  }
  if (!L.scratch.alloc(bytes / sizeof(float) + 1)) {
    *why = "out of memory";
    return false;
  }
  st = libxsmm_dnn_bind_scratch(L.h, LIBXSMM_DNN_COMPUTE_KIND_ALL, L.scratch.p);
  if (st != LIBXSMM_DNN_SUCCESS) {
    *why = xsmm_error("bind_scratch", st);
    return false;
  }
  return true;
}

bool XsmmConv::init(std::string* why) {
  const auto& g = d_.g;
  tr_ = g.KH == 1 && g.KW > 1;
  H_ = int(tr_ ? g.W : g.H);
  W_ = int(tr_ ? g.H : g.W);
  OH_ = int(tr_ ? g.OW : g.OH);
  OW_ = int(tr_ ? g.OH : g.OW);
  R_ = int(tr_ ? g.KW : g.KH);
  S_ = int(tr_ ? g.KH : g.KW);
  u_ = int(tr_ ? g.stride_w : g.stride_h);
  v_ = int(tr_ ? g.stride_h : g.stride_w);
  ph_ = int(tr_ ? g.pad_left : g.pad_top);
  pw_ = int(tr_ ? g.pad_top : g.pad_left);
  const int H = H_, W = W_, OH = OH_, OW = OW_;

  if (!create(main_, make_desc(H, W, ph_, pw_), why)) return false;
  if (!bind(main_, LIBXSMM_DNN_REGULAR_INPUT, x_, H + 2 * ph_, W + 2 * pw_, &in_, why) ||
      !bind(main_, LIBXSMM_DNN_GRADIENT_INPUT, dx_, H + 2 * ph_, W + 2 * pw_, &in_, why) ||
      !bind(main_, LIBXSMM_DNN_REGULAR_OUTPUT, y_, OH + 2 * ph_, OW + 2 * pw_, &out_, why) ||
      !bind(main_, LIBXSMM_DNN_GRADIENT_OUTPUT, dy_, OH + 2 * ph_, OW + 2 * pw_, &out_, why) ||
      !bind(main_, LIBXSMM_DNN_REGULAR_FILTER, w_, 0, 0, nullptr, why) ||
      !bind(main_, LIBXSMM_DNN_GRADIENT_FILTER, dw_, 0, 0, nullptr, why))
    return false;

  // libxsmm 1.17 bug (found by this benchmark's check): for 3x3 pad-1 convs
  // with OH <= 7 and N == threads its weight update takes an "avoid rim
  // FMAs" path that ignores the stride, and with stride > 1 dw comes out
  // wrong. The same weight gradient is the one of a pad-0 convolution of
  // the zero-padded input, and that layer takes libxsmm's ordinary UPD
  // path; its input layout (H+2 x W+2, no rim) is main_'s padded x buffer,
  // so only dy needs a rim-free buffer of its own.
  const bool avoid_rim_upd = OH <= 7 && R_ == 3 && S_ == 3 && ph_ == 1 && pw_ == 1 &&
                             g.N == threads_ && (u_ > 1 || v_ > 1);
  if (avoid_rim_upd) {
    upd_ = std::make_unique<Layer>();
    ActLayout in2{};
    if (!create(*upd_, make_desc(H + 2 * ph_, W + 2 * pw_, 0, 0), why) ||
        !bind(*upd_, LIBXSMM_DNN_REGULAR_INPUT, x_, H + 2 * ph_, W + 2 * pw_, &in2, why) ||
        !bind(*upd_, LIBXSMM_DNN_GRADIENT_OUTPUT, dy_upd_, OH, OW, &out_upd_, why) ||
        !bind(*upd_, LIBXSMM_DNN_GRADIENT_FILTER, dw_, 0, 0, nullptr, why))
      return false;
    if (in2.cb != in_.cb || out_upd_.cb != out_.cb) {
      *why = "libxsmm 1.17: unexpected blocked tensor layout";
      return false;
    }
  }

  y_out_.assign(size_t(g.N * g.Cout * g.OH * g.OW), 0.f);
  dx_out_.assign(size_t(g.N * g.Cin * g.H * g.W), 0.f);
  dw_out_.assign(size_t(g.Cout * g.Cin * g.KH * g.KW), 0.f);

  // A first run of each pass: libxsmm reports unsupported targets or
  // unbound data only at execution, and such a case is a refusal, not a
  // timing of nothing.
  const struct {
    Pass p;
    const char* name;
  } passes[] = {{Pass::forward, "execute FWD"},
                {Pass::backward_data, "execute BWD"},
                {Pass::backward_weight, "execute UPD"}};
  for (const auto& ps : passes) {
    libxsmm_dnn_err_t st = run_pass(ps.p);
    if (st != LIBXSMM_DNN_SUCCESS) {
      *why = st == kThreadMismatch ? std::string("OpenMP gave fewer threads than asked")
                                   : xsmm_error(ps.name, st);
      return false;
    }
  }
  return true;
}

void XsmmConv::act_in(const float* src, float* dst, const ActLayout& L, int C, int H, int W,
                      int ph, int pw, bool relu) {
  (void)C;
  const int cb = L.cb;
#pragma omp for collapse(2) schedule(static)
  for (int n = 0; n < L.N; ++n)
    for (int b = 0; b < L.Cb; ++b)
      for (int h = 0; h < H; ++h) {
        float* drow = dst + ((size_t(n) * L.Cb + b) * L.Hp + (h + ph)) * L.Wp * cb + size_t(pw) * cb;
        // libxsmm's (h, w) in the engine's plane; transposed: engine (w, h).
        const float* s0 = src + (size_t(n) * C + size_t(b) * cb) * H * W +
                          (tr_ ? size_t(h) : size_t(h) * W);
        const size_t sw = tr_ ? size_t(H) : 1;
        for (int c = 0; c < cb; ++c) {
          const float* s = s0 + size_t(c) * H * W;
          if (relu)
            for (int w = 0; w < W; ++w) {
              const float v = s[w * sw];
              drow[size_t(w) * cb + c] = v > 0.f ? v : 0.f;
            }
          else
            for (int w = 0; w < W; ++w) drow[size_t(w) * cb + c] = s[w * sw];
        }
      }
}

void XsmmConv::act_out(const float* src, float* dst, const ActLayout& L, int C, int H, int W,
                       int ph, int pw) {
  const int cb = L.cb;
#pragma omp for collapse(2) schedule(static)
  for (int n = 0; n < L.N; ++n)
    for (int b = 0; b < L.Cb; ++b)
      for (int h = 0; h < H; ++h) {
        const float* srow =
            src + ((size_t(n) * L.Cb + b) * L.Hp + (h + ph)) * L.Wp * cb + size_t(pw) * cb;
        float* d0 = dst + (size_t(n) * C + size_t(b) * cb) * H * W +
                    (tr_ ? size_t(h) : size_t(h) * W);
        const size_t sw = tr_ ? size_t(H) : 1;
        for (int c = 0; c < cb; ++c) {
          float* dd = d0 + size_t(c) * H * W;
          for (int w = 0; w < W; ++w) dd[w * sw] = srow[size_t(w) * cb + c];
        }
      }
}

void XsmmConv::fil_in(const float* src, float* dst) {
  const FilLayout& F = fil_;
  const size_t Cin = size_t(d_.g.Cin), RS = size_t(F.R) * F.S;
#pragma omp for collapse(2) schedule(static)
  for (int kb = 0; kb < F.Kb; ++kb)
    for (int cbi = 0; cbi < F.Cb; ++cbi)
      for (int rs = 0; rs < int(RS); ++rs) {
        float* blk = dst + ((size_t(kb) * F.Cb + cbi) * RS + rs) * F.cb * F.kb;
        const size_t ers = tr_ ? size_t(rs % F.S) * F.R + rs / F.S : size_t(rs);
        for (int c = 0; c < F.cb; ++c)
          for (int k = 0; k < F.kb; ++k)
            blk[size_t(c) * F.kb + k] =
                src[((size_t(kb) * F.kb + k) * Cin + size_t(cbi) * F.cb + c) * RS + ers];
      }
}

void XsmmConv::fil_out(const float* src, float* dst) {
  const FilLayout& F = fil_;
  const size_t Cin = size_t(d_.g.Cin), RS = size_t(F.R) * F.S;
#pragma omp for collapse(2) schedule(static)
  for (int kb = 0; kb < F.Kb; ++kb)
    for (int cbi = 0; cbi < F.Cb; ++cbi)
      for (int rs = 0; rs < int(RS); ++rs) {
        const float* blk = src + ((size_t(kb) * F.Cb + cbi) * RS + rs) * F.cb * F.kb;
        const size_t ers = tr_ ? size_t(rs % F.S) * F.R + rs / F.S : size_t(rs);
        for (int c = 0; c < F.cb; ++c)
          for (int k = 0; k < F.kb; ++k)
            dst[((size_t(kb) * F.kb + k) * Cin + size_t(cbi) * F.cb + c) * RS + ers] =
                blk[size_t(c) * F.kb + k];
      }
}

// Conversion in, libxsmm, conversion out, in one parallel region: libxsmm's
// execute_st expects exactly desc.threads threads with ids 0..threads-1 (it
// has its own barrier), and one region saves two fork/joins per run.
libxsmm_dnn_err_t XsmmConv::run_pass(Pass p) {
  const auto& g = d_.g;
  const int C = int(g.Cin), K = int(g.Cout), H = H_, W = W_, OH = OH_, OW = OW_;
  const libxsmm_dnn_compute_kind kind = p == Pass::forward         ? LIBXSMM_DNN_COMPUTE_KIND_FWD
                                        : p == Pass::backward_data ? LIBXSMM_DNN_COMPUTE_KIND_BWD
                                                                   : LIBXSMM_DNN_COMPUTE_KIND_UPD;
  libxsmm_dnn_layer* layer = p == Pass::backward_weight && upd_ ? upd_->h : main_.h;
  libxsmm_dnn_err_t status = LIBXSMM_DNN_SUCCESS;
#pragma omp parallel num_threads(threads_)
  {
    if (omp_get_num_threads() != threads_) {
      // Same answer in every thread, so no thread waits in libxsmm's barrier.
#pragma omp single
      status = kThreadMismatch;
    } else {
      if (p == Pass::forward) {
        act_in(d_.x.data(), x_.p, in_, C, H, W, ph_, pw_, g.relu_input);
        fil_in(d_.w.data(), w_.p);
      } else if (p == Pass::backward_data) {
        act_in(d_.dy.data(), dy_.p, out_, K, OH, OW, ph_, pw_, false);
        fil_in(d_.w.data(), w_.p);
      } else if (upd_) {
        act_in(d_.x.data(), x_.p, in_, C, H, W, ph_, pw_, g.relu_input);
        act_in(d_.dy.data(), dy_upd_.p, out_upd_, K, OH, OW, 0, 0, false);
      } else {
        act_in(d_.x.data(), x_.p, in_, C, H, W, ph_, pw_, g.relu_input);
        act_in(d_.dy.data(), dy_.p, out_, K, OH, OW, ph_, pw_, false);
      }
      // (the omp for above ends in a barrier: all inputs are in place)
      libxsmm_dnn_err_t st = libxsmm_dnn_execute_st(layer, kind, 0, omp_get_thread_num());
      if (st != LIBXSMM_DNN_SUCCESS) {
#pragma omp critical(xsmm_status)
        status = st;
      }
#pragma omp barrier
      if (p == Pass::forward)
        act_out(y_.p, y_out_.data(), out_, K, OH, OW, ph_, pw_);
      else if (p == Pass::backward_data) {
        act_out(dx_.p, dx_out_.data(), in_, C, H, W, ph_, pw_);
        // The engine's relu_input conv reads max(x, 0): its data gradient
        // passes only where x > 0 (the mask is the ReLU's backward).
        if (g.relu_input) {
          const float* x = d_.x.data();
          float* dx = dx_out_.data();
          const int64_t n = int64_t(dx_out_.size());
#pragma omp for schedule(static)
          for (int64_t i = 0; i < n; ++i)
            if (!(x[i] > 0.f)) dx[i] = 0.f;
        }
      } else
        fil_out(dw_.p, dw_out_.data());
    }
  }
  return status;
}

void XsmmConv::run(Pass p) {
  if (run_pass(p) != LIBXSMM_DNN_SUCCESS) {
    // It ran once in init, so this should not happen; poison the output so
    // that a check against the engine cannot pass by accident.
    auto& out = p == Pass::forward ? y_out_ : p == Pass::backward_data ? dx_out_ : dw_out_;
    std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
  }
}

const std::vector<float>& XsmmConv::result(Pass p) {
  return p == Pass::forward ? y_out_ : p == Pass::backward_data ? dx_out_ : dw_out_;
}

}  // namespace

std::unique_ptr<ConvImpl> make_xsmm(const ConvData& d, int threads, std::string* why) {
  static const bool inited = [] {
    libxsmm_init();
    return true;
  }();
  (void)inited;

  const auto& g = d.g;
  if (g.groups != 1) {
    *why = "libxsmm 1.17: no grouped/depthwise convolution";
    return nullptr;
  }
  if (g.dil_h != 1 || g.dil_w != 1) {
    *why = "libxsmm 1.17: no dilation";
    return nullptr;
  }
  if (g.pad_top != g.pad_bottom || g.pad_left != g.pad_right) {
    *why = "libxsmm 1.17: asymmetric padding";
    return nullptr;
  }
  if (threads < 1) {
    *why = "threads < 1";
    return nullptr;
  }
  // libxsmm derives the output size itself (floor division); a geometry whose
  // OH/OW the engine computes differently cannot be run as the same op.
  const int64_t oh = (g.H + 2 * g.pad_top - g.KH) / g.stride_h + 1;
  const int64_t ow = (g.W + 2 * g.pad_left - g.KW) / g.stride_w + 1;
  if (oh != g.OH || ow != g.OW) {
    *why = "libxsmm 1.17: output size differs from the geometry's";
    return nullptr;
  }
  const int64_t lim = std::numeric_limits<int>::max();
  if (g.N > lim || g.Cin > lim || g.Cout > lim || g.H > lim || g.W > lim) {
    *why = "sizes beyond int";
    return nullptr;
  }
  auto impl = std::make_unique<XsmmConv>(d, threads);
  if (!impl->init(why)) return nullptr;
  return impl;
}

}  // namespace convlib
