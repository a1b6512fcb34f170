// The stem cache of a search network (SearchNetwork::set_stem_cache): AT-NAS
// scores many subnets of one supernet on the same task batches with the stem
// frozen, so the stem output of a batch is the same for every candidate and is
// computed once. An entry is found by the input's shape and exact values and
// is valid for the stem weights it was computed with (a copy is kept and
// compared, so a changed stem can never return a stale output).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "metanas/engine/tensor.h"

namespace metanas::nas::detail {

class StemCache {
 public:
  // The stem output for x: a stored one, or stem(x) computed without gradient
  // history and stored. `weights` are the stem's parameters (none may require
  // a gradient: a cached output cannot carry one).
  Tensor get(const Tensor& x, const std::vector<Tensor>& weights, const std::function<Tensor(const Tensor&)>& stem);
  void clear();
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  struct Entry {
    std::vector<int64_t> shape;
    std::vector<float> x;
    Tensor out;
  };
  static constexpr size_t kMaxEntries = 64;  // bounds the memory (a task has a few batches)
  std::vector<float> stem_w_;                // the stem weights the entries belong to
  std::vector<Entry> entries_;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace metanas::nas::detail
