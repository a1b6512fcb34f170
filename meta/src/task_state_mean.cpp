// TaskStateMean (task_state_mean.h).
#include "task_state_mean.h"

#include "metanas/engine/error.h"

namespace metanas::meta {

void TaskStateMean::add(const Checkpoint& task_state) { states_.push_back(task_state); }

Checkpoint TaskStateMean::mean() const {
  MN_CHECK(!states_.empty(), "TaskStateMean: no task state to combine");
  Checkpoint out;
  const Checkpoint& first = states_.front();
  const float inv = 1.f / static_cast<float>(states_.size());
  for (const std::string& name : first.names()) {
    const Tensor& t0 = first.get(name);
    // (MAML++'s per-step rates, "lslr.", are meta-parameters: kept, not averaged)
    const bool moment = t0.dtype() == DType::F32 && name.find(".hparams") == std::string::npos &&
                        name.rfind("lslr.", 0) != 0;
    if (!moment) {
      auto same = [&](const Tensor& t) {
        return t.dtype() == t0.dtype() && (t0.dtype() == DType::F32 ? t.to_vector() == t0.to_vector()
                                                                    : t.to_int_vector() == t0.to_int_vector());
      };
      for (const Checkpoint& s : states_)
        MN_CHECK(same(s.get(name)), "TaskStateMean: entry '", name,
                 "' differs between the tasks of a meta-batch (task-parallel states must agree on it)");
      out.put(name, t0);
      continue;
    }
    // Sum in task order, then scale: the same bits however the tasks ran.
    std::vector<float> acc(static_cast<size_t>(t0.numel()), 0.f);
    for (const Checkpoint& s : states_) {
      const std::vector<float> v = s.get(name).to_vector();
      MN_CHECK(v.size() == acc.size(), "TaskStateMean: entry '", name, "' changes size between tasks");
      for (size_t i = 0; i < acc.size(); ++i) acc[i] += v[i];
    }
    for (float& a : acc) a *= inv;
    out.put(name, Tensor::from_vector(acc, t0.shape()));
  }
  return out;
}

}  // namespace metanas::meta
