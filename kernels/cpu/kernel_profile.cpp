// METANAS_CPU_PROFILE=1: a KernelTable that wraps every CPU kernel of the op
// table with a wall-clock timer and, at exit, prints to stderr the time and
// call count per kernel (convolutions also per geometry class: depthwise /
// 1x1 / dense KxK, stride, dilation, channels, size), largest first. This is
// how the hot paths of a workload are found without a profiler that can walk
// -O3 stacks; it costs ~0.1 us per kernel call. Results are unchanged (the
// wrapped kernels are the active ISA's own).
//   METANAS_CPU_PROFILE=1 build/bin/meta-step-bench --phase search --iters 1
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {
namespace {

struct Stat {
  double seconds = 0;
  int64_t calls = 0;
};

struct Profile {
  std::mutex mu;
  std::map<std::string, Stat> stats;
  const KernelTable* inner = nullptr;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  ~Profile() {
    if (!stats.empty()) std::fputs(report().c_str(), stderr);
  }

  std::string report() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::pair<std::string, Stat>> rows(stats.begin(), stats.end());
    double total = 0;
    for (const auto& r : rows) total += r.second.seconds;
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "\nMETANAS_CPU_PROFILE: %.3f s in CPU kernels of %.3f s since the first kernel call\n",
                  total, wall);
    out += line;
    std::snprintf(line, sizeof line, "%10s %6s %10s %12s  %s\n", "seconds", "%", "calls", "us/call", "kernel");
    out += line;
    for (const auto& r : rows) {
      std::snprintf(line, sizeof line, "%10.3f %6.2f %10lld %12.2f  %s\n", r.second.seconds,
                    total > 0 ? 100.0 * r.second.seconds / total : 0.0, static_cast<long long>(r.second.calls),
                    r.second.calls ? 1e6 * r.second.seconds / r.second.calls : 0.0, r.first.c_str());
      out += line;
    }
    return out;
  }
};

Profile& profile() {
  static Profile p;
  return p;
}

class Timed {
 public:
  explicit Timed(const char* name) : name_(name), t0_(std::chrono::steady_clock::now()) {}
  Timed(const char* name, const ConvGeom& g) : Timed(name) { detail_ = describe(g); }
  ~Timed() {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    Profile& p = profile();
    std::lock_guard<std::mutex> lock(p.mu);
    Stat& st = p.stats[detail_.empty() ? std::string(name_) : std::string(name_) + " " + detail_];
    st.seconds += s;
    ++st.calls;
  }

 private:
  static std::string describe(const ConvGeom& g) {
    const bool dw = g.groups > 1 && g.groups == g.Cin && g.groups == g.Cout;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s %lldx%lld s%lld d%lld C%lld->%lld %lldx%lld%s", dw ? "dw" : "dense",
                  static_cast<long long>(g.KH), static_cast<long long>(g.KW), static_cast<long long>(g.stride_h),
                  static_cast<long long>(g.dil_h), static_cast<long long>(g.Cin), static_cast<long long>(g.Cout),
                  static_cast<long long>(g.H), static_cast<long long>(g.W), g.relu_input ? " relu" : "");
    return buf;
  }
  const char* name_;
  std::string detail_;
  std::chrono::steady_clock::time_point t0_;
};

template <typename... A>
const ConvGeom* conv_geom_of(const ConvGeom& g, A&&...) { return &g; }
template <typename... A>
const ConvGeom* conv_geom_of(A&&...) { return nullptr; }

#define MN_KERNEL(name, params, args)                                   \
  void profiled_##name params {                                          \
    const ConvGeom* geom = conv_geom_of args;                            \
    if (geom) {                                                          \
      Timed t(#name, *geom);                                             \
      profile().inner->name args;                                        \
    } else {                                                             \
      Timed t(#name);                                                    \
      profile().inner->name args;                                        \
    }                                                                    \
  }
#include "metanas/kernels/op_table.def"
#undef MN_KERNEL

}  // namespace

const KernelTable* profiled_kernel_table(const KernelTable* inner) {
  static const KernelTable table = {
#define MN_KERNEL(name, params, args) &profiled_##name,
#include "metanas/kernels/op_table.def"
#undef MN_KERNEL
  };
  if (inner != &table) profile().inner = inner;  // wrapping the wrapper would recurse
  return &table;
}

std::string kernel_profile_report() { return profile().report(); }

bool cpu_profile_requested() {
  const char* v = std::getenv("METANAS_CPU_PROFILE");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

}  // namespace metanas::kernels::cpu
