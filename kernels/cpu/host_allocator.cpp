// Size-bucketed host block cache (see host_allocator.h).
#include "kernels/cpu/host_allocator.h"

#include <cstdlib>

#include "metanas/kernels/kernel_types.h"

namespace metanas {

size_t HostAllocator::bucket(size_t bytes) {
  // Round to 4 KiB pages for cached sizes so near-equal requests share blocks.
  if (bytes < kMinCached) return (bytes + 63) / 64 * 64;
  return (bytes + 4095) / 4096 * 4096;
}

void* HostAllocator::allocate(size_t bytes) {
  const size_t b = bucket(bytes);
  if (b >= kMinCached) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(b);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= b;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, b);
  if (!p) {
    release_cache();  // out of memory: give the cache back and retry once
    p = std::aligned_alloc(64, b);
  }
  if (!p) MN_KTHROW("CPU allocation of ", bytes, " bytes failed (out of memory)");
  return p;
}

void HostAllocator::deallocate(void* p, size_t bytes) {
  if (!p) return;
  const size_t b = bucket(bytes);
  if (b >= kMinCached) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + b <= kMaxCachedBytes) {
      free_[b].push_back(p);
      cached_ += b;
      return;
    }
  }
  std::free(p);
}

void HostAllocator::release_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& kv : free_)
    for (void* p : kv.second) std::free(p);
  free_.clear();
  cached_ = 0;
}

size_t HostAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_;
}

}  // namespace metanas
