// MetaLearner::task_parallel_step (learner.h): the task-parallel meta-step on
// one or many ranks. Each task's contribution is one slot of a flat buffer:
//   [w contribution | a contribution | task-optimizer moments | 4 statistics]
// A rank fills the slots of its tasks (dist::TaskSlots), one allgather brings
// every slot to every rank, and every rank sums them in task order with the
// same kernels; the single process runs exactly this path with a copy for
// the gather, hence the same bits for any number of ranks.
#include <chrono>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/meta/dist/task_slots.h"
#include "metanas/meta/learner.h"
#include "task_state_mean.h"

namespace metanas::meta {

namespace {

bool is_moment(const std::string& name, const Tensor& t) {
  return t.dtype() == DType::F32 && name.find(".hparams") == std::string::npos;
}

// Where the parts of one task's slot lie.
struct SlotLayout {
  int64_t nw = 0, na = 0, ns = 0;
  std::vector<std::pair<std::string, Tensor>> moments;  // name, the task's end tensor (for its shape)
  int64_t stride() const { return nw + na + ns + 4; }
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
                                     const std::function<TaskContribution(const data::Episode&, Rng&)>& run_task,
                                     const std::function<void(const Tensor&, const Tensor&)>& add_task) {
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
  for (int i = slots.begin(rank); i < slots.end(rank); ++i) {
    task_->load_state(start, "");
    task_->set_task_index(static_cast<uint32_t>(i));  // drop-path key (seed, task, step, op)
    const TaskContribution c = run_task(tasks[i], rngs[i]);
    Checkpoint end;
    task_->save_state(end, "");
    if (!send.defined()) {  // the layout, from this rank's first task
      L.nw = c.w.numel();
      L.na = update_a ? c.a.numel() : 0;
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
    int64_t off = L.nw + L.na;
    for (const auto& m : L.moments) {
      put(off, end.get(m.first));
      off += m.second.numel();
    }
    const Tensor* stats[4] = {&c.s_loss, &c.s_acc, &c.q_loss, &c.q_acc};
    for (int k = 0; k < 4; ++k)
      if (stats[k]->defined()) put(off + k, *stats[k]);
  }
  (void)local;

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

  // The combination, in task order (all-reduce mode: one summed slot).
  NoGradGuard ng;
  StepSums sums;
  TaskStateMean states;
  const int slots_to_add = ordered ? B : 1;
  for (int i = 0; i < slots_to_add; ++i) {
    const int64_t at = ordered ? static_cast<int64_t>(slots.gathered_slot(i)) * L.stride() : 0;
    add_task(all.view(at, Shape{L.nw}), L.na ? all.view(at + L.nw, Shape{L.na}) : Tensor());
    Checkpoint s;
    for (const std::string& n : first_end.names())
      if (!is_moment(n, first_end.get(n))) s.put(n, first_end.get(n));
    int64_t off = at + L.nw + L.na;
    for (const auto& m : L.moments) {
      Tensor v = all.view(off, m.second.shape());
      if (!ordered) v = mul_scalar(v, 1.f / static_cast<float>(B));  // the sum of the moments -> their mean
      s.put(m.first, v);
      off += m.second.numel();
    }
    states.add(s);
    auto stat = [&](int k) { return all.view(off + k, Shape{}); };
    if (has_s) sums.add_support(AdaptResult{stat(0), stat(1), 0});
    if (has_q) sums.add_query(stat(2), stat(3));
  }
  sums.mean_into(st);
  task_->load_state(states.mean(), "");
}

}  // namespace metanas::meta
