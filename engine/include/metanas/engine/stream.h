// Stream and StreamGuard: owned execution streams of a backend (per-task CUDA
// streams of the task-parallel meta-step; Backend's stream section says what a
// stream is on each backend). A Stream creates its id and destroys it;
// StreamGuard makes it the calling thread's current stream for a scope.
// fork()/join() order a stream after the default stream's work so far and
// the default stream after the stream's, which is the protocol the
// task-parallel step uses: fork every task stream, issue each task on its
// own, join them all before the reduction.
#pragma once
#include "metanas/engine/backend.h"
#include "metanas/engine/device.h"

namespace metanas {

class Stream {
 public:
  Stream() = default;
  explicit Stream(Device d) : device_(d), id_(backend(d).create_stream()) {}
  ~Stream() { reset(); }
  Stream(Stream&& o) noexcept : device_(o.device_), id_(o.id_) { o.id_ = 0; }
  Stream& operator=(Stream&& o) noexcept {
    if (this != &o) {
      reset();
      device_ = o.device_;
      id_ = o.id_;
      o.id_ = 0;
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  Device device() const { return device_; }
  int id() const { return id_; }
  bool valid() const { return id_ != 0; }
  // This stream waits for the default stream's work issued so far.
  void fork() const { backend(device_).stream_wait(id_, 0); }
  // The default stream waits for this stream's work issued so far.
  void join() const { backend(device_).stream_wait(0, id_); }

 private:
  void reset() noexcept {
    if (!id_) return;
    try {
      backend(device_).destroy_stream(id_);
    } catch (...) {
    }
    id_ = 0;
  }
  Device device_ = Device::CPU;
  int id_ = 0;
};

// Makes `s` current on this thread (a null or invalid stream: no change) and
// restores the previous stream at the end of the scope.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream* s) {
    if (!s || !s->valid()) return;
    b_ = &backend(s->device());
    prev_ = b_->current_stream();
    b_->set_stream(s->id());
  }
  ~StreamGuard() {
    if (b_) b_->set_stream(prev_);
  }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Backend* b_ = nullptr;
  int prev_ = 0;
};

}  // namespace metanas
