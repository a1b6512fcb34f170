// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11; the Random123 reference), as host+device functions so the CPU kernel
// and the CUDA kernel of a random op compute bit-identical numbers from the
// same key: a draw is a pure function of (key, counter), not of a sequence.
// Counter layout of philox_uniform: (index, op, step, task), key = seed.
#pragma once
#include <cstdint>

#include "metanas/kernels/kernel_types.h"

#ifdef __CUDACC__
#define MN_PHILOX_HD __host__ __device__ __forceinline__
#else
#define MN_PHILOX_HD inline
#endif

namespace metanas::kernels {

struct Philox4 {
  uint32_t v[4];
};

MN_PHILOX_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on counter c with key (k0, k1).
MN_PHILOX_HD Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, c.v[0], &hi0, &lo0);
    philox_mulhilo(kM1, c.v[2], &hi1, &lo1);
    c = Philox4{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

// Uniform in [0, 1) with 24 random bits: draw `index` of the stream `key`.
MN_PHILOX_HD float philox_uniform(const PhiloxKey& key, uint32_t index) {
  const Philox4 r = philox4x32_10(Philox4{{index, key.op, key.step, key.task}}, static_cast<uint32_t>(key.seed),
                                  static_cast<uint32_t>(key.seed >> 32));
  return static_cast<float>(r.v[0] >> 8) * (1.f / 16777216.f);
}

// The key whose seed and task are device words (key3 = {seed low, seed high,
// task}, Backend::drop_path_scales_at): graphs read them at replay time.
MN_PHILOX_HD PhiloxKey philox_key_from_words(const int32_t* key3, uint32_t step, uint32_t op) {
  PhiloxKey k;
  k.seed = static_cast<uint64_t>(static_cast<uint32_t>(key3[0])) |
           static_cast<uint64_t>(static_cast<uint32_t>(key3[1])) << 32;
  k.task = static_cast<uint32_t>(key3[2]);
  k.step = step;
  k.op = op;
  return k;
}

// The drop-path row scale of row `index` (both backends' kernels call this).
MN_PHILOX_HD float drop_path_scale(const PhiloxKey& key, float p, uint32_t index) {
  return philox_uniform(key, index) >= p ? 1.f / (1.f - p) : 0.f;
}

}  // namespace metanas::kernels
