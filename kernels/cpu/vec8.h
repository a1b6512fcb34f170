// Eight-float vectors (GCC vector extensions) for the hand-blocked CPU kernels
// (conv_shifted.cpp, conv.cpp, pool.cpp): one 256-bit register in the AVX2
// builds, two 128-bit ones in the baseline build. Loads and stores are
// unaligned (memcpy); products and sums contract to FMAs as the compiler's own
// vectorised loops do. Compiled into each ISA variant (MN_CPU_ISA_BEGIN).
#pragma once
#include <cstdint>
#include <cstring>

// These inline helpers never cross a translation unit with other flags (each
// ISA variant has its own namespace), so GCC's note that passing 256-bit
// vectors without AVX changes the ABI (the baseline build) does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

typedef float v8 __attribute__((vector_size(32)));
inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }
inline v8 splat(float x) { return v8{x, x, x, x, x, x, x, x}; }

// The starts of the 8-wide vectors that cover a row of n >= 8 elements:
// 0, 8, 16, ... and a last one ending at n, which overlaps the one before when
// n % 8 != 0 (its shared lanes are computed again, to the same bits). Rows of
// 7..28 floats are too short for a vectorised loop with a scalar remainder.
// body(j, fresh) gets the start j and the first lane not covered before
// (0, except in an overlapping last vector): a store that adds into its
// destination must keep lanes below `fresh` as they are.
template <typename Body>
inline void for_row_vectors(int64_t n, Body body) {
  int64_t j = 0;
  for (; j + 8 < n; j += 8) body(j, 0);
  body(n - 8, j - (n - 8));
}

// The lanes below `fresh` of v replaced by those of keep.
inline v8 keep_lanes(v8 v, v8 keep, int64_t fresh) {
  const v8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
  return lane < splat(static_cast<float>(fresh)) ? keep : v;
}

// Stores v at dst, or adds it there when accumulate (lanes below `fresh`
// left as they are: for_row_vectors).
inline void store_or_add8(float* dst, v8 v, bool accumulate, int64_t fresh) {
  if (accumulate) {
    const v8 old = load8(dst);
    v = keep_lanes(old + v, old, fresh);
  }
  store8(dst, v);
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
