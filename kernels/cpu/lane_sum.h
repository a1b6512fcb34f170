// Float-lane sums shared by the CPU batch-norm and normalised mixed-op kernels
// (batch_norm.cpp, normalized_sum.cpp). Compiled into each ISA variant of the
// files that include it (MN_CPU_ISA_BEGIN).
#pragma once
#include <cstdint>

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

// sum_i f(i), i < n, in kFloatLanes float lanes (element i in lane i % 16,
// lanes added in a fixed tree), returned as double: two 8-wide vectors of
// float adds where double lanes took a conversion and twice the vectors. For
// sums of terms of one sign or centred ones (batch norm's plane statistics) the
// float lanes keep ~1e-6 relative accuracy over a 28x28 plane; the planes are
// then merged in double.
constexpr int kFloatLanes = 16;
template <typename F>
inline double float_lane_sum(int64_t n, F f) {
  float acc[kFloatLanes] = {};
  int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes)
    for (int j = 0; j < kFloatLanes; ++j) acc[j] += f(i + j);
  // The last n % 16 terms in one scalar sum: indexing the lanes with a
  // running j kept them in memory and made 7x7 planes slower than double lanes.
  float tail = 0.f;
  for (; i < n; ++i) tail += f(i);
  double l[8];
  for (int j = 0; j < 8; ++j) l[j] = static_cast<double>(acc[j]) + static_cast<double>(acc[j + 8]);
  return (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))) + static_cast<double>(tail);
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
