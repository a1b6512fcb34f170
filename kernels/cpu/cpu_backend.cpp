// CPU backend: forwards every Backend kernel (generated from the op table) to
// kernels/cpu/ through the active ISA variant's table (cpu_isa.cpp) and owns
// host memory.
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/cpu/host_allocator.h"
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/backend.h"
#include "metanas/engine/cpu_isa.h"

namespace metanas {

namespace {
namespace k = kernels::cpu;

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::CPU; }
  void* allocate(size_t bytes) override { return alloc_.allocate(bytes); }
  void deallocate(void* p, size_t bytes) override { alloc_.deallocate(p, bytes); }
  // Counted as the CUDA backend would synchronise (backend.h).
  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    count_upload();
    if (bytes > kUploadStagingBytes) count_sync();
    std::memcpy(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    if (bytes) count_sync();
    std::memcpy(dst, src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override { if (dst != src) std::memmove(dst, src, bytes); }
  void memset_zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void synchronize() override { count_sync(); }

#define MN_KERNEL(name, params, args) \
  void name params override { k::active_kernel_table().name args; }
#include "metanas/kernels/op_table.def"

 private:
  HostAllocator alloc_;
};
}  // namespace

Backend* cpu_backend_instance() {
  // Never destroyed: tensors in other static objects may outlive any
  // destruction order we could pick.
  // Before the first GEMM: OpenBLAS may have picked its SSE3 fallback core.
  // cpu_isa() picks the kernel variant now, so a bad METANAS_CPU_ISA fails here.
  static CpuBackend* instance = (k::ensure_blas_core(), cpu_isa(), new CpuBackend);
  return instance;
}

}  // namespace metanas
