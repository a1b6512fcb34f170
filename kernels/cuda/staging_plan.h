// Bookkeeping of the CUDA backend's pinned upload ring (staging_ring.cu): a
// circular buffer of `capacity` bytes in which each upload takes a chunk,
// copied from the caller's memory on the host and then to the device by an
// asynchronous copy whose event says when the chunk may be overwritten.
// Chunks retire in the order they were taken (one stream), so before a new
// chunk is written only the newest in-flight chunk it overlaps has to be
// waited for. Plain C++ (no CUDA): tests/cuda/kernel_math_test.cpp checks it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>

namespace metanas::kernels::cuda {

class StagingPlan {
 public:
  static constexpr size_t kAlign = 256;
  static constexpr uint64_t kNone = ~uint64_t{0};

  explicit StagingPlan(size_t capacity) : cap_(capacity) {}

  size_t capacity() const { return cap_; }
  bool fits(size_t bytes) const { return align(bytes) <= cap_; }

  // Takes a chunk for `bytes` (fits() must hold) and returns its offset; sets
  // *wait_for to the id of the newest in-flight chunk the new one overlaps
  // (the caller waits for it, then calls retire_through), or kNone.
  size_t take(size_t bytes, uint64_t id, uint64_t* wait_for) {
    const size_t n = align(bytes);
    const size_t off = head_ + n > cap_ ? 0 : head_;
    *wait_for = kNone;
    for (const Chunk& c : live_)
      if (c.begin < off + n && off < c.end) *wait_for = c.id;  // later chunks are newer
    head_ = off + n;
    pending_ = Chunk{off, off + n, id};
    has_pending_ = true;
    return off;
  }
  // The chunk taken last is now in flight (its copy and event are enqueued).
  // Separate from take() so that a waited-for chunk is retired first.
  void commit() {
    if (has_pending_) live_.push_back(pending_);
    has_pending_ = false;
  }
  // Chunks up to and including `id` have completed.
  void retire_through(uint64_t id) {
    while (!live_.empty() && live_.front().id <= id) live_.pop_front();
  }
  // The oldest in-flight chunk (kNone when none): the one to poll.
  uint64_t oldest() const { return live_.empty() ? kNone : live_.front().id; }
  size_t in_flight() const { return live_.size(); }

 private:
  struct Chunk {
    size_t begin = 0, end = 0;
    uint64_t id = 0;
  };
  static size_t align(size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

  size_t cap_;
  size_t head_ = 0;
  std::deque<Chunk> live_;
  Chunk pending_;
  bool has_pending_ = false;
};

}  // namespace metanas::kernels::cuda
