// Architecture-weight normalizers (softmax with temperature, relu-softmax,
// gumbel-softmax) and the temperature schedule of MetaNAS's soft pruning.
#pragma once
#include <vector>

#include "metanas/engine/tensor.h"
#include "metanas/nas/model.h"

namespace metanas::nas {

// Linear annealing per task-training step:
//   at(s) = t_max - s * (t_max - t_min) / (steps - 1)   for 0 <= s < steps,
// held at t_min afterwards, and t_max throughout warm-up (architecture
// parameters are not adapted then). With steps <= 1: t_max at step 0, t_min
// after. Example: {1.0, 0.05, 5} gives 1.0, 0.7625, 0.525, 0.2875, 0.05.
struct TemperatureSchedule {
  double t_max = 1.0;
  double t_min = 0.05;
  int steps = 5;  // number of architecture-adaptation steps

  double at(int step, bool warmup = false) const;
  // Progress in [0, 1] on the same schedule (0 in warm-up): the relu-softmax lambda.
  double progress(int step, bool warmup = false) const;
  // Sets ctx.temperature and ctx.anneal_progress for `step`.
  void apply(ForwardContext& ctx, int step, bool warmup = false) const;
  // Throws metanas::Error unless t_max >= t_min > 0 and steps >= 1.
  void validate() const;
};

// Normalizes each row of `logits` (1-D: one row) as ctx says; differentiable.
// Gumbel noise is drawn from ctx.rng (required for GumbelSoftmax).
Tensor normalize(const Tensor& logits, const ForwardContext& ctx);

// The same on host values, without noise (gumbel-softmax is evaluated as
// plain softmax): used for pruning decisions outside a forward (meta-model
// pruning, sparse parameter counts). logits: rows x cols, row-major.
std::vector<float> normalize_host(const std::vector<float>& logits, int rows, int cols,
                                  const ForwardContext& ctx);

}  // namespace metanas::nas
