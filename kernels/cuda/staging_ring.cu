// The pinned upload ring of the CUDA backend (staging_ring.h): host memcpy
// into a ring chunk, cudaMemcpyAsync from it, an event to know when the
// chunk is free again. No CPU reference: it moves bytes, and the parity tests
// check every upload's contents on the GPU.
#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/staging_ring.h"

namespace metanas::kernels::cuda {

StagingRing::~StagingRing() = default;

void StagingRing::init(size_t capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  MN_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&host_), capacity, cudaHostAllocDefault));
  plan_ = StagingPlan(capacity);
}

void StagingRing::release() {
  std::lock_guard<std::mutex> lock(mu_);
  for (cudaEvent_t e : live_events_) {
    (void)cudaEventSynchronize(e);
    (void)cudaEventDestroy(e);
  }
  for (cudaEvent_t e : spare_events_) (void)cudaEventDestroy(e);
  live_events_.clear();
  spare_events_.clear();
  if (host_) (void)cudaFreeHost(host_);
  host_ = nullptr;
  plan_ = StagingPlan(0);
}

bool StagingRing::upload(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!host_ || !plan_.fits(bytes)) {
    // Larger than the ring: the caller may reuse src once we return.
    MN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
    MN_CUDA_CHECK(cudaStreamSynchronize(stream));
    return true;
  }
  auto retire_through = [&](uint64_t id) {
    plan_.retire_through(id);
    while (!live_events_.empty() && first_live_id_ <= id) {
      spare_events_.push_back(live_events_.front());
      live_events_.pop_front();
      ++first_live_id_;
    }
  };
  // Retire what has finished, without waiting.
  while (!live_events_.empty()) {
    const cudaError_t q = cudaEventQuery(live_events_.front());
    if (q == cudaErrorNotReady) break;
    MN_CUDA_CHECK(q);
    retire_through(first_live_id_);
  }
  uint64_t wait_for = StagingPlan::kNone;
  const uint64_t id = next_id_++;
  const size_t off = plan_.take(bytes, id, &wait_for);
  bool waited = false;
  if (wait_for != StagingPlan::kNone) {
    MN_CUDA_CHECK(cudaEventSynchronize(live_events_[static_cast<size_t>(wait_for - first_live_id_)]));
    retire_through(wait_for);
    waited = true;
  }
  std::memcpy(host_ + off, src, bytes);
  MN_CUDA_CHECK(cudaMemcpyAsync(dst, host_ + off, bytes, cudaMemcpyHostToDevice, stream));
  cudaEvent_t ev = nullptr;
  if (!spare_events_.empty()) {
    ev = spare_events_.back();
    spare_events_.pop_back();
  } else {
    MN_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  }
  MN_CUDA_CHECK(cudaEventRecord(ev, stream));
  if (live_events_.empty()) first_live_id_ = id;
  live_events_.push_back(ev);
  plan_.commit();
  return waited;
}

}  // namespace metanas::kernels::cuda
