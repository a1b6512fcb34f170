// conv-lib-bench: the engine's CPU convolution kernels (shifted GEMM for narrow
// stride-1 dense convs, im2col + OpenBLAS, direct depthwise; run it under
// METANAS_CPU_CONV=own so that "ours" is only those, and METANAS_CPU_SHIFTED_CONV=0
// for the kernels before the shifted ones) against oneDNN and libxsmm on the shapes the networks
// use: the 4-conv networks' dense 3x3 (--channels 64) and the MetaNAS ops
// (--channels 28; 1x5/5x1 pairs, 1x1, depthwise 3x3 with dilation / stride),
// at 28x28, 14x14 and 7x7, for forward, backward-data and backward-weight.
//
//   conv-lib-bench [--threads N] [--reps N] [--warmup N] [--batch N]
//                  [--channels C] [--filter TEXT] [--json FILE]
//
// Issue 15 asks to measure these libraries before writing our own kernels and
// to use the fastest per op; this is that measurement. The implementations
// run interleaved (ours, oneDNN, libxsmm, ours, ...) so that a busy machine
// slows them alike; the table gives minimum and median milliseconds, GFLOP/s
// of the minimum, and the largest difference of each library's result from
// ours relative to the largest |value| (a library that computes something
// else is caught here, not trusted). Library times include the reorders from
// and to the engine's NCHW / OIHW layouts. Not a test.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "conv_lib.h"
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"

using namespace metanas;
namespace kc = metanas::kernels::cpu;

namespace convlib {
const char* pass_name(Pass p) {
  return p == Pass::forward ? "fwd" : p == Pass::backward_data ? "bwd data" : "bwd weight";
}
}  // namespace convlib

namespace {
using convlib::ConvData;
using convlib::ConvImpl;
using convlib::Pass;

// The engine's own kernels behind the same interface (accumulate = false, as
// the libraries overwrite).
class OursConv final : public ConvImpl {
 public:
  explicit OursConv(const ConvData& d) : d_(d), t_(kc::active_kernel_table()) {
    y_.assign(d.g.N * d.g.Cout * d.g.OH * d.g.OW, 0.f);
    dx_.assign(d.x.size(), 0.f);
    dw_.assign(d.w.size(), 0.f);
  }
  void run(Pass p) override {
    const auto& g = d_.g;
    if (p == Pass::forward) t_.conv2d_forward(g, d_.x.data(), d_.w.data(), y_.data());
    if (p == Pass::backward_data)
      t_.conv2d_backward_data(g, d_.dy.data(), d_.w.data(), d_.x.data(), dx_.data(), false);
    if (p == Pass::backward_weight)
      t_.conv2d_backward_weight(g, d_.x.data(), d_.dy.data(), dw_.data(), false);
  }
  const std::vector<float>& result(Pass p) override {
    return p == Pass::forward ? y_ : p == Pass::backward_data ? dx_ : dw_;
  }

