// CachingAllocator: device memory for the CUDA backend. Freed blocks are kept
// in size buckets (4 buckets per power of two, at least 512 bytes) and handed
// out again without cudaMalloc/cudaFree, which synchronise the device. The
// free lists are per pool: a pool is a stream (its cudaStream_t as the key;
// null for the default stream) or a captured graph. A block goes back to the
// pool it was allocated from and is handed out only to that pool's later
// allocations, so a block freed after a kernel was enqueued is reused only by
// work ordered after it on the same stream (per-stream pools; a graph's pool
// is its own while the graph lives). The thread's current pool is set by the
// backend (set_thread_pool) whenever the thread's stream or capture changes.
// On out-of-memory (cudaErrorMemoryAllocation only) the cache is released
// (cudaFree) and the allocation retried once; any other cudaMalloc error is
// reported as itself. ScratchBuffer is the RAII handle kernels use for temporary
// memory (cuDNN workspaces, reduction partials).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace metanas::kernels::cuda {

struct AllocatorStats {
  size_t in_use = 0;       // bytes handed out (bucket sizes)
  size_t cached = 0;       // bytes held in free lists
  size_t peak_in_use = 0;
  uint64_t mallocs = 0;    // cudaMalloc calls
  uint64_t hits = 0;       // allocations served from the cache
  uint64_t oom_retries = 0;
};

class CachingAllocator {
 public:
  CachingAllocator() = default;
  ~CachingAllocator();  // does not free: the process may be tearing CUDA down
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Returns device memory of at least `bytes` (256-byte aligned) from the
  // calling thread's current pool; throws metanas::Error when even a retry
  // after releasing the cache fails.
  void* allocate(size_t bytes);
  void* allocate_in(size_t bytes, const void* pool);
  // The calling thread's pool for allocate() (null: the default stream's).
  static void set_thread_pool(const void* pool);
  static const void* thread_pool();
  // Moves a retired pool's (a destroyed stream's or graph's; the caller has
  // synchronised its work) free blocks to the default pool, and its live
  // blocks too, so they return there when freed.
  void retire_pool(const void* pool);
  // Returns a block to its bucket; throws on a pointer this allocator did not
  // hand out (double free).
  void deallocate(void* p);
  // cudaFree every cached block (synchronises the device).
  void release_cache();
  AllocatorStats stats() const;

  // The bucket a request of `bytes` is served from: at least 512 bytes, then
  // four buckets per power of two (waste below 25%). Inline: host-testable.
  static size_t bucket_size(size_t bytes) {
    constexpr size_t kMin = 512;
    if (bytes <= kMin) return kMin;
    size_t p = kMin;
    while (p <= bytes / 2) p <<= 1;  // largest power of two <= bytes
    const size_t step = p / 4;
    return (bytes + step - 1) / step * step;
  }

 private:
  int free_cache_locked();  // returns a cudaError_t (kept out of this header)
  mutable std::mutex mu_;
  struct Live {
    size_t bucket;
    const void* pool;
  };
  std::map<std::pair<const void*, size_t>, std::vector<void*>> free_;  // (pool, bucket size) -> cached blocks
  std::unordered_map<void*, Live> live_;                               // block -> bucket, pool
  AllocatorStats stats_;
};

// RAII scratch memory from an allocator (returned on destruction).
class ScratchBuffer {
 public:
  ScratchBuffer(CachingAllocator& a, size_t bytes) : alloc_(&a), bytes_(bytes) {
    ptr_ = bytes ? a.allocate(bytes) : nullptr;
  }
  ~ScratchBuffer() {
    if (ptr_) {
      try {
        alloc_->deallocate(ptr_);
      } catch (...) {
      }
    }
  }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  CachingAllocator* alloc_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace metanas::kernels::cuda
