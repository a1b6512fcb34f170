// GraphCache: when to capture, replay or re-capture a step as a CUDA graph
// (run.cuda_graphs), as a host-only unit with no CUDA in it (tested on the
// CPU: tests/engine/graph_cache_test.cpp).
//
// A graph bakes in every pointer and every host scalar its kernels were
// launched with, so a step may replay a graph only when all of them are the
// same: the caller puts them into the step's GraphKey (the step index,
// temperature, optimizer step counts, drop-path key, input and parameter
// addresses, shapes). What the graphs also depend on but is rebuilt between
// steps (the soft-pruning plan's device tensors) is the `version`: a new
// version drops every graph. The rules, per key:
//   first sight           -> Eager (warms cuDNN's algorithm choice and the
//                            allocator), then after_eager() tells whether that
//                            run could be captured: no host synchronisation
//                            and no upload happened in it;
//   seen, capturable      -> Capture (the step is recorded, then launched);
//   seen, not capturable  -> Eager, for good;
//   captured              -> Replay.
// At most max_graphs live at once: capturing one more drops the oldest. The
// dropped graphs' ids wait in retired() until the owner destroys them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <vector>

namespace metanas {

class GraphKey {
 public:
  GraphKey& add(uint64_t v) {
    words_.push_back(v);
    return *this;
  }
  GraphKey& add_float(float f) {
    uint32_t u = 0;
    std::memcpy(&u, &f, sizeof u);
    return add(u);
  }
  GraphKey& add_ptr(const void* p) { return add(reinterpret_cast<uintptr_t>(p)); }
  const std::vector<uint64_t>& words() const { return words_; }
  bool operator<(const GraphKey& o) const { return words_ < o.words_; }
  bool operator==(const GraphKey& o) const { return words_ == o.words_; }

 private:
  std::vector<uint64_t> words_;
};

class GraphCache {
 public:
  enum class Action { Eager, Capture, Replay };
  struct Stats {
    uint64_t eager = 0, captures = 0, replays = 0;
    uint64_t uncapturable = 0;   // keys whose eager run synchronised or uploaded
    uint64_t invalidated = 0;    // graphs dropped by a new version
    uint64_t evicted = 0;        // graphs dropped for max_graphs
  };

  explicit GraphCache(size_t max_graphs = 32) : max_graphs_(max_graphs ? max_graphs : 1) {}

  // The action for a step with `key` under `version`.
  Action decide(const GraphKey& key, uint64_t version);
  // After an Eager decision's run: whether it could have been captured.
  void after_eager(const GraphKey& key, bool capturable);
  // After a Capture decision: the id of the recorded graph (-1: the backend
  // records nothing, e.g. the CPU; the key then counts as captured).
  void captured(const GraphKey& key, int graph);
  // After a Capture that failed: the key is never captured again.
  void capture_failed(const GraphKey& key);
  // The graph a Replay decision replays (-1 on a backend without graphs).
  int graph_of(const GraphKey& key) const;
  // Ids of dropped graphs (each returned once), for the owner to destroy.
  std::vector<int> take_retired();
  // Drops every graph (e.g. the owner is reset); their ids go to retired().
  void clear();
  const Stats& stats() const { return stats_; }
  size_t live_graphs() const { return order_.size(); }

 private:
  enum class State { Warm, Never, Captured };
  struct Entry {
    State state = State::Warm;
    int graph = -1;
  };
  void drop(const GraphKey& key);
  size_t max_graphs_;
  uint64_t version_ = 0;
  bool have_version_ = false;
  std::map<GraphKey, Entry> entries_;
  std::deque<GraphKey> order_;  // captured keys, oldest first
  std::vector<int> retired_;
  Stats stats_;
};

}  // namespace metanas
