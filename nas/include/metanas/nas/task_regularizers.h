// Regularized MetaNAS: the task-level options of the DARTS-family
// regularizers (van Gastel and Vanschoren; docs/nas.md "Regularized MetaNAS")
// and their per-step schedules. The structural parts (max-w mixed op, the
// DARTS- auxiliary skip, PC-DARTS partial channels and edge normalization,
// the sharp op set) are SearchConfig fields; these options say how a task's
// search uses them. Unknown JSON keys are an error.
#pragma once
#include <string>
#include <vector>

namespace metanas::nas {

struct TaskRegularizers {
  // DARTS-: beta of the auxiliary skips (SearchConfig::aux_skip).
  //   "linear": beta_s = aux_beta (1 - s / S) over the S architecture steps of
  //             a task (meta-training and meta-testing separately), 0 after
  //             them and at query evaluation (the DARTS- paper);
  //   "fixed":  beta = aux_beta throughout, evaluation included (the released
  //             code's fixed-beta runs; aux_beta 0 is the released default).
  std::string aux_beta_schedule = "linear";
  float aux_beta = 1.f;

  // P-DARTS: search in `stages` stages of the task's steps each (1 = off).
  // At the end of stage s < stages - 1 every row of each cell type's alphas
  // keeps its keep_ops[s] largest ops (of those still alive); the others are
  // pruned for the rest of the task (logit -1e9, never computed) and get their
  // values back before the meta update, so one task's drop does not prune the
  // meta model. drop_released: the released code instead ranks both cell types
  // by the reduce cell's alphas and sets the dropped logits to min(row) - 1e-4,
  // kept in the meta update; only then may keep_ops grow (the released
  // drop_number_operations [3, 2, 0] of 7 ops is keep_ops [4, 5], re-admitting
  // the best dropped op in stage 2).
  int stages = 1;
  std::vector<int> keep_ops = {5, 4};
  bool drop_released = false;
  // Dropout on identity skip ops, meta-training only: rate
  // skip_dropout[stage] * exp(-skip_dropout_decay * t), t the step within the
  // stage (empty = off; one entry per stage). Reference: [0.5] for one stage,
  // [0, 0, 0.3] for three.
  std::vector<float> skip_dropout;
  float skip_dropout_decay = 0.2f;
  // At most this many skip_connect ops in the derived normal cell (P-DARTS
  // M = 2), enforced on the task model's alphas before query evaluation; -1 = off.
  int skip_limit = -1;
  // The released code's rule instead (nas::limit_skip_connections_released:
  // ranked by the column left of skip_connect, fewer than M skips remain).
  bool skip_limit_released = false;

  // TSE-DARTS: 0 = off; else each architecture step is tse_steps rounds of
  // (snapshot weights, weight step on the step's first batch accumulating the
  // alpha gradient, alpha step, restore the weights, weight step on the
  // second batch with the new alphas).
  int tse_steps = 0;

  bool any() const;
  void validate() const;  // throws metanas::Error naming the bad field
  std::string to_json() const;
  static TaskRegularizers from_json(const std::string& text);
  bool operator==(const TaskRegularizers& o) const { return to_json() == o.to_json(); }

  // DARTS- beta at architecture step `step` of `arch_steps` (step >= arch_steps:
  // after the search, including query evaluation).
  float aux_beta_at(int step, int arch_steps) const;
  // P-DARTS skip dropout at step `step` of stage `stage` (0 when off).
  float skip_dropout_at(int stage, int step) const;
};

}  // namespace metanas::nas
