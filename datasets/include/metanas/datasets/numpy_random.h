// numpy's legacy RandomState (MT19937) as far as RandomState(seed).shuffle
// needs it, bit for bit: published class splits (TripleMNIST's) are defined
// by such a shuffle, so reproducing them needs numpy's exact draws.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace metanas::data {

class NumpyRandomState {
 public:
  // numpy.random.RandomState(seed) for an integer seed in [0, 2^32).
  explicit NumpyRandomState(uint32_t seed);

  // The next raw 32-bit MT19937 output (numpy's next_uint32).
  uint32_t next_uint32();
  // Uniform integer in [0, max]: numpy's random_interval (mask the smallest
  // covering power of two minus one and reject values above max).
  uint64_t interval(uint64_t max);

  // RandomState.shuffle: Fisher-Yates from the back, j = interval(i).
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i-- > 1;) std::swap(v[i], v[std::size_t(interval(i))]);
  }

 private:
  void twist();
  std::array<uint32_t, 624> mt_{};
  int pos_ = 624;
};

}  // namespace metanas::data
