// HostAllocator: a size-bucketed cache of 64-byte-aligned host blocks.
// Training repeats the same tensor shapes every step, so freed blocks are
// kept and handed out again instead of returning them to the C library,
// which (for large blocks) unmaps them and makes the next step pay a page
// fault per 4 KiB. Small blocks go straight to aligned_alloc.
#pragma once
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace metanas {

class HostAllocator {
 public:
  // Blocks under this are not cached (malloc's own bins handle them well).
  static constexpr size_t kMinCached = 64 * 1024;
  // Cached bytes beyond this are freed instead of kept.
  static constexpr size_t kMaxCachedBytes = size_t(4) << 30;

  void* allocate(size_t bytes);
  void deallocate(void* p, size_t bytes);
  // Returns every cached block to the C library.
  void release_cache();
  size_t cached_bytes() const;
  ~HostAllocator() { release_cache(); }

 private:
  static size_t bucket(size_t bytes);
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

}  // namespace metanas
