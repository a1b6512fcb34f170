// Backend: the single dispatch point between engine ops and kernels. Every op
// in engine/src/ops checks shapes and devices, then calls backend(device).<kernel>.
// The compute kernels are generated from the op table
// (kernels/include/metanas/kernels/op_table.def, which also states their
// semantics); the CPU backend (kernels/cpu/cpu_backend.cpp) always exists, the
// CUDA backend (kernels/cuda/cuda_backend.cu) is created on first use when the
// build has CUDA and a GPU is visible.
//
// All pointers are device pointers of that backend. Tensors are contiguous.
// Kernels never allocate outside allocate() and never synchronise the host,
// except the explicit copy_to_host.
//
// Part of the op-author interface (metanas/engine/extension.h), not of the
// public umbrella header. Adding an op: docs/architecture.md.
#pragma once
#include <cstddef>
#include <cstdint>

#include "metanas/engine/device.h"
#include "metanas/kernels/kernel_types.h"

namespace metanas {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

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
};

// The backend of a device. Throws metanas::Error if that device is not
// available in this build / on this machine.
Backend& backend(Device d);

}  // namespace metanas
