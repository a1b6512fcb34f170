// MetaLearner::task_parallel_step (learner.h): the task-parallel meta-step on
// one or many ranks. Each task's contribution is one slot of a flat buffer:
//   [w contribution | a contribution | r contribution | task-optimizer moments | 4 statistics]
// A rank fills the slots of its tasks (dist::TaskSlots), one allgather brings
// every slot to every rank, and every rank sums them in task order with the
// same kernels; the single process runs exactly this path with a copy for
// the gather, hence the same bits for any number of ranks. On the CPU a
// rank's tasks can also run several at a time, one per OpenMP thread
// (concurrent_tasks.cpp), with the same bits as one after another.
#include <chrono>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/meta/dist/task_slots.h"
#include "metanas/meta/learner.h"

namespace metanas::meta {

namespace {

// MAML++'s per-step rates ("lslr.") are meta-parameters that the tasks leave
// unchanged, not task state to average.
bool is_moment(const std::string& name, const Tensor& t) {
  return t.dtype() == DType::F32 && name.find(".hparams") == std::string::npos && name.rfind("lslr.", 0) != 0;
}

// Where the parts of one task's slot lie.
struct SlotLayout {
  int64_t nw = 0, na = 0, nr = 0, ns = 0;
  std::vector<std::pair<std::string, Tensor>> moments;  // name, the task's end tensor (for its shape)
  int64_t stride() const { return nw + na + nr + ns + 4; }
};

}  // namespace

void MetaLearner::set_communicator(std::shared_ptr<dist::Communicator> comm, bool ordered) {
  MN_CHECK(comm, "MetaLearner::set_communicator: no communicator");
  MN_CHECK(comm->size() == 1 || cfg_.meta.task_parallel,
           "distributed meta-training needs meta.task_parallel=true (the carried task-optimizer state of "
           "the sequential semantics serialises the tasks)");
  comm_ = std::move(comm);
  ordered_reduce_ = ordered;
}

void MetaLearner::task_parallel_step(const std::vector<data::Episode>& tasks, MetaStepStats& st, bool update_a,
                                     const std::function<TaskContribution(TaskLearner&, const data::Episode&, Rng&)>& run_task,
                                     const std::function<void(const Tensor&, const Tensor&, const Tensor&)>& add_task,
                                     bool concurrent) {
  const int B = static_cast<int>(tasks.size());
  const int N = comm_->size(), rank = comm_->rank();
  const dist::TaskSlots slots(B, N);
  MN_CHECK(slots.count(rank) > 0, "task-parallel meta-step: rank ", rank, " of ", N, " has no task of the ", B,
           "-task meta-batch (use at most meta.meta_batch_size ranks)");
  const Device dev = model_->weights().values().device();

  // Every rank splits every task's generator, so task i draws the same
  // numbers wherever it runs.
  std::vector<Rng> rngs;
  rngs.reserve(tasks.size());
  for (int i = 0; i < B; ++i) rngs.push_back(rng_.split());
  Checkpoint start;
  task_->save_state(start, "");

  SlotLayout L;
  Checkpoint first_end;
  bool has_s = false, has_q = false;
  Tensor send;
  const bool ordered = ordered_reduce_ || N == 1;
  const int local = slots.count(rank);
  // Task streams: task k of this rank's block on learner k and stream k,
  // each forked from the default stream (the meta model and `start` are
  // ready) and all joined before their slots are filled. Nothing is shared
  // between the tasks but read-only inputs, so per-stream allocator pools
  // are safe.
  const bool streams = exec_.task_streams;
  if (streams) {
    while (static_cast<int>(stream_tasks_.size()) < local) {
      stream_tasks_.push_back(std::make_unique<TaskLearner>(*model_, task_options_));
      stream_tasks_.back()->set_graphs(exec_.cuda_graphs);
      streams_.emplace_back(dev);
    }
    for (int k = 0; k < local; ++k) streams_[static_cast<size_t>(k)].fork();
  }
  // A task's slot: its contributions, end state (moments) and statistics.
  auto finish = [&](int i, const Checkpoint& end, const TaskContribution& c) {
    if (!send.defined()) {  // the layout, from this rank's first task
      L.nw = c.w.numel();
      L.na = update_a ? c.a.numel() : 0;
      L.nr = c.r.defined() ? c.r.numel() : 0;
      for (const std::string& n : end.names())
        if (is_moment(n, end.get(n))) L.moments.emplace_back(n, end.get(n)), L.ns += end.get(n).numel();
      first_end = end;
      has_s = c.s_loss.defined();
      has_q = c.q_loss.defined();
      send = Tensor::zeros(Shape{(ordered ? slots.max_per_rank() : 1) * L.stride()}, DType::F32, dev);
    }
    // Ordered: one slot per task; all-reduce: this rank's tasks summed in one.
    const int64_t at = ordered ? (i - slots.begin(rank)) * L.stride() : 0;
    auto put = [&](int64_t off, const Tensor& t) {
      Tensor dst = send.view(at + off, Shape{t.numel()});
      const Tensor flat = t.detach().reshape(Shape{t.numel()});
      if (ordered)
        dst.copy_(flat);
      else
        dst.add_(flat.to(dev), 1.f);
    };
    MN_CHECK(c.w.numel() == L.nw, "task-parallel meta-step: contributions change size between tasks");
    put(0, c.w);
    if (L.na) put(L.nw, c.a);
    MN_CHECK((c.r.defined() ? c.r.numel() : 0) == L.nr, "task-parallel meta-step: rate contributions change size");
    if (L.nr) put(L.nw + L.na, c.r);
    int64_t off = L.nw + L.na + L.nr;
    for (const auto& m : L.moments) {
      put(off, end.get(m.first));
      off += m.second.numel();
    }
    const Tensor* stats[4] = {&c.s_loss, &c.s_acc, &c.q_loss, &c.q_acc};
    for (int k = 0; k < 4; ++k)
      if (stats[k]->defined()) put(off + k, *stats[k]);
  };
  const int workers = streams ? 1 : concurrent_task_count(local, concurrent);
  last_concurrent_tasks_ = streams ? local : workers;
  if (!streams && workers > 1) {
    // CPU: several tasks at a time, one per thread (concurrent_tasks.cpp).
    const auto outs = run_concurrent_tasks(tasks, slots.begin(rank), local, workers, start, rngs, run_task);
    for (int j = 0; j < local; ++j)
      finish(slots.begin(rank) + j, outs[static_cast<size_t>(j)].second, outs[static_cast<size_t>(j)].first);
  } else if (!streams) {
    for (int i = slots.begin(rank); i < slots.end(rank); ++i) {
      task_->load_state(start, "");
      task_->set_task_index(static_cast<uint32_t>(i));  // drop-path key (seed, task, step, op)
      const TaskContribution c = run_task(*task_, tasks[i], rngs[i]);
      Checkpoint end;
      task_->save_state(end, "");
      finish(i, end, c);
    }
  } else {
    // Issue every task on its stream first (a task's only wait is its plan
    // readback, on its own stream), then join and fill the slots on the
    // default stream in task order: saving an end state reads it back, which
    // would otherwise hold the host until that task is done.
    std::vector<TaskContribution> cs(static_cast<size_t>(local));
    for (int i = slots.begin(rank); i < slots.end(rank); ++i) {
      const size_t k = static_cast<size_t>(i - slots.begin(rank));
      TaskLearner& tl = *stream_tasks_[k];
      StreamGuard on_stream(&streams_[k]);
      tl.load_state(start, "");
      tl.set_task_index(static_cast<uint32_t>(i));
      cs[k] = run_task(tl, tasks[i], rngs[i]);
    }
    for (int k = 0; k < local; ++k) streams_[static_cast<size_t>(k)].join();
    for (int i = slots.begin(rank); i < slots.end(rank); ++i) {
      const size_t k = static_cast<size_t>(i - slots.begin(rank));
      Checkpoint end;
      stream_tasks_[k]->save_state(end, "");
      finish(i, end, cs[k]);
    }
  }

  // One collective per meta-step.
  const auto t0 = std::chrono::steady_clock::now();
  Tensor all = send;
  if (N > 1) {
    if (ordered) {
      all = Tensor::zeros(Shape{N * send.numel()}, DType::F32, dev);
      comm_->allgather(send, all);
    } else {
      comm_->allreduce_sum(all);
    }
  }
  comm_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // The combination, in task order (all-reduce mode: one summed slot). The
  // task-optimizer moments: their sum in task order, then scaled by 1/B, on
  // the device and read back in one copy (the host sum this replaced gave
  // the same bits with one readback per entry and task).
  NoGradGuard ng;
  StepSums sums;
  Tensor msum = L.ns ? Tensor::zeros(Shape{L.ns}, DType::F32, dev) : Tensor();
  const int slots_to_add = ordered ? B : 1;
  for (int i = 0; i < slots_to_add; ++i) {
    const int64_t at = ordered ? static_cast<int64_t>(slots.gathered_slot(i)) * L.stride() : 0;
    add_task(all.view(at, Shape{L.nw}), L.na ? all.view(at + L.nw, Shape{L.na}) : Tensor(),
             L.nr ? all.view(at + L.nw + L.na, Shape{L.nr}) : Tensor());
    if (L.ns) msum.add_(all.view(at + L.nw + L.na + L.nr, Shape{L.ns}), 1.f);
    const int64_t off = at + L.nw + L.na + L.nr + L.ns;
    auto stat = [&](int k) { return all.view(off + k, Shape{}); };
    if (has_s) sums.add_support(AdaptResult{stat(0), stat(1), 0});
    if (has_q) sums.add_query(stat(2), stat(3));
  }
  sums.mean_into(st);
  // The mean state: the entries every task shares (hyper-parameters, step
  // counts: equal, since every task started from `start` and took the same
  // steps) from the first task, the mean moments.
  Checkpoint mean;
  for (const std::string& n : first_end.names())
    if (!is_moment(n, first_end.get(n))) mean.put(n, first_end.get(n));
  if (L.ns) {
    msum.mul_(1.f / static_cast<float>(B));
    const Tensor host = msum.to(Device::CPU);
    int64_t off = 0;
    for (const auto& m : L.moments) {
      mean.put(m.first, host.view(off, m.second.shape()));
      off += m.second.numel();
    }
  }
  task_->load_state(mean, "");
}

}  // namespace metanas::meta