 private:
  const ConvData& d_;
  const kc::KernelTable& t_;
  std::vector<float> y_, dx_, dw_;
};

struct Case {
  std::string op, shape;
  ConvData d;
};

ConvGeom geom(int64_t N, int64_t C, int64_t S, int64_t KH, int64_t KW, int64_t stride, int64_t pt,
              int64_t pb, int64_t pl, int64_t pr, int64_t dil, int64_t groups, bool relu) {
  ConvGeom g;
  g.N = N;
  g.Cin = g.Cout = C;
  g.H = g.W = S;
  g.KH = KH;
  g.KW = KW;
  g.stride_h = g.stride_w = stride;
  g.pad_top = pt;
  g.pad_bottom = pb;
  g.pad_left = pl;
  g.pad_right = pr;
  g.dil_h = g.dil_w = dil;
  g.groups = groups;
  g.relu_input = relu;
  g.OH = conv_out_size(S, KH, stride, pt, pb, dil);
  g.OW = conv_out_size(S, KW, stride, pl, pr, dil);
  return g;
}

std::vector<Case> make_cases(int64_t N, int64_t C, Rng& rng) {
  struct Spec {
    const char* op;
    int64_t KH, KW, stride, pt, pb, pl, pr, dil;
    bool depthwise, relu;
  };
  // The engine-bench conv rows (same names, same settings).
  const Spec specs[] = {
      {"conv 1x5 relu", 1, 5, 1, 0, 0, 2, 2, 1, false, true},
      {"conv 5x1", 5, 1, 1, 2, 2, 0, 0, 1, false, false},
      {"dwconv 3x3 relu", 3, 3, 1, 1, 1, 1, 1, 1, true, true},
      {"dwconv 3x3 dil2 relu", 3, 3, 1, 2, 2, 2, 2, 2, true, true},
      {"dwconv 3x3 s2 relu", 3, 3, 2, 1, 1, 1, 1, 1, true, true},
      {"pwconv 1x1", 1, 1, 1, 0, 0, 0, 0, 1, false, false},
      {"conv 3x3", 3, 3, 1, 1, 1, 1, 1, 1, false, false},
  };
  std::vector<Case> out;
  for (int64_t S : {28, 14, 7}) {
    for (const Spec& s : specs) {
      Case c;
      c.op = s.op;
      c.shape = std::to_string(N) + "x" + std::to_string(C) + "x" + std::to_string(S) + "x" +
                std::to_string(S);
      c.d.g = geom(N, C, S, s.KH, s.KW, s.stride, s.pt, s.pb, s.pl, s.pr, s.dil,
                   s.depthwise ? C : 1, s.relu);
      const auto& g = c.d.g;
      auto fill = [&](std::vector<float>& v, int64_t n) {
        v.resize(n);
        for (auto& e : v) e = rng.normal();
      };
      fill(c.d.x, g.N * g.Cin * g.H * g.W);
      fill(c.d.w, g.Cout * (g.Cin / g.groups) * g.KH * g.KW);
      fill(c.d.dy, g.N * g.Cout * g.OH * g.OW);
      out.push_back(std::move(c));
    }
  }
  return out;
}

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& ref) {
  double scale = 0, diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, (double)std::fabs(ref[i]));
    diff = std::max(diff, (double)std::fabs(a[i] - ref[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "conv-lib-bench: %s\nusage: conv-lib-bench [--threads N] [--reps N] [--warmup N] "
               "[--batch N] [--channels C] [--filter TEXT] [--json FILE]\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int threads = 1, reps = 10, warmup = 2;
    int64_t batch = 20, channels = 28;
    std::string filter, json_path;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) usage(("missing value after " + a).c_str());
        return argv[++i];
      };
      if (a == "--threads") threads = std::stoi(next());
      else if (a == "--reps") reps = std::stoi(next());
      else if (a == "--warmup") warmup = std::stoi(next());
      else if (a == "--batch") batch = std::stoll(next());
      else if (a == "--channels") channels = std::stoll(next());
      else if (a == "--filter") filter = next();
      else if (a == "--json") json_path = next();
      else if (a == "--help" || a == "-h") usage("help");
      else usage(("unknown argument " + a).c_str());
    }
    if (threads < 1 || reps < 1 || warmup < 0 || batch < 1 || channels < 1)
      usage("threads, reps, batch and channels must be >= 1");
    omp_set_num_threads(threads);
    const std::string core = kc::ensure_blas_core();
    std::printf("# conv-lib-bench: %d thread(s), batch %lld, %lld channels, reps %d (+%d warm-up); "
                "OpenBLAS core %s\n",
                threads, (long long)batch, (long long)channels, reps, warmup,
                core.empty() ? "(not OpenBLAS)" : core.c_str());
#ifndef METANAS_HAVE_DNNL
    std::printf("# oneDNN: not built (install libdnnl-dev and re-run cmake)\n");
#endif
#ifndef METANAS_HAVE_XSMM
    std::printf("# libxsmm: not built (install libxsmm-dev and re-run cmake)\n");
