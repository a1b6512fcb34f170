// engine-bench: forward and backward time of each engine op on the MetaNAS
// shapes (batch 20, 28 channels, 28x28 / 14x14 / 7x7), as a table of median
// milliseconds and GFLOP/s (convolutions) or GB/s (memory-bound ops).
//
//   engine-bench [--device cpu|cuda] [--reps N] [--warmup N] [--filter TEXT]
//                [--batch N] [--channels C] [--cold] [--json FILE]
//
// --cold (CPU): before each timed forward and each timed backward, 96 MiB are
// written and read, so the op's inputs come from memory as in a meta-iteration
// (where they were written many ops earlier), not from a last-level cache that
// the previous repetition filled. The sweep is not timed.
//
// Forward is timed through the public op (allocation and graph recording
// included); backward calls the recorded node's backward closure directly, so
// it measures the op's own backward and not the autograd sweep or the
// accumulation into leaf gradients. Times are medians (rates use them), with
// the minimum beside them: on a shared machine preemption inflates medians of
// ops lasting a few ms. GB/s counts compulsory traffic: each distinct tensor
// the pass reads or writes, once. Not a test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "metanas/engine/autograd.h"
#include "metanas/engine/extension.h"
#include "metanas/engine/cpu_isa.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"

using namespace metanas;

