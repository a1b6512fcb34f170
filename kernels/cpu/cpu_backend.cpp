// CPU backend: forwards every Backend kernel (generated from the op table) to
// kernels/cpu/ through the active ISA variant's table (cpu_isa.cpp) and owns
// host memory.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/cpu/host_allocator.h"
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/backend.h"
#include "metanas/engine/cpu_isa.h"
#include "metanas/kernels/philox.h"

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

  // Device-resident step state (backend.h): the same arithmetic as the host
  // code it replaces (Adam::step's bias corrections), so CPU bits do not change.
  void adam_count(int32_t* step2, float beta1, float beta2, float* bias2) override {
    const uint64_t t = (static_cast<uint64_t>(static_cast<uint32_t>(step2[0])) |
                        static_cast<uint64_t>(static_cast<uint32_t>(step2[1])) << 32) + 1;
    step2[0] = static_cast<int32_t>(static_cast<uint32_t>(t));
    step2[1] = static_cast<int32_t>(static_cast<uint32_t>(t >> 32));
    const double td = static_cast<double>(t);
    bias2[0] = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), td));
    bias2[1] = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), td));
  }
  void adam_step_biased(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                        float beta2, float eps, float weight_decay, const float* bias2,
                        const float* grad_scale) override {
    k::active_kernel_table().adam_step(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, bias2[0], bias2[1], grad_scale);
  }
  void drop_path_scales_at(const int32_t* key3, uint32_t step, uint32_t op, float p, float* scale,
                           int64_t n) override {
    k::active_kernel_table().drop_path_scales(kernels::philox_key_from_words(key3, step, op), p, scale, n);
  }

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
