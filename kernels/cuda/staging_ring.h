// StagingRing: the CUDA backend's host-to-device uploads without a host
// synchronisation. The caller's bytes are copied into a pinned ring chunk and
// sent by cudaMemcpyAsync on the backend's stream; an event per chunk marks
// when it may be reused (bookkeeping in staging_plan.h). upload() returns
// true when it had to wait for the device: the ring was still busy where the
// new chunk goes, or the upload is larger than the ring (then it is a plain
// synchronous copy). Private to the engine library.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "kernels/cuda/staging_plan.h"

namespace metanas::kernels::cuda {

class StagingRing {
 public:
  StagingRing() : plan_(0) {}
  ~StagingRing();  // frees nothing: the process may be tearing CUDA down
  StagingRing(const StagingRing&) = delete;
  StagingRing& operator=(const StagingRing&) = delete;

  void init(size_t capacity);  // cudaHostAlloc; throws metanas::Error
  void release();
  // Enqueues dst <- src (bytes) on `stream`; returns true if it waited.
  bool upload(void* dst, const void* src, size_t bytes, cudaStream_t stream);

 private:
  std::mutex mu_;
  StagingPlan plan_;
  unsigned char* host_ = nullptr;
  std::deque<cudaEvent_t> live_events_;  // parallel to the plan's in-flight chunks
  std::vector<cudaEvent_t> spare_events_;
  uint64_t next_id_ = 0;
  uint64_t first_live_id_ = 0;  // id of live_events_.front()
};

}  // namespace metanas::kernels::cuda
