// Caching device allocator (see caching_allocator.h) and the launch check.
#include <cstdlib>

#include "kernels/cuda/caching_allocator.h"
#include "kernels/cuda/cuda_check.h"

namespace metanas::kernels::cuda {

bool sync_check_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("METANAS_CUDA_SYNC_CHECK");
    return v && *v && *v != '0';
  }();
  return on;
}

void launch_check(const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && sync_check_enabled()) e = cudaDeviceSynchronize();
  if (e != cudaSuccess) throw_cuda(e, "kernel launch", file, line);
}

CachingAllocator::~CachingAllocator() = default;

namespace {
thread_local const void* t_pool = nullptr;
}

void CachingAllocator::set_thread_pool(const void* pool) { t_pool = pool; }
const void* CachingAllocator::thread_pool() { return t_pool; }

void* CachingAllocator::allocate(size_t bytes) { return allocate_in(bytes, t_pool); }

void CachingAllocator::retire_pool(const void* pool) {
  if (!pool) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = free_.begin(); it != free_.end();) {
    if (it->first.first == pool) {
      auto& dst = free_[{nullptr, it->first.second}];
      dst.insert(dst.end(), it->second.begin(), it->second.end());
      it = free_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& kv : live_)
    if (kv.second.pool == pool) kv.second.pool = nullptr;
}

void* CachingAllocator::allocate_in(size_t bytes, const void* pool) {
  const size_t b = bucket_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.find({pool, b});
  if (it != free_.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    live_[p] = Live{b, pool};
    stats_.cached -= b;
    stats_.in_use += b;
    if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
    ++stats_.hits;
    return p;
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, b);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the runtime's last-error slot before retrying
    ++stats_.oom_retries;
    // Give the cached blocks back to the driver and try once more.
    const auto fe = static_cast<cudaError_t>(free_cache_locked());
    if (fe != cudaSuccess) throw_cuda(fe, "cudaFree (releasing the cache after out of memory)", __FILE__, __LINE__);
    e = cudaMalloc(&p, b);
  }
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    MN_KTHROW("CUDA out of memory: cannot allocate ", bytes, " bytes (bucket ", b, ") after releasing the cache: ",
              cudaGetErrorString(e), "; in use by metanas: ", stats_.in_use, " bytes; device free ", free_b, " of ",
              total_b, " bytes");
  }
  // Anything else (a sticky fault of an earlier kernel, a lost device) is
  // reported as what it is, not as memory exhaustion.
  if (e != cudaSuccess) throw_cuda(e, "cudaMalloc", __FILE__, __LINE__);
  ++stats_.mallocs;
  live_[p] = Live{b, pool};
  stats_.in_use += b;
  if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
  return p;
}

void CachingAllocator::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  MN_KCHECK(it != live_.end(), "CUDA allocator: freeing pointer ", p,
           " that is not a live allocation (double free or foreign pointer)");
  const size_t b = it->second.bucket;
  const void* pool = it->second.pool;
  live_.erase(it);
  free_[{pool, b}].push_back(p);
  stats_.in_use -= b;
  stats_.cached += b;
}

// Frees every cached block even when one cudaFree fails (a sticky error makes
// all later calls fail too), so the free lists never keep pointers the driver
// may already have released; returns the first error. Caller holds mu_.
int CachingAllocator::free_cache_locked() {
  cudaError_t first = cudaSuccess;
  for (auto& kv : free_)
    for (void* q : kv.second) {
      const cudaError_t e = cudaFree(q);
      if (e != cudaSuccess && first == cudaSuccess) first = e;
    }
  free_.clear();
  stats_.cached = 0;
  if (first != cudaSuccess) (void)cudaGetLastError();
  return first;
}

void CachingAllocator::release_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto e = static_cast<cudaError_t>(free_cache_locked());
  if (e != cudaSuccess) throw_cuda(e, "cudaFree (release_cache)", __FILE__, __LINE__);
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace metanas::kernels::cuda