#endif
    std::printf("\n| op | input | pass | ours min ms | ours med ms | oneDNN min ms | oneDNN med ms | "
                "libxsmm min ms | libxsmm med ms | GFLOP/s ours / oneDNN / libxsmm | fastest | "
                "max rel diff oneDNN / libxsmm |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    Rng rng(15);
    nlohmann::json rows = nlohmann::json::array();
    for (const Case& c : make_cases(batch, channels, rng)) {
      if (!filter.empty() && (c.op + " " + c.shape).find(filter) == std::string::npos) continue;
      const char* names[3] = {"ours", "oneDNN", "libxsmm"};
      std::unique_ptr<ConvImpl> impl[3];
      std::string why[3];
      impl[0] = std::make_unique<OursConv>(c.d);
#ifdef METANAS_HAVE_DNNL
      impl[1] = convlib::make_dnnl(c.d, threads, &why[1]);
#else
      why[1] = "not built";
#endif
#ifdef METANAS_HAVE_XSMM
      impl[2] = convlib::make_xsmm(c.d, threads, &why[2]);
#else
      why[2] = "not built";
#endif
      const auto& g = c.d.g;
      const double flops = 2.0 * g.N * g.Cout * g.OH * g.OW * (g.Cin / g.groups) * g.KH * g.KW;
      for (Pass p : {Pass::forward, Pass::backward_data, Pass::backward_weight}) {
        std::vector<double> t[3];
        for (int r = 0; r < warmup + reps; ++r) {
          for (int k = 0; k < 3; ++k) {
            if (!impl[k]) continue;
            const double t0 = now_ms();
            impl[k]->run(p);
            const double t1 = now_ms();
            if (r >= warmup) t[k].push_back(t1 - t0);
          }
        }
        double mn[3] = {0, 0, 0}, md[3] = {0, 0, 0}, diff[3] = {0, 0, 0};
        int best = 0;
        for (int k = 0; k < 3; ++k) {
          if (!impl[k]) continue;
          mn[k] = *std::min_element(t[k].begin(), t[k].end());
          md[k] = median(t[k]);
          if (k > 0) diff[k] = max_rel_diff(impl[k]->result(p), impl[0]->result(p));
          if (mn[k] < mn[best]) best = k;
        }
        auto cell = [&](int k, double v) {
          char buf[64];
          if (!impl[k]) return std::string("—");
          std::snprintf(buf, sizeof buf, "%.3f", v);
          return std::string(buf);
        };
        auto rate = [&](int k) {
          char buf[32];
          if (!impl[k]) return std::string("—");
          std::snprintf(buf, sizeof buf, "%.1f", flops / (mn[k] * 1e6));
          return std::string(buf);
        };
        auto dcell = [&](int k) {
          char buf[32];
          if (!impl[k]) return std::string("—");
          std::snprintf(buf, sizeof buf, "%.1e", diff[k]);
          return std::string(buf);
        };
        std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s / %s |\n",
                    c.op.c_str(), c.shape.c_str(), convlib::pass_name(p), cell(0, mn[0]).c_str(),
                    cell(0, md[0]).c_str(), cell(1, mn[1]).c_str(), cell(1, md[1]).c_str(),
                    cell(2, mn[2]).c_str(), cell(2, md[2]).c_str(), rate(0).c_str(), rate(1).c_str(),
                    rate(2).c_str(), names[best], dcell(1).c_str(), dcell(2).c_str());
        std::fflush(stdout);
        nlohmann::json row = {{"op", c.op}, {"shape", c.shape}, {"pass", convlib::pass_name(p)},
                              {"fastest", names[best]}, {"gflop", flops / 1e9}};
        for (int k = 0; k < 3; ++k) {
          if (impl[k])
            row[names[k]] = {{"min_ms", mn[k]}, {"median_ms", md[k]}, {"max_rel_diff", diff[k]}};
          else
            row[names[k]] = {{"unavailable", why[k]}};
        }
        rows.push_back(row);
      }
      for (int k = 1; k < 3; ++k)
        if (!impl[k] && why[k] != "not built")
          std::printf("|   | %s %s: %s unavailable: %s | | | | | | | | | | |\n", c.op.c_str(),
                      c.shape.c_str(), names[k], why[k].c_str());
    }
    if (!json_path.empty()) {
      std::ofstream f(json_path);
      MN_CHECK(f.good(), "conv-lib-bench: cannot write ", json_path);
      f << nlohmann::json{{"threads", threads}, {"batch", batch}, {"channels", channels},
                          {"reps", reps}, {"rows", rows}}
               .dump(1)
        << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conv-lib-bench: error: %s\n", e.what());
    return 1;
  }
}
