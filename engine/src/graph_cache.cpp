// GraphCache (graph_cache.h): the capture / replay decisions.
#include "metanas/engine/graph_cache.h"

#include <algorithm>

namespace metanas {

GraphCache::Action GraphCache::decide(const GraphKey& key, uint64_t version) {
  if (have_version_ && version != version_) {
    stats_.invalidated += order_.size();
    clear();
    entries_.clear();  // the not-capturable verdicts may change with the plan too
  }
  version_ = version;
  have_version_ = true;
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    entries_.emplace(key, Entry{});
    ++stats_.eager;
    return Action::Eager;
  }
  switch (it->second.state) {
    case State::Captured:
      ++stats_.replays;
      return Action::Replay;
    case State::Never:
      ++stats_.eager;
      return Action::Eager;
    case State::Warm:
    default:
      ++stats_.captures;
      return Action::Capture;
  }
}

void GraphCache::after_eager(const GraphKey& key, bool capturable) {
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.state != State::Warm) return;
  if (!capturable) {
    it->second.state = State::Never;
    ++stats_.uncapturable;
  }
}

void GraphCache::captured(const GraphKey& key, int graph) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (order_.size() >= max_graphs_) {
    ++stats_.evicted;
    drop(order_.front());
  }
  it->second.state = State::Captured;
  it->second.graph = graph;
  order_.push_back(key);
}

void GraphCache::capture_failed(const GraphKey& key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) it->second.state = State::Never;
}

int GraphCache::graph_of(const GraphKey& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? -1 : it->second.graph;
}

void GraphCache::drop(const GraphKey& key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if (it->second.graph >= 0) retired_.push_back(it->second.graph);
    entries_.erase(it);
  }
  order_.erase(std::remove(order_.begin(), order_.end(), key), order_.end());
}

void GraphCache::clear() {
  while (!order_.empty()) drop(order_.front());
}

std::vector<int> GraphCache::take_retired() {
  std::vector<int> r;
  r.swap(retired_);
  return r;
}

}  // namespace metanas
