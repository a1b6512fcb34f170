// Concurrent tasks of the task-parallel meta-step on the CPU: a rank's block
// of tasks runs up to one task per OpenMP thread, each on its own TaskLearner
// (thread 0: task_, threads 1..: clones of it built from the meta model).
//
// Why the bits do not depend on how many run at a time: a task's result is a
// function of the start state, its episode and its own generator only; the
// learner it runs on is reloaded from `start` first; and inside a task thread
// every kernel runs on that one thread (the kernels give the same bits on one
// thread as on many, and OpenBLAS runs single-threaded inside an active
// parallel region). The slots are filled afterwards, in task order.
//
// What must hold for that (docs/architecture.md "Threads"): run_task touches
// only the learner it gets; the task model's clones share no mutable state
// (not so for MAML++'s ConvNet4pp, whose clones share the BN running
// statistics); no task pre-optimizer (the meta-RL agent is one object).
#include <omp.h>

#include <algorithm>
#include <exception>

#include "metanas/meta/learner.h"
#include "metanas/nas/mamlpp_convnet.h"

namespace metanas::meta {

int MetaLearner::concurrent_task_count(int local, bool concurrent) const {
  if (!concurrent || local < 2 || exec_.task_streams || exec_.cuda_graphs) return 1;
  if (model_->weights().values().device() != Device::CPU) return 1;
  if (task_->pre_optimizer()) return 1;
  if (dynamic_cast<const nas::ConvNet4pp*>(model_.get())) return 1;
  // Inside a parallel region (a caller's own threads) tasks stay serial.
  if (omp_in_parallel()) return 1;
  return std::max(1, std::min(omp_get_max_threads(), local));
}

std::vector<std::pair<MetaLearner::TaskContribution, Checkpoint>> MetaLearner::run_concurrent_tasks(
    const std::vector<data::Episode>& tasks, int first, int count, int workers, const Checkpoint& start,
    std::vector<Rng>& rngs, const std::function<TaskContribution(TaskLearner&, const data::Episode&, Rng&)>& run_task) {
  while (static_cast<int>(thread_tasks_.size()) + 1 < workers)
    thread_tasks_.push_back(std::make_unique<TaskLearner>(*model_, task_options_));
  std::vector<std::pair<TaskContribution, Checkpoint>> outs(static_cast<size_t>(count));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(count));
  // Copies: a learner's tensors are overwritten by its next task.
  auto keep = [](const Tensor& t) { return t.defined() ? t.detach().clone() : Tensor(); };
#pragma omp parallel for num_threads(workers) schedule(static, 1)
  for (int j = 0; j < count; ++j) {
    try {
      // This task's kernels on this thread only: no nested teams (which
      // would oversubscribe the cores), and for_items-style kernels take
      // their one-thread path (the same bits).
      omp_set_num_threads(1);
      const int k = omp_get_thread_num();
      TaskLearner& tl = k == 0 ? *task_ : *thread_tasks_[static_cast<size_t>(k - 1)];
      const int i = first + j;
      tl.load_state(start, "");
      tl.set_task_index(static_cast<uint32_t>(i));  // drop-path key (seed, task, step, op)
      const TaskContribution c = run_task(tl, tasks[static_cast<size_t>(i)], rngs[static_cast<size_t>(i)]);
      auto& o = outs[static_cast<size_t>(j)];
      o.first.w = keep(c.w), o.first.a = keep(c.a), o.first.r = keep(c.r);
      o.first.s_loss = keep(c.s_loss), o.first.s_acc = keep(c.s_acc);
      o.first.q_loss = keep(c.q_loss), o.first.q_acc = keep(c.q_acc);
      tl.save_state(o.second, "");
    } catch (...) {
      errors[static_cast<size_t>(j)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)  // the first failing task, in task order
    if (e) std::rethrow_exception(e);
  return outs;
}

}  // namespace metanas::meta
