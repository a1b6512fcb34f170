// Rng: a small, portable, seedable generator (xoshiro256**) whose whole state
// can be saved and restored, so a resumed run draws exactly the same numbers.
// Distributions are implemented here (not std::) so results are identical on
// every standard library.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace metanas {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);

  uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits.
  float uniform();
  double uniform_double();
  // Uniform integer in [0, n). n must be > 0.
  uint64_t below(uint64_t n);
  // Standard normal (Box-Muller, one value per call, the pair's second cached).
  float normal();

  // Derive an independent generator (e.g. one per task) without disturbing
  // reproducibility of the parent's later draws beyond one next_u64().
  Rng split();

  // Text form of the full state (for checkpoints): "s0 s1 s2 s3 has_spare spare".
  std::string state() const;
  void set_state(const std::string& s);  // throws metanas::Error on malformed input

 private:
  std::array<uint64_t, 4> s_{};
  bool has_spare_ = false;
  float spare_ = 0.f;
};

}  // namespace metanas
