// Backend registry and device resolution. The CPU backend always exists; the
// CUDA backend is created on first use when the build has CUDA and a GPU is
// visible (kernels/cuda/cuda_backend.cu provides cuda_backend_create()).

#include <cstdio>
#include <mutex>

#include "metanas/engine/extension.h"
#include "metanas/engine/error.h"

namespace metanas {

Backend* cpu_backend_instance();  // kernels/cpu/cpu_backend.cpp

#ifdef METANAS_WITH_CUDA
// Returns nullptr (and fills why) when no usable GPU is visible; gpu_visible
// tells a GPU that the backend could not start on from no GPU at all.
Backend* cuda_backend_create(std::string* why, bool* gpu_visible);
#endif

namespace {
struct Registry {
  std::mutex mu;
  Backend* cuda = nullptr;
  bool cuda_probed = false;
  bool gpu_visible = false;
  std::string cuda_why = "this build has no CUDA backend (nvcc was not found at configure time)";
};
Registry& registry() {
  static Registry r;
  return r;
}

Backend* probe_cuda() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!r.cuda_probed) {
    r.cuda_probed = true;
#ifdef METANAS_WITH_CUDA
    r.cuda = cuda_backend_create(&r.cuda_why, &r.gpu_visible);
#endif
  }
  return r.cuda;
}
}  // namespace

namespace kernels {
void raise_error(const std::string& what) { throw Error(what); }
}  // namespace kernels

Backend& backend(Device d) {
  if (d == Device::CPU) return *cpu_backend_instance();
  Backend* b = probe_cuda();
  if (!b) MN_THROW("CUDA device requested but not available: ", registry().cuda_why);
  return *b;
}

bool cuda_compiled() {
#ifdef METANAS_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() { return probe_cuda() != nullptr; }

uint64_t host_syncs(Device d) { return backend(d).host_syncs(); }

bool cuda_gpu_visible() {
  probe_cuda();
  return registry().gpu_visible;
}

std::string cuda_unavailable_reason() { return probe_cuda() ? std::string() : registry().cuda_why; }

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::CPU;
  if (s == "cuda" || s == "cuda:0" || s == "gpu") return Device::CUDA;
  MN_THROW("unknown device '", s, "' (expected 'cpu' or 'cuda')");
}

Device resolve_device(Device requested) {
  if (requested == Device::CPU) return Device::CPU;
  if (cuda_available()) return Device::CUDA;
  static std::once_flag once;
  std::call_once(once, [] {
    std::fprintf(stderr, "metanas: CUDA unavailable (%s); running on the CPU\n",
                 registry().cuda_why.c_str());
  });
  return Device::CPU;
}

}  // namespace metanas
