// The oneDNN convolutions of the CPU backend, built as a plugin
// (libmetanas_dnnl.so) that kernels/cpu/conv_library.cpp loads when
// METANAS_CPU_CONV=dnnl asks for it: the engine library itself does not link
// oneDNN, so a program that never asks runs where libdnnl is not installed
// (the GPU machine's bundle, a user's deployment) and carries none of its 38 MB.
//
// Why oneDNN: conv-lib-bench (benchmarks/conv-lib, docs/results.md "CPU speed,
// part 4") measured oneDNN 2.6 (Debian's libdnnl-dev, what PyTorch's CPU
// convolutions are) up to 2x faster than im2col + OpenBLAS on the dense
// 3x3 / 1x5 / 5x1 convolutions at 14x14 and 7x7 and up to 6x on non-dilated
// depthwise ones, and slower on 1x1 convolutions and on the backward passes of
// dilated depthwise ones; called through this file (engine-bench), the
// depthwise backward passes lost their lead. So handles() takes the dense
// convolutions and the depthwise forward pass and leaves the rest to conv.cpp.
//
// Determinism: oneDNN's own threading splits the weight-gradient reduction by
// the thread count, so every oneDNN call here is planned and run on one
// thread, over work items fixed by the batch size alone: kChunks sample
// chunks, the same for every pass; the weight gradient sums one partial per
// chunk in chunk order. Results are therefore bitwise independent of the
// thread count (tests/engine/conv_test.cpp "oneDNN convolutions"), though not
// equal to those of the engine's own kernels (another summation order).
//
// Each primitive set (per geometry, pass and chunk size) is created once and
// kept; primitives are immutable and run concurrently from several threads,
// each with its own scratchpad (scratchpad_mode::user) and staging buffers.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "conv_dnnl_descs.h"

#include <dnnl.hpp>

#include "metanas/kernels/kernel_types.h"