namespace {

struct Bench {
  std::string op, shape;
  std::function<Tensor()> forward;  // runs the op on captured leaves, recording the graph
  double fwd_work = 0, bwd_work = 0;  // flops, or bytes when !flops
  bool flops = true;
};

struct Result {
  std::string op, shape, error;
  double fwd_ms = 0, bwd_ms = 0, total_ms = 0, fwd_rate = 0, bwd_rate = 0;
  double fwd_min_ms = 0, bwd_min_ms = 0;  // robust to preemption on a busy machine
  bool flops = true;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

// Evicts the caches (see --cold): a write and a read of a buffer several times
// any last-level cache; returns a value so the read is not optimised away.
float evict_caches() {
  static std::vector<float> sweep(size_t{96} << 18);  // 96 MiB of floats
  float acc = 0.f;
  for (size_t i = 0; i < sweep.size(); i += 16) {
    sweep[i] += 1.f;
    acc += sweep[i];
  }
  return acc;
}

Result run(const Bench& b, Device dev, int warmup, int reps, bool cold, Rng& rng) {
  Result r;
  r.op = b.op;
  r.shape = b.shape;
  r.flops = b.flops;
  try {
    Backend& be = backend(dev);
    Tensor gy;
    std::vector<double> tf, tb, tt;
    volatile float sink = 0.f;
    for (int i = 0; i < warmup + reps; ++i) {
      if (cold) sink = sink + evict_caches();
      be.synchronize();
      const double t0 = now_ms();
      Tensor y = b.forward();
      be.synchronize();
      const double t1 = now_ms();
      MN_CHECK(y.impl()->grad_fn, b.op, ": the forward recorded no backward");
      if (!gy.defined()) gy = Tensor::randn(y.shape(), rng, 1.f, 0.f, dev);
      double t2, tb0 = t1;
      {
        NoGradGuard ng;
        if (cold) {
          sink = sink + evict_caches();
          tb0 = now_ms();
        }
        std::vector<Tensor> grads = y.impl()->grad_fn->backward(gy, {});  // fresh gradients: no into buffers
        be.synchronize();
        t2 = now_ms();
      }
      if (i >= warmup) {
        tf.push_back(t1 - t0);
        tb.push_back(t2 - tb0);
        tt.push_back((t1 - t0) + (t2 - tb0));
      }
    }
    r.fwd_ms = median(tf);
    r.bwd_ms = median(tb);
    r.total_ms = median(tt);
    r.fwd_min_ms = *std::min_element(tf.begin(), tf.end());
    r.bwd_min_ms = *std::min_element(tb.begin(), tb.end());
    r.fwd_rate = r.fwd_ms > 0 ? b.fwd_work / (r.fwd_ms * 1e6) : 0;  // per ms -> G per s
    r.bwd_rate = r.bwd_ms > 0 ? b.bwd_work / (r.bwd_ms * 1e6) : 0;
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

std::string shape_str(int64_t N, int64_t C, int64_t H, int64_t W) {
  return std::to_string(N) + "x" + std::to_string(C) + "x" + std::to_string(H) + "x" + std::to_string(W);
}

// All benchmarks at one spatial size.
std::vector<Bench> make_benches(int64_t N, int64_t C, int64_t S, Device dev, Rng& rng) {
  std::vector<Bench> out;
  const double n = static_cast<double>(N * C * S * S);  // elements of one activation
  auto leaf = [&](const Shape& s) { return Tensor::randn(s, rng, 1.f, 0.f, dev).set_requires_grad(); };
  const std::string in_shape = shape_str(N, C, S, S);

  struct ConvSpec {
    const char* name;
    int64_t KH, KW, groups;
    Conv2dOptions opt;
  };
  auto mk = [](int64_t s, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t d, int64_t g) {
    Conv2dOptions o;
    o.stride_h = o.stride_w = s;
    o.pad_top = pt;
    o.pad_bottom = pb;
    o.pad_left = pl;
    o.pad_right = pr;
    o.dil_h = o.dil_w = d;
    o.groups = g;
    o.relu_input = true;  // DARTS ops are relu -> conv
    return o;
  };
  std::vector<ConvSpec> convs = {
      {"conv 1x5 relu", 1, 5, 1, mk(1, 0, 0, 2, 2, 1, 1)},
      {"conv 5x1", 5, 1, 1, mk(1, 2, 2, 0, 0, 1, 1)},
      {"dwconv 3x3 relu", 3, 3, C, mk(1, 1, 1, 1, 1, 1, C)},
      {"dwconv 3x3 dil2 relu", 3, 3, C, mk(1, 2, 2, 2, 2, 2, C)},
      {"dwconv 3x3 s2 relu", 3, 3, C, mk(2, 1, 1, 1, 1, 1, C)},
      {"dwconv 3x3 dil2 s2 relu", 3, 3, C, mk(2, 2, 2, 2, 2, 2, C)},
      {"pwconv 1x1", 1, 1, 1, mk(1, 0, 0, 0, 0, 1, 1)},
      {"conv 3x3", 3, 3, 1, mk(1, 1, 1, 1, 1, 1, 1)},  // the 4-conv networks (--channels 64)
      {"conv 1x5 s2 relu", 1, 5, 1, mk(2, 0, 0, 2, 2, 1, 1)},  // a reduction cell's 1x5 / 5x1 pair
  };
  convs[1].opt.relu_input = false;  // second conv of a 1x5/5x1 pair reads the first's output
  convs[6].opt.relu_input = false;
  convs[7].opt.relu_input = false;
  for (const auto& c : convs) {
    if (c.opt.stride_h > 1 && S < 14) continue;  // reductions happen at 28 and 14
    Tensor x = leaf({N, C, S, S});
    Tensor w = leaf({C, C / c.groups, c.KH, c.KW});
    const Conv2dOptions o = c.opt;
    const int64_t OH = conv_out_size(S, c.KH, o.stride_h, o.pad_top, o.pad_bottom, o.dil_h);
    const int64_t OW = conv_out_size(S, c.KW, o.stride_w, o.pad_left, o.pad_right, o.dil_w);
    const double f = 2.0 * N * C * OH * OW * (C / c.groups) * c.KH * c.KW;
    Bench b;
    b.op = c.name;
    b.shape = in_shape;
    b.forward = [x, w, o] { return conv2d(x, w, o); };
    b.fwd_work = f;
    b.bwd_work = 2 * f;  // data + weight gradients
    out.push_back(b);
  }

  for (int64_t stride : {1, 2}) {
    if (stride > 1 && S < 14) continue;
    const int64_t O = (S + 2 - 3) / stride + 1;
    const double m = static_cast<double>(N * C * O * O);
    Tensor x = leaf({N, C, S, S});
    const std::string sfx = stride == 1 ? " 3x3 s1" : " 3x3 s2";
    out.push_back({"max_pool" + sfx, in_shape, [x, stride] { return max_pool2d(x, 3, stride, 1); },
                   4 * n + 8 * m, 8 * m + 4 * n, false});
    out.push_back({"avg_pool" + sfx, in_shape, [x, stride] { return avg_pool2d(x, 3, stride, 1); },
                   4 * n + 4 * m, 4 * m + 4 * n, false});
  }

  {  // the 4-conv networks' pool (issue 15: its own fast path)
    const double m = static_cast<double>(N * C * (S / 2) * (S / 2));
    Tensor x = leaf({N, C, S, S});
    out.push_back({"max_pool 2x2 s2", in_shape, [x] { return max_pool2d(x, 2, 2, 0); },
                   4 * n + 8 * m, 8 * m + 4 * n, false});
  }

  {
    Tensor x = leaf({N, C, S, S});
    Tensor rm = Tensor::zeros({C}, DType::F32, dev), rv = Tensor::ones({C}, dev);
    out.push_back({"batch_norm train", in_shape,
                   [x, rm, rv] { return batch_norm(x, Tensor(), Tensor(), rm, rv); }, 8 * n, 12 * n,
                   false});
    Tensor g = leaf({C}), bta = leaf({C});
    out.push_back({"batch_norm train affine", in_shape,
                   [x, g, bta, rm, rv] { return batch_norm(x, g, bta, rm, rv); }, 8 * n, 12 * n, false});
  }

  {
    const int K = 7;
    std::vector<Tensor> xs;
    for (int k = 0; k < K; ++k) xs.push_back(leaf({N, C, S, S}));
    Tensor w = leaf({K});
    out.push_back({"weighted_sum K=7", in_shape, [xs, w] { return weighted_sum(xs, w); },
                   4.0 * (K + 1) * n, 4.0 * (2 * K + 1) * n, false});
    // MetaNAS's mixed op with the 6 batch norms of its non-skip ops folded in
    // (the unfused equivalent: 6 x "batch_norm train" + "weighted_sum K=7").
    // Bytes: statistics read 6 inputs, the sum reads 7 and writes y; backward
    // reads dy and 7 inputs, then 7 inputs again and writes 7 gradients.
    const std::vector<bool> norm = {true, true, false, true, true, true, true};
    out.push_back({"normalized_sum K=7 (6 bn)", in_shape,
                   [xs, w, norm] { return normalized_weighted_sum(xs, w, Tensor(), norm); }, 4.0 * 14 * n,
                   4.0 * 22 * n, false});
  }
  {
    // A W1 node with 3 inputs: 21 terms, 18 normalised (37 MB of inputs at
    // 28x28, more than the L3). Bytes as above: forward 18 + 21 + 1, backward
    // 1 + 21, then 1 + 21 read and 21 written.
    const int K = 21;
    std::vector<Tensor> xs;
    std::vector<bool> norm;
    for (int k = 0; k < K; ++k) {
      xs.push_back(leaf({N, C, S, S}));
      norm.push_back(k % 7 != 2);  // every edge's skip_connect is plain
    }
    Tensor w = leaf({K});
    out.push_back({"normalized_sum K=21 (18 bn)", in_shape,
                   [xs, w, norm] { return normalized_weighted_sum(xs, w, Tensor(), norm); }, 4.0 * 40 * n,
                   4.0 * 65 * n, false});
  }
  return out;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "%s\nusage: engine-bench [--device cpu|cuda] [--reps N] [--warmup N] [--filter TEXT]\n"
               "                    [--batch N] [--channels C] [--cold] [--json FILE]\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "cpu", json_path, filter;
  int reps = 50, warmup = 5;
  bool cold = false;
  int64_t batch = 20, channels = 28;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    try {
      if (a == "--device") device = next();
      else if (a == "--reps") reps = std::stoi(next());
      else if (a == "--warmup") warmup = std::stoi(next());
      else if (a == "--filter") filter = next();
      else if (a == "--batch") batch = std::stoll(next());
      else if (a == "--channels") channels = std::stoll(next());
      else if (a == "--json") json_path = next();
      else if (a == "--cold") cold = true;
      else if (a == "--help" || a == "-h") usage("engine-bench: per-op forward/backward timings");
      else usage(("unknown argument " + a).c_str());
    } catch (const std::logic_error&) {
      usage(("bad number for " + a).c_str());
    }
  }
  if (reps < 1 || warmup < 0 || batch < 1 || channels < 1) usage("reps, batch and channels must be >= 1");

  Device dev;
  try {
    dev = resolve_device(parse_device(device));
  } catch (const Error& e) {
    usage(e.what());
  }
  const char* omp = std::getenv("OMP_NUM_THREADS");
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  // On an oversubscribed machine spinning OpenMP workers stall each other for
  // whole scheduler slices; OMP_WAIT_POLICY=passive avoids that.
  std::printf("engine-bench: device %s, %d reps after %d warm-up, OMP_NUM_THREADS=%s, "
              "OMP_WAIT_POLICY=%s, CPU kernels %s%s\n",
              device_name(dev), reps, warmup, omp ? omp : "(unset)", wait ? wait : "(unset)",
              cpu_isa_name(cpu_isa()), cold ? ", cold caches" : "");
  std::printf("%-24s %-12s %8s %8s %8s %8s %8s %9s %9s  %s\n", "op", "input", "fwd ms",
              "bwd ms", "total ms", "fwd min", "bwd min", "fwd rate", "bwd rate", "unit");

  Rng rng(1234);
  std::vector<Result> results;
  int failures = 0;
  for (int64_t S : {28, 14, 7}) {
    for (const Bench& b : make_benches(batch, channels, S, dev, rng)) {
      if (!filter.empty() && b.op.find(filter) == std::string::npos) continue;
      Result r = run(b, dev, warmup, reps, cold, rng);
      if (!r.error.empty()) {
        ++failures;
        std::printf("%-24s %-12s   FAILED: %s\n", r.op.c_str(), r.shape.c_str(), r.error.c_str());
      } else {
        std::printf("%-24s %-12s %8.3f %8.3f %8.3f %8.3f %8.3f %9.1f %9.1f  %s\n", r.op.c_str(),
                    r.shape.c_str(), r.fwd_ms, r.bwd_ms, r.total_ms, r.fwd_min_ms, r.bwd_min_ms,
                    r.fwd_rate, r.bwd_rate, r.flops ? "GFLOP/s" : "GB/s");
      }
      std::fflush(stdout);
      results.push_back(r);
    }
  }

  if (!json_path.empty()) {
    nlohmann::json j;
    j["device"] = device_name(dev);
    j["reps"] = reps;
    j["warmup"] = warmup;
    j["cold"] = cold;
    j["batch"] = batch;
    j["channels"] = channels;
    j["omp_num_threads"] = omp ? omp : "";
    j["omp_wait_policy"] = wait ? wait : "";
    j["cpu_isa"] = cpu_isa_name(cpu_isa());
    for (const Result& r : results) {
      nlohmann::json e = {{"op", r.op}, {"input", r.shape}};
      if (!r.error.empty()) {
        e["error"] = r.error;
      } else {
        e["fwd_ms"] = r.fwd_ms;
        e["bwd_ms"] = r.bwd_ms;
        e["total_ms"] = r.total_ms;
        e["fwd_min_ms"] = r.fwd_min_ms;
        e["bwd_min_ms"] = r.bwd_min_ms;
        e["unit"] = r.flops ? "GFLOP/s" : "GB/s";
        e["fwd_rate"] = r.fwd_rate;
        e["bwd_rate"] = r.bwd_rate;
      }
      j["results"].push_back(e);
    }
    std::ofstream f(json_path);
    if (!f) {
      std::fprintf(stderr, "engine-bench: cannot write %s\n", json_path.c_str());
      return 1;
    }
    f << j.dump(2) << "\n";
  }
  return failures ? 1 : 0;
}
