// The task-parallel combination of task-optimizer states (meta.task_parallel):
// every task of a meta-batch starts from the same state (the one the previous
// meta-step left) and the meta-step then keeps the mean of the tasks' end
// states, summed in task order. Moments (float entries) are averaged; the
// other entries (hyper-parameters, step counters) must agree across tasks.
#pragma once
#include <string>
#include <vector>

#include "metanas/engine/checkpoint.h"

namespace metanas::meta {

class TaskStateMean {
 public:
  // Adds the state of the next task in task order.
  void add(const Checkpoint& task_state);
  // The mean of the added states (throws when none was added or the
  // non-moment entries differ between tasks).
  Checkpoint mean() const;

 private:
  std::vector<Checkpoint> states_;
};

}  // namespace metanas::meta