namespace metanas::kernels::cpu::dnnl_plugin {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

enum class Pass { forward, backward_data, backward_weight };

constexpr int64_t kChunks = 8;  // sample chunks per call (fixed: determinism)

bool is_depthwise(const ConvGeom& g) {
  return g.groups > 1 && g.groups == g.Cin && g.groups == g.Cout;
}

// The cases oneDNN is faster on here, measured twice: per library call
// (conv-lib-bench) and through this file (engine-bench, both settings; see
// the file comment): dense convolutions with a kernel larger than 1x1, all
// passes; depthwise ones forward only (their backward passes lost, through
// the chunked calls, to the engine's direct kernels).
// Two exceptions since the engine's depthwise kernels run on flat planes and
// avx2 (docs/results.md, "CPU speed, parts 5 and 10"): stride-1 depthwise forward on
// planes of 14x14 and more is faster in conv.cpp (its rows of 8 or more
// outputs are written directly, part 10), and so are relu-input dense
// convolutions with under 32 input channels on planes of 28x28 or more (the
// separate ReLU copy costs more than oneDNN saves there: 1.13x the time of
// ours for the MetaNAS 1x5 at 28 channels), but for the forward pass of a
// strided one (a reduction cell's 1x5: oneDNN 0.75x of im2col + OpenBLAS,
// whose backward passes stay 1.6x faster than oneDNN's; part 10).
bool handles(const ConvGeom& g, Pass p) {
  if (g.N <= 0) return false;
  const int64_t plane = g.H * g.W;
  const bool strided = g.stride_h > 1 || g.stride_w > 1;
  if (g.groups == 1)
    return g.KH * g.KW > 1 &&
           !(g.relu_input && g.Cin < 32 && plane >= 28 * 28 && !(strided && p == Pass::forward));
  return is_depthwise(g) && p == Pass::forward && (strided || plane < 14 * 14);
}

const dnnl::engine& cpu_engine() {
  static const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

// oneDNN (OpenMP runtime) plans a primitive for omp_get_max_threads() threads
// and runs it with as many; one thread makes its work independent of ours.
struct OneThread {
  int saved = omp_get_max_threads();
  OneThread() { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(saved); }
};

// A tensor of the primitive: its engine-layout (NCHW / (G)OIHW) description,
// the primitive's, and the reorder from one to the other when they differ.
struct Stage {
  memory::desc user, prim;
  bool reorder = false;
  dnnl::reorder conv_in, conv_out;  // user -> prim (inputs), prim -> user (outputs)
  void make(const memory::desc& u, const memory::desc& p, bool is_input) {
    user = u;
    prim = p;
    reorder = u != p;
    if (!reorder) return;
    const auto& eng = cpu_engine();
    if (is_input)
      conv_in = dnnl::reorder(dnnl::reorder::primitive_desc(eng, u, eng, p));
    else
      conv_out = dnnl::reorder(dnnl::reorder::primitive_desc(eng, p, eng, u));
  }
  size_t prim_floats() const { return reorder ? prim.get_size() / sizeof(float) : 0; }
};

// One pass's primitive for one chunk size: a (activation input), b (second
// input: weights, or dy for the weight gradient), out.
struct Prims {
  dnnl::primitive conv;
  int arg_a = 0, arg_b = 0, arg_out = 0;
  Stage a, b, out;
  size_t scratch_bytes = 0;
};

std::unique_ptr<Prims> make_prims(const ConvGeom& g, Pass p, int64_t mb) {
  OneThread one;
  const auto& eng = cpu_engine();
  const dnnl_descs::ConvDescs d(g, mb);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

  auto P = std::make_unique<Prims>();
  const dnnl::convolution_forward::primitive_desc fpd(d.forward(), attr, eng);
  if (p == Pass::forward) {
    P->conv = dnnl::convolution_forward(fpd);
    P->arg_a = DNNL_ARG_SRC, P->arg_b = DNNL_ARG_WEIGHTS, P->arg_out = DNNL_ARG_DST;
    P->a.make(d.x_md, fpd.src_desc(), true);
    P->b.make(d.w_md, fpd.weights_desc(), true);
    P->out.make(d.y_md, fpd.dst_desc(), false);
    P->scratch_bytes = fpd.scratchpad_desc().get_size();
  } else if (p == Pass::backward_data) {
    const dnnl::convolution_backward_data::primitive_desc bpd(d.backward_data(), attr, eng, fpd);
    P->conv = dnnl::convolution_backward_data(bpd);
    P->arg_a = DNNL_ARG_DIFF_DST, P->arg_b = DNNL_ARG_WEIGHTS, P->arg_out = DNNL_ARG_DIFF_SRC;
    P->a.make(d.y_md, bpd.diff_dst_desc(), true);
    P->b.make(d.w_md, bpd.weights_desc(), true);
    P->out.make(d.x_md, bpd.diff_src_desc(), false);
    P->scratch_bytes = bpd.scratchpad_desc().get_size();
  } else {
    const dnnl::convolution_backward_weights::primitive_desc upd(d.backward_weights(), attr, eng, fpd);
    P->conv = dnnl::convolution_backward_weights(upd);
    P->arg_a = DNNL_ARG_SRC, P->arg_b = DNNL_ARG_DIFF_DST, P->arg_out = DNNL_ARG_DIFF_WEIGHTS;
    P->a.make(d.x_md, upd.src_desc(), true);
    P->b.make(d.y_md, upd.diff_dst_desc(), true);
    P->out.make(d.w_md, upd.diff_weights_desc(), false);
    P->scratch_bytes = upd.scratchpad_desc().get_size();
  }
  return P;
}

using Key = std::tuple<std::vector<int64_t>, int, int64_t>;

// The primitives for (geometry, pass, chunk size), created on first use;
// nullptr (remembered) when oneDNN cannot build them, and the caller falls
// back to the engine's kernels.
const Prims* prims_for(const ConvGeom& g, Pass p, int64_t mb) {
  static std::mutex mu;
  static std::map<Key, std::unique_ptr<Prims>> cache;
  Key key{{g.Cin, g.H, g.W, g.Cout, g.KH, g.KW, g.stride_h, g.stride_w, g.pad_top, g.pad_bottom,
           g.pad_left, g.pad_right, g.dil_h, g.dil_w, g.groups, g.OH, g.OW},
          static_cast<int>(p), mb};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it == cache.end()) {
    std::unique_ptr<Prims> made;
    try {
      made = make_prims(g, p, mb);
    } catch (const dnnl::error&) {
      made = nullptr;  // e.g. a shape no implementation takes: our kernels run it
    }
    it = cache.emplace(std::move(key), std::move(made)).first;
  }
  return it->second.get();
}

// This thread's staging buffer `slot`, kept between calls: 0-3 for one
// chunk's tensors, 4-5 for the weights a call shares with its chunks, 6 for
// the weight-gradient partials (no allocation per call or chunk).
float* thread_buffer(int slot, size_t floats) {
  thread_local std::vector<float> bufs[7];
  auto& b = bufs[slot];
  if (b.size() < floats) {
    std::vector<float>().swap(b);
    b.resize(floats);
  }
  return b.data();
}

uint8_t* thread_scratchpad(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes) {
    std::vector<uint8_t>().swap(buf);
    buf.resize(bytes);
  }
  return buf.data();
}

