// Backend: the single dispatch point between engine ops and kernels. Every op
// in engine/src/ops checks shapes and devices, then calls backend(device).<kernel>.
// The compute kernels are generated from the op table
// (kernels/include/metanas/kernels/op_table.def, which also states their
// semantics); the CPU backend (kernels/cpu/cpu_backend.cpp) always exists, the
// CUDA backend (kernels/cuda/cuda_backend.cu) is created on first use when the
// build has CUDA and a GPU is visible.
//
// All pointers are device pointers of that backend. Tensors are contiguous.
// Kernels never allocate outside allocate() and never synchronise the host.
// Host synchronisations are counted (host_syncs()): copy_to_host,
// synchronize(), and an upload that has to wait. Uploads go through a pinned
// staging ring of kUploadStagingBytes on CUDA and return without waiting
// unless the upload is larger than the ring (or the ring is still busy); the
// CPU backend counts the calls a GPU run would synchronise in (copy_to_host,
// synchronize, uploads larger than the ring), so its counts predict the GPU's.
//
// Part of the op-author interface (metanas/engine/extension.h), not of the
// public umbrella header. Adding an op: docs/architecture.md.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "metanas/engine/device.h"
#include "metanas/kernels/kernel_types.h"

namespace metanas {

// Capacity of the CUDA backend's pinned upload ring (shared with the CPU
// backend's count of the uploads that would synchronise).
constexpr size_t kUploadStagingBytes = size_t(64) << 20;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // Host synchronisations so far (see above); monotonic, thread-safe.
  uint64_t host_syncs() const { return syncs_.load(std::memory_order_relaxed); }

  // ---- memory ----
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // same device
  virtual void memset_zero(void* p, size_t bytes) = 0;
  virtual void synchronize() = 0;

  // ---- compute kernels: one pure virtual per MN_KERNEL of the op table ----
#define MN_KERNEL(name, params, args) virtual void name params = 0;
#include "metanas/kernels/op_table.def"

 protected:
  void count_sync() { syncs_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> syncs_{0};
};

// The backend of a device. Throws metanas::Error if that device is not
// available in this build / on this machine.
Backend& backend(Device d);

}  // namespace metanas
