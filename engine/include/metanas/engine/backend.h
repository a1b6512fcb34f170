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
  // copy_from_host calls so far (a step with none may be captured as a graph).
  uint64_t uploads() const { return uploads_.load(std::memory_order_relaxed); }

  // ---- execution streams (docs/architecture.md, "Task streams and CUDA graphs") ----
  // A stream is an id in 1..kMaxStreams-1; 0 is the default stream. The work a
  // thread issues goes to its current stream (set_stream, per thread and
  // backend). stream_wait(waiter, producer): work issued later on `waiter`
  // waits for the work issued on `producer` so far. On CUDA each stream has
  // its own cudaStream_t, cuBLAS and cuDNN handles, cuBLAS workspace and
  // allocator pool; the CPU backend runs everything in issue order, so its
  // streams are ids only (checked like CUDA's, waits counted). Memory rule:
  // a block is reused only by its allocating stream, so a tensor made on one
  // stream and read on another must live until a wait orders the two.
  static constexpr int kMaxStreams = 64;
  int create_stream();
  void destroy_stream(int id);  // synchronises that stream (counted)
  void set_stream(int id);
  int current_stream() const;
  void stream_wait(int waiter, int producer);
  int live_streams() const;
  uint64_t stream_waits() const { return waits_.load(std::memory_order_relaxed); }

  // ---- graph capture (CUDA graphs; off unless a caller asks) ----
  // Whether this backend records and replays graphs (CPU: no; a caller runs
  // the step eagerly instead). begin_capture records the current stream's
  // work (nothing runs; temporaries come from a pool private to the graph,
  // kept while it lives; a host synchronisation or upload throws) until
  // end_capture, which returns the graph's id; abort_capture drops a failed
  // one. replay(id) launches it on the current stream; destroy_graph frees
  // it (synchronising its stream) and its pool.
  virtual bool supports_graphs() const { return false; }
  virtual void begin_capture();
  virtual int end_capture();
  virtual void abort_capture();
  virtual void replay(int graph);
  virtual void destroy_graph(int graph);

  // ---- memory ----
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // same device
  virtual void memset_zero(void* p, size_t bytes) = 0;
  virtual void synchronize() = 0;

  // ---- device-resident step state (issue 16: graph keys that repeat) ----
  // Not ops (no tensor semantics, no gradients), so not in the op table: the
  // values that change from step to step (Adam's step count, the drop-path
  // key's seed and task) are read from device memory rather than passed as
  // host arguments, so a captured CUDA graph replays with the current values.
  // adam_count: t = step2[0] | step2[1] << 32 (uint32 words); ++t is stored
  //   back; bias2[0] = float(1 - beta1^t), bias2[1] = float(1 - beta2^t),
  //   computed in double (Adam::step's bias corrections).
  virtual void adam_count(int32_t* step2, float beta1, float beta2, float* bias2) = 0;
  // adam_step (op table) with bc1 = bias2[0], bc2 = bias2[1] read on the device.
  virtual void adam_step_biased(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                                float beta2, float eps, float weight_decay, const float* bias2,
                                const float* grad_scale) = 0;
  // drop_path_scales (op table) for the key {seed, task, step, op} with seed
  // = key3[0] | key3[1] << 32 and task = key3[2] read on the device
  // (philox_key_from_words), step and op from the host.
  virtual void drop_path_scales_at(const int32_t* key3, uint32_t step, uint32_t op, float p, float* scale,
                                   int64_t n) = 0;

  // ---- compute kernels: one pure virtual per MN_KERNEL of the op table ----
#define MN_KERNEL(name, params, args) virtual void name params = 0;
#include "metanas/kernels/op_table.def"

 protected:
  void count_sync() { syncs_.fetch_add(1, std::memory_order_relaxed); }
  void count_upload() { uploads_.fetch_add(1, std::memory_order_relaxed); }
  // Stream hooks of a backend with real streams (the id bookkeeping is here).
  virtual void on_stream_created(int /*id*/) {}
  virtual void on_stream_destroyed(int /*id*/) {}
  virtual void on_stream_set(int /*id*/) {}
  virtual void on_stream_wait(int /*waiter*/, int /*producer*/) {}

 private:
  void check_stream(int id, const char* who) const;
  std::atomic<uint64_t> syncs_{0}, uploads_{0}, waits_{0};
  std::atomic<bool> live_[kMaxStreams] = {};
};

// The backend of a device. Throws metanas::Error if that device is not
// available in this build / on this machine.
Backend& backend(Device d);

}  // namespace metanas
