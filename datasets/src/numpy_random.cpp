// MT19937 with Matsumoto & Nishimura's init_genrand seeding (what numpy's
// legacy seeding does for an integer seed) and numpy's bounded draw.
#include "metanas/datasets/numpy_random.h"

namespace metanas::data {

NumpyRandomState::NumpyRandomState(uint32_t seed) {
  mt_[0] = seed;
  for (uint32_t i = 1; i < 624; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + i;
  pos_ = 624;
}

void NumpyRandomState::twist() {
  constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu, kMatrix = 0x9908b0dfu;
  for (int i = 0; i < 624; ++i) {
    const uint32_t y = (mt_[i] & kUpper) | (mt_[(i + 1) % 624] & kLower);
    mt_[i] = mt_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? kMatrix : 0u);
  }
  pos_ = 0;
}

uint32_t NumpyRandomState::next_uint32() {
  if (pos_ >= 624) twist();
  uint32_t y = mt_[pos_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t NumpyRandomState::interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  for (int s = 1; s <= 32; s *= 2) mask |= mask >> s;
  if (max <= 0xffffffffu) {
    uint64_t v;
    while ((v = (next_uint32() & mask)) > max) {}
    return v;
  }
  // numpy's 64-bit draw: two 32-bit outputs, high word first.
  uint64_t v;
  do {
    const uint64_t hi = next_uint32();
    v = ((hi << 32) | next_uint32()) & mask;
  } while (v > max);
  return v;
}

}  // namespace metanas::data
