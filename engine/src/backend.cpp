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

// ---- execution streams: id bookkeeping shared by the backends ----
namespace {
// The calling thread's current stream, per device.
int& current_slot(Device d) {
  thread_local int cur[2] = {0, 0};
  return cur[static_cast<int>(d)];
}
std::mutex& stream_mu() {
  static std::mutex mu;
  return mu;
}
}  // namespace

void Backend::check_stream(int id, const char* who) const {
  MN_CHECK(id == 0 || (id > 0 && id < kMaxStreams && live_[id].load()), "Backend::", who, ": stream ", id,
           " is not a live stream of the ", device_name(device()), " backend");
}

int Backend::create_stream() {
  std::lock_guard<std::mutex> lock(stream_mu());
  for (int id = 1; id < kMaxStreams; ++id)
    if (!live_[id].load()) {
      on_stream_created(id);  // may throw: the id stays free
      live_[id].store(true);
      return id;
    }
  MN_THROW("Backend::create_stream: all ", kMaxStreams - 1, " streams of the ", device_name(device()),
           " backend are in use");
}

void Backend::destroy_stream(int id) {
  std::lock_guard<std::mutex> lock(stream_mu());
  MN_CHECK(id != 0, "Backend::destroy_stream: the default stream cannot be destroyed");
  check_stream(id, "destroy_stream");
  if (current_slot(device()) == id) set_stream(0);
  on_stream_destroyed(id);
  live_[id].store(false);
}

void Backend::set_stream(int id) {
  check_stream(id, "set_stream");
  current_slot(device()) = id;
  on_stream_set(id);
}

int Backend::current_stream() const { return current_slot(device()); }

void Backend::stream_wait(int waiter, int producer) {
  check_stream(waiter, "stream_wait");
  check_stream(producer, "stream_wait");
  if (waiter == producer) return;
  waits_.fetch_add(1, std::memory_order_relaxed);
  on_stream_wait(waiter, producer);
}

int Backend::live_streams() const {
  int n = 0;
  for (int id = 1; id < kMaxStreams; ++id) n += live_[id].load() ? 1 : 0;
  return n;
}

void Backend::begin_capture() {
  MN_THROW("the ", device_name(device()), " backend does not record graphs (supports_graphs() is false)");
}
int Backend::end_capture() {
  MN_THROW("the ", device_name(device()), " backend does not record graphs");
}
void Backend::abort_capture() {}
void Backend::replay(int) { MN_THROW("the ", device_name(device()), " backend does not replay graphs"); }
void Backend::destroy_graph(int) {}

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
