// Which library runs the CPU convolutions oneDNN is faster on: oneDNN when its
// plugin loads (the default, METANAS_CPU_CONV unset or =auto; =dnnl insists on
// it) or the engine's own kernels (conv.cpp; =own, or auto without the plugin). The
// oneDNN code is a plugin, libmetanas_dnnl.so (kernels/cpu/dnnl/conv_dnnl.cpp),
// loaded here with dlopen the first time it is asked for, from the folder
// this library was loaded from (then the loader's search path): the engine
// does not link oneDNN, so programs that never ask for it run without it.
#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

#include "kernels/cpu/conv_shifted.h"
#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {

namespace {

using ForwardFn = bool (*)(const ConvGeom*, const float*, const float*, float*);
using BackwardDataFn = bool (*)(const ConvGeom*, const float*, const float*, const float*, float*, bool);
using BackwardWeightFn = bool (*)(const ConvGeom*, const float*, const float*, float*, bool);

struct Plugin {
  ForwardFn forward = nullptr;
  BackwardDataFn backward_data = nullptr;
  BackwardWeightFn backward_weight = nullptr;
  std::string error;  // why it could not be loaded ("" when loaded)
};

const char* kPluginName = "libmetanas_dnnl.so";

// This library's folder (dladdr on one of its functions), with a '/'.
std::string own_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_folder), &info) == 0 || !info.dli_fname) return "";
  const std::string path = info.dli_fname;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

const Plugin& plugin() {
  static Plugin p;
  static std::once_flag once;
  std::call_once(once, [] {
    void* h = nullptr;
    std::string tried;
    for (const std::string& path : {own_folder() + kPluginName, std::string(kPluginName)}) {
      h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h) break;
      const char* e = dlerror();
      tried += (tried.empty() ? "" : "; ") + std::string(e ? e : path);
    }
    if (!h) {
      p.error = "the oneDNN plugin " + std::string(kPluginName) + " could not be loaded (" + tried +
                "): a build without libdnnl-dev (run scripts/install-deps.sh and rebuild), or "
                "libdnnl.so.2 missing at run time";
      return;
    }
    p.forward = reinterpret_cast<ForwardFn>(dlsym(h, "metanas_dnnl_conv_forward"));
    p.backward_data = reinterpret_cast<BackwardDataFn>(dlsym(h, "metanas_dnnl_conv_backward_data"));
    p.backward_weight = reinterpret_cast<BackwardWeightFn>(dlsym(h, "metanas_dnnl_conv_backward_weight"));
    if (!p.forward || !p.backward_data || !p.backward_weight) {
      p.forward = nullptr;
      p.error = std::string("the oneDNN plugin ") + kPluginName + " lacks its entry points";
    }
  });
  return p;
}

// -1: not read yet, 0: the engine's kernels, 1: oneDNN.
std::atomic<int> g_conv_lib{-1};

int parse_conv_library(const std::string& name, const char* where) {
  if (name.empty() || name == "auto") return plugin().forward ? 1 : 0;
  if (name == "own") return 0;
  if (name == "dnnl" || name == "onednn") {
    const Plugin& p = plugin();
    if (!p.forward) MN_KTHROW(where, "=", name, ": ", p.error);
    return 1;
  }
  MN_KTHROW(where, ": unknown convolution library '", name, "' (auto | own | dnnl)");
}

int conv_lib() {
  int v = g_conv_lib.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("METANAS_CPU_CONV");
    v = parse_conv_library(e ? e : "", "METANAS_CPU_CONV");
    g_conv_lib.store(v, std::memory_order_relaxed);
  }
  return v;
}

}  // namespace

void set_cpu_conv_library(const std::string& name) {
  g_conv_lib.store(parse_conv_library(name, "set_cpu_conv_library"));
}

std::string cpu_conv_library() { return conv_lib() == 1 ? "dnnl" : "own"; }

bool cpu_conv_library_available(const std::string& name) {
  if (name == "own" || name == "auto" || name.empty()) return true;
  return (name == "dnnl" || name == "onednn") && plugin().forward != nullptr;
}

namespace {
// -1: not read yet, 0: off, 1: on.
std::atomic<int> g_shifted{-1};
}  // namespace

bool shifted_conv_enabled() {
  int v = g_shifted.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("METANAS_CPU_SHIFTED_CONV");
    v = e && std::string(e) == "0" ? 0 : 1;
    g_shifted.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

void set_shifted_conv_enabled(bool on) { g_shifted.store(on ? 1 : 0); }

namespace {
std::atomic<int64_t> g_shifted_calls{0};
}  // namespace

int64_t shifted_conv_calls() { return g_shifted_calls.load(); }
void count_shifted_conv_call() { g_shifted_calls.fetch_add(1, std::memory_order_relaxed); }

bool dnnl_conv_forward(const ConvGeom& g, const float* x, const float* w, float* y) {
  return conv_lib() == 1 && plugin().forward(&g, x, w, y);
}

bool dnnl_conv_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                             float* dx, bool accumulate) {
  return conv_lib() == 1 && plugin().backward_data(&g, dy, w, x, dx, accumulate);
}

bool dnnl_conv_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                               bool accumulate) {
  return conv_lib() == 1 && plugin().backward_weight(&g, x, dy, dw, accumulate);
}

}  // namespace metanas::kernels::cpu