// Sample range of chunk c of N samples in P chunks.
inline void chunk_range(int64_t N, int64_t P, int64_t c, int64_t& n0, int64_t& n1) {
  n0 = c * N / P;
  n1 = (c + 1) * N / P;
}

// The chunk sizes N / P rounds to (one or two values), with their primitives.
struct Plan {
  int64_t P = 0;
  int64_t mb[2] = {0, 0};
  const Prims* prims[2] = {nullptr, nullptr};
  const Prims* for_size(int64_t m) const { return m == mb[0] ? prims[0] : prims[1]; }
};

bool make_plan(const ConvGeom& g, Pass p, Plan& plan) {
  plan.P = std::min<int64_t>(g.N, kChunks);
  int k = 0;
  for (int64_t c = 0; c < plan.P; ++c) {
    int64_t n0, n1;
    chunk_range(g.N, plan.P, c, n0, n1);
    const int64_t m = n1 - n0;  // >= 1 (P <= N); floor or ceil of N / P: two values at most
    if (m == plan.mb[0] || m == plan.mb[1]) continue;
    MN_KCHECK(k < 2, "oneDNN convolution: more than two chunk sizes");
    plan.mb[k] = m;
    plan.prims[k] = prims_for(g, p, m);
    if (!plan.prims[k]) return false;
    ++k;
  }
  return true;
}

// Runs body(chunk) over the plan's chunks: split over our threads when there
// are several, each running oneDNN single-threaded. Exceptions are carried out
// of the parallel region and rethrown.
template <typename Body>
void for_chunks(int64_t P, Body body) {
  std::string error;
  auto guarded = [&](int64_t c) {
    try {
      body(c);
    } catch (const std::exception& e) {
#pragma omp critical(metanas_dnnl_error)
      if (error.empty()) error = e.what();
    }
  };
  if (omp_get_max_threads() > 1 && P > 1 && !omp_in_parallel()) {
#pragma omp parallel
    {
      OneThread one;
#pragma omp for schedule(dynamic, 1)
      for (int64_t c = 0; c < P; ++c) guarded(c);
    }
  } else {
    OneThread one;
    for (int64_t c = 0; c < P; ++c) guarded(c);
  }
  if (!error.empty()) MN_KTHROW("oneDNN convolution: ", error);
}

// Runs a reorder (when the stage has one) from src to dst on this thread.
void run_reorder(const dnnl::reorder& r, const memory::desc& from, void* src,
                 const memory::desc& to, void* dst) {
  const auto& eng = cpu_engine();
  memory m_from(from, eng, src), m_to(to, eng, dst);
  r.execute(thread_stream(), m_from, m_to);
}

