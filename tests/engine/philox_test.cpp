// The counter-based generator behind drop-path masks (metanas/kernels/philox.h):
// Philox4x32-10 against the Random123 known-answer vectors, the CPU
// drop_path_scales kernel against the formula, and drop_path with a key: a
// pure function of (seed, task, step, op), different where any part differs.
// The CUDA kernel calls the same per-row function (tests/cuda/kernel_math_test
// checks that on the host, the parity test on a GPU).
#include <catch2/catch.hpp>

#include <vector>

#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "metanas/kernels/philox.h"

using namespace metanas;
using kernels::Philox4;

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors", "[philox]") {
  struct Kat {
    Philox4 ctr;
    uint32_t k0, k1;
    Philox4 expect;
  };
  const Kat kats[] = {
      {{{0u, 0u, 0u, 0u}}, 0u, 0u, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       0xffffffffu,
       0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       0xa4093822u,
       0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Kat& k : kats) {
    const Philox4 r = kernels::philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) REQUIRE(r.v[i] == k.expect.v[i]);
  }
}

TEST_CASE("the CPU drop_path_scales kernel is the Philox formula", "[philox]") {
  const PhiloxKey key{0x0123456789abcdefull, 3, 2, 17};
  const float p = 0.3f;
  const int64_t n = 1000;
  std::vector<float> got(n);
  backend(Device::CPU).drop_path_scales(key, p, got.data(), n);
  int dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    // Reference: counter (i, op, step, task), key (seed lo, seed hi), 24 bits of word 0.
    const Philox4 r = kernels::philox4x32_10(Philox4{{static_cast<uint32_t>(i), 17u, 2u, 3u}}, 0x89abcdefu,
                                             0x01234567u);
    const double u = static_cast<double>(r.v[0] >> 8) / 16777216.0;
    const float expect = u >= p ? 1.f / (1.f - p) : 0.f;
    REQUIRE(got[static_cast<size_t>(i)] == expect);
    dropped += expect == 0.f;
  }
  REQUIRE(dropped > 240);  // ~300 of 1000 at p = 0.3
  REQUIRE(dropped < 360);
}

TEST_CASE("drop_path with a Philox key is a pure function of seed, task, step and op", "[philox][drop_path]") {
  Rng data(5);
  Tensor x = Tensor::randn({64, 2, 3, 3}, data);
  const PhiloxKey key{42, 1, 2, 3};
  auto mask = [&](const PhiloxKey& k) {
    std::vector<float> y = drop_path(x, 0.5f, k).to_vector(), xv = x.to_vector(), m;
    for (size_t i = 0; i < y.size(); i += 18) m.push_back(y[i] == 0.f && xv[i] != 0.f ? 0.f : 1.f);
    return m;
  };
  const auto base = mask(key);
  REQUIRE(mask(key) == base);
  PhiloxKey other = key;
  other.seed = 43;
  REQUIRE(mask(other) != base);
  other = key;
  other.task = 0;
  REQUIRE(mask(other) != base);
  other = key;
  other.step = 0;
  REQUIRE(mask(other) != base);
  other = key;
  other.op = 0;
  REQUIRE(mask(other) != base);
}

TEST_CASE("drop_path uploads nothing and so counts no host synchronisation", "[philox][sync]") {
  Rng data(6);
  Tensor x = Tensor::randn({8, 4}, data);
  const uint64_t before = host_syncs(Device::CPU);
  Tensor y = drop_path(x, 0.25f, PhiloxKey{7, 0, 0, 0});
  REQUIRE(host_syncs(Device::CPU) == before);
}
