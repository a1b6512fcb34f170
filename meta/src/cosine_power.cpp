// Cosine-power annealing (SharpDARTS).
#include "metanas/meta/cosine_power.h"

#include <algorithm>
#include <cmath>

#include "metanas/engine/error.h"

namespace metanas::meta {

double cosine_power_lr(int64_t iteration, int64_t iterations, int64_t warmup, double lr_max, double lr_min,
                       double power) {
  MN_CHECK(power >= 1.0, "cosine_power_lr: the power must be >= 1, got ", power);
  const int64_t T = iterations - warmup;
  if (T <= 0) return lr_max;
  const int64_t t = std::clamp<int64_t>(iteration - warmup, 0, T);
  const double pi = 3.14159265358979323846;
  const double c = 0.5 * (1.0 + std::cos(pi * static_cast<double>(t) / static_cast<double>(T)));
  const double prop = power == 1.0 ? c : (std::pow(power, c) - 1.0) / (power - 1.0);
  return lr_min + (lr_max - lr_min) * prop;
}

}  // namespace metanas::meta