// The primitive's copy of an input chunk: the user data itself, or reordered
// into this thread's buffer `slot`.
void* stage_in(const Stage& s, const float* user, int slot) {
  if (!s.reorder) return const_cast<float*>(user);
  float* buf = thread_buffer(slot, s.prim_floats());
  run_reorder(s.conv_in, s.user, const_cast<float*>(user), s.prim, buf);
  return buf;
}

void execute(const Prims& P, void* a, void* b, void* out) {
  const auto& eng = cpu_engine();
  std::unordered_map<int, memory> args{{P.arg_a, memory(P.a.prim, eng, a)},
                                       {P.arg_b, memory(P.b.prim, eng, b)},
                                       {P.arg_out, memory(P.out.prim, eng, out)}};
  if (P.scratch_bytes > 0) {
    const memory::desc sd({static_cast<memory::dim>(P.scratch_bytes)}, dt::u8, tag::x);
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(sd, eng, thread_scratchpad(P.scratch_bytes)));
  }
  P.conv.execute(thread_stream(), args);
}

// The weights in each plan primitive's layout, reordered once per call (on
// the calling thread) and shared by the chunks.
struct SharedWeights {
  void* ptr[2] = {nullptr, nullptr};
  void make(const Plan& plan, const float* w) {
    OneThread one;
    for (int k = 0; k < 2; ++k) {
      const Prims* P = plan.prims[k];
      if (!P) continue;
      if (!P->b.reorder) {
        ptr[k] = const_cast<float*>(w);
        continue;
      }
      float* buf = thread_buffer(4 + k, P->b.prim_floats());  // the calling thread's
      run_reorder(P->b.conv_in, P->b.user, const_cast<float*>(w), P->b.prim, buf);
      ptr[k] = buf;
    }
  }
  void* for_prims(const Plan& plan, const Prims* P) const { return P == plan.prims[0] ? ptr[0] : ptr[1]; }
};

// relu(x) of a chunk into this thread's buffer `slot` (the engine's
// relu_input convolutions read max(x, 0)).
const float* relu_copy(const float* x, int64_t n, int slot) {
  float* buf = thread_buffer(slot, static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) buf[i] = x[i] > 0.f ? x[i] : 0.f;
  return buf;
}

// The shared frame of the three passes: whether oneDNN takes the case, the
// chunk plan, the weights reordered once when the pass reads them (w), then
// body(chunk, n0, n1, prims, weights in the primitive's layout) per chunk.
template <typename Body>
bool over_chunks(const ConvGeom& g, Pass p, const float* w, Body body) {
  if (!handles(g, p)) return false;
  Plan plan;
  if (!make_plan(g, p, plan)) return false;
  SharedWeights sw;
  if (w) sw.make(plan, w);
  for_chunks(plan.P, [&](int64_t c) {
    int64_t n0, n1;
    chunk_range(g.N, plan.P, c, n0, n1);
    const Prims& P = *plan.for_size(n1 - n0);
    body(c, n0, n1, P, w ? sw.for_prims(plan, &P) : nullptr);
  });
  return true;
}

// The primitive's output buffer for a chunk whose engine-layout output is
// `user`: user itself when no reorder follows, else this thread's buffer.
void* stage_out(const Stage& s, float* user, int slot) {
  return s.reorder ? static_cast<void*>(thread_buffer(slot, s.prim_floats())) : user;
}

}  // namespace

bool conv_forward(const ConvGeom& g, const float* x, const float* w, float* y) {
  const int64_t xs = g.Cin * g.H * g.W, ys = g.Cout * g.OH * g.OW;
  return over_chunks(g, Pass::forward, w, [&](int64_t, int64_t n0, int64_t n1, const Prims& P, void* wp) {
    const float* xin = x + n0 * xs;
    if (g.relu_input) xin = relu_copy(xin, (n1 - n0) * xs, 3);
    float* yc = y + n0 * ys;
    void* out = stage_out(P.out, yc, 1);
    execute(P, stage_in(P.a, xin, 0), wp, out);
    if (P.out.reorder) run_reorder(P.out.conv_out, P.out.prim, out, P.out.user, yc);
  });
}

