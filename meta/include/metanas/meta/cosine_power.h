// SharpDARTS's cosine-power annealing of a learning rate (docs/nas.md
// "SharpDARTS"), as reg-MetaNAS applies it to the meta learning rates:
//   c(t)  = (1 + cos(pi t / T)) / 2
//   lr(t) = lr_min + (lr_max - lr_min) (p^c(t) - 1) / (p - 1)     (p > 1)
//         = lr_min + (lr_max - lr_min) c(t)                          (p = 1: cosine)
// t = max(0, iteration - warmup), T = iterations - warmup: lr_max during the
// architecture warm-up, lr_min at the end.
#pragma once
#include <cstdint>

namespace metanas::meta {

double cosine_power_lr(int64_t iteration, int64_t iterations, int64_t warmup, double lr_max, double lr_min,
                       double power);

}  // namespace metanas::meta
