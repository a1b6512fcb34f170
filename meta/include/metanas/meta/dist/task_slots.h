// TaskSlots: which rank runs which task of a meta-batch (or of an
// evaluation). Contiguous blocks in task order: with B tasks on N ranks the
// first B % N ranks get ceil(B / N) tasks, the others floor(B / N); e.g. 10
// tasks on 4 ranks: ranks 0-1 run tasks 0-2 and 3-5, ranks 2-3 run 6-7 and
// 8-9. A rank beyond B gets none. Every rank sends max_per_rank() slots in a
// gather (unused slots padded), so the gather is one equal-count collective.
#pragma once
#include <algorithm>

namespace metanas::meta::dist {

struct TaskSlots {
  int tasks = 0, ranks = 1;
  TaskSlots(int tasks_, int ranks_) : tasks(tasks_), ranks(ranks_) {}

  int base() const { return tasks / ranks; }
  int extra() const { return tasks % ranks; }
  int count(int rank) const { return base() + (rank < extra() ? 1 : 0); }
  int begin(int rank) const { return rank * base() + std::min(rank, extra()); }
  int end(int rank) const { return begin(rank) + count(rank); }
  int max_per_rank() const { return base() + (extra() > 0 ? 1 : 0); }
  int owner(int task) const {
    const int big = extra() * (base() + 1);  // tasks held by the ranks with one extra
    return task < big ? task / (base() + 1) : extra() + (task - big) / std::max(1, base());
  }
  bool owns(int rank, int task) const { return task >= begin(rank) && task < end(rank); }
  // Where task `task` lies in a gather of max_per_rank() slots per rank.
  int gathered_slot(int task) const {
    const int r = owner(task);
    return r * max_per_rank() + (task - begin(r));
  }
};

}  // namespace metanas::meta::dist