bool conv_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                        float* dx, bool accumulate) {
  const int64_t xs = g.Cin * g.H * g.W, ys = g.Cout * g.OH * g.OW;
  return over_chunks(g, Pass::backward_data, w, [&](int64_t, int64_t n0, int64_t n1, const Prims& P, void* wp) {
    const int64_t n = (n1 - n0) * xs;
    float* dxc = dx + n0 * xs;
    // Straight into dx when nothing is added, masked or reordered.
    const bool direct = !P.out.reorder && !accumulate && !g.relu_input;
    float* raw = direct ? dxc : thread_buffer(2, static_cast<size_t>(n));
    void* out = stage_out(P.out, raw, 1);
    execute(P, stage_in(P.a, dy + n0 * ys, 0), wp, out);
    if (P.out.reorder) run_reorder(P.out.conv_out, P.out.prim, out, P.out.user, raw);
    if (direct) return;
    const float* xc = x + n0 * xs;
    for (int64_t i = 0; i < n; ++i) {
      const float v = (g.relu_input && !(xc[i] > 0.f)) ? 0.f : raw[i];
      dxc[i] = accumulate ? dxc[i] + v : v;
    }
  });
}

bool conv_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                          bool accumulate) {
  const int64_t xs = g.Cin * g.H * g.W, ys = g.Cout * g.OH * g.OW;
  const int64_t wsize = g.Cout * (g.groups > 0 ? g.Cin / g.groups : 0) * g.KH * g.KW;
  const int64_t chunks = std::min<int64_t>(g.N, kChunks);  // = the plan's P
  if (!handles(g, Pass::backward_weight)) return false;  // before sizing the partials
  // One engine-layout partial per chunk (each written whole by its chunk),
  // summed in chunk order below.
  float* const partial = thread_buffer(6, static_cast<size_t>(chunks * wsize));
  const bool taken = over_chunks(g, Pass::backward_weight, nullptr,
                                 [&](int64_t c, int64_t n0, int64_t n1, const Prims& P, void*) {
                                   const float* xin = x + n0 * xs;
                                   if (g.relu_input) xin = relu_copy(xin, (n1 - n0) * xs, 3);
                                   float* pc = partial + c * wsize;
                                   void* out = stage_out(P.out, pc, 2);
                                   execute(P, stage_in(P.a, xin, 0), stage_in(P.b, dy + n0 * ys, 1), out);
                                   if (P.out.reorder)
                                     run_reorder(P.out.conv_out, P.out.prim, out, P.out.user, pc);
                                 });
  if (!taken) return false;
  for (int64_t j = 0; j < wsize; ++j) {
    float t = 0.f;
    for (int64_t c = 0; c < chunks; ++c) t += partial[c * wsize + j];
    dw[j] = accumulate ? dw[j] + t : t;
  }
  return true;
}


}  // namespace metanas::kernels::cpu::dnnl_plugin

// The plugin's interface (kernels/cpu/conv_library.cpp looks these up by
// name): the same arguments as the conv2d kernels, true when oneDNN ran it.
extern "C" {
__attribute__((visibility("default"))) bool metanas_dnnl_conv_forward(const metanas::ConvGeom* g,
                                                                      const float* x, const float* w,
                                                                      float* y) {
  return metanas::kernels::cpu::dnnl_plugin::conv_forward(*g, x, w, y);
}
__attribute__((visibility("default"))) bool metanas_dnnl_conv_backward_data(
    const metanas::ConvGeom* g, const float* dy, const float* w, const float* x, float* dx,
    bool accumulate) {
  return metanas::kernels::cpu::dnnl_plugin::conv_backward_data(*g, dy, w, x, dx, accumulate);
}
__attribute__((visibility("default"))) bool metanas_dnnl_conv_backward_weight(
    const metanas::ConvGeom* g, const float* x, const float* dy, float* dw, bool accumulate) {
  return metanas::kernels::cpu::dnnl_plugin::conv_backward_weight(*g, x, dy, dw, accumulate);
}
}
