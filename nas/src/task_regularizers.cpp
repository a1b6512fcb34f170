// TaskRegularizers: validation, JSON, and the DARTS- / P-DARTS schedules.
#include "metanas/nas/task_regularizers.h"

#include <cmath>

#include "json_fields.h"
#include "metanas/engine/error.h"

namespace metanas::nas {

namespace {
struct RegFields {
  template <typename O, typename F>
  void operator()(O& o, F&& f) const {
    f("aux_beta_schedule", o.aux_beta_schedule);
    f("aux_beta", o.aux_beta);
    f("stages", o.stages);
    f("keep_ops", o.keep_ops);
    f("drop_released", o.drop_released);
    f("skip_dropout", o.skip_dropout);
    f("skip_dropout_decay", o.skip_dropout_decay);
    f("skip_limit", o.skip_limit);
    f("skip_limit_released", o.skip_limit_released);
    f("tse_steps", o.tse_steps);
  }
};
}  // namespace

bool TaskRegularizers::any() const {
  return stages > 1 || !skip_dropout.empty() || skip_limit >= 0 || tse_steps > 0;
}

void TaskRegularizers::validate() const {
  const char* w = "TaskRegularizers";
  MN_CHECK(aux_beta_schedule == "linear" || aux_beta_schedule == "fixed", w, ": unknown aux_beta_schedule '",
           aux_beta_schedule, "' (valid: linear, fixed)");
  MN_CHECK(std::isfinite(aux_beta), w, ": aux_beta must be finite");
  MN_CHECK(stages >= 1, w, ": stages must be >= 1, got ", stages);
  if (stages > 1) {
    MN_CHECK(static_cast<int>(keep_ops.size()) >= stages - 1, w, ": keep_ops needs one entry per stage but the last (",
             stages - 1, "), got ", keep_ops.size());
    for (size_t s = 0; s + 1 < static_cast<size_t>(stages); ++s) {
      MN_CHECK(keep_ops[s] >= 1, w, ": keep_ops entries must be >= 1, got ", keep_ops[s]);
      // Pruned ops cannot come back; the released drop only lowers them, so
      // there a growing list (its [3, 2, 0]: keep 4, then 5) re-admits one.
      MN_CHECK(s == 0 || keep_ops[s] <= keep_ops[s - 1] || drop_released, w, ": keep_ops must not grow (",
               keep_ops[s - 1], " then ", keep_ops[s], ") unless drop_released is set");
    }
  }
  MN_CHECK(skip_dropout.empty() || static_cast<int>(skip_dropout.size()) == stages, w,
           ": skip_dropout needs one rate per stage (", stages, "), got ", skip_dropout.size());
  for (float r : skip_dropout) MN_CHECK(r >= 0.f && r < 1.f, w, ": skip_dropout rates must be in [0, 1), got ", r);
  MN_CHECK(skip_dropout_decay >= 0.f, w, ": skip_dropout_decay must be >= 0");
  MN_CHECK(skip_limit >= -1, w, ": skip_limit must be >= 0 or -1 (off), got ", skip_limit);
  MN_CHECK(!skip_limit_released || skip_limit >= 0, w, ": skip_limit_released needs skip_limit >= 0 (M)");
  MN_CHECK(tse_steps >= 0 && tse_steps <= 2, w, ": tse_steps must be 0 (off), 1 or 2, got ", tse_steps);
}

std::string TaskRegularizers::to_json() const { return detail::fields_to_json(*this, RegFields{}); }

TaskRegularizers TaskRegularizers::from_json(const std::string& text) {
  return detail::fields_from_json<TaskRegularizers>(text, "TaskRegularizers", RegFields{});
}

float TaskRegularizers::aux_beta_at(int step, int arch_steps) const {
  if (aux_beta_schedule == "fixed") return aux_beta;
  if (step >= arch_steps || arch_steps <= 0) return 0.f;
  return aux_beta * (1.f - static_cast<float>(step) / static_cast<float>(arch_steps));
}

float TaskRegularizers::skip_dropout_at(int stage, int step) const {
  if (skip_dropout.empty()) return 0.f;
  return skip_dropout[static_cast<size_t>(stage)] * std::exp(-skip_dropout_decay * static_cast<float>(step));
}

}  // namespace metanas::nas
