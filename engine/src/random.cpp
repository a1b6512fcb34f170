// xoshiro256** seeded through splitmix64; Box-Muller normals.
#include "metanas/engine/random.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "metanas/engine/error.h"

namespace metanas {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

void Rng::seed_with(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
  has_spare_ = false;
  spare_ = 0.f;
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Rng::uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }

double Rng::uniform_double() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

uint64_t Rng::below(uint64_t n) {
  MN_CHECK(n > 0, "Rng::below: n must be positive");
  // Rejection sampling: unbiased for any n.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r;
  do {
    r = next_u64();
  } while (r >= limit);
  return r % n;
}

float Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1;
  do {
    u1 = uniform_double();
  } while (u1 <= 1e-300);
  const double u2 = uniform_double();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double a = 2.0 * M_PI * u2;
  spare_ = static_cast<float>(r * std::sin(a));
  has_spare_ = true;
  return static_cast<float>(r * std::cos(a));
}

Rng Rng::split() {
  Rng child(0);
  uint64_t x = next_u64();
  for (auto& s : child.s_) s = splitmix64(x);
  return child;
}

std::string Rng::state() const {
  std::ostringstream os;
  os << s_[0] << ' ' << s_[1] << ' ' << s_[2] << ' ' << s_[3] << ' ' << (has_spare_ ? 1 : 0) << ' ';
  char buf[32];
  std::snprintf(buf, sizeof buf, "%a", static_cast<double>(spare_));
  os << buf;
  return os.str();
}

void Rng::set_state(const std::string& text) {
  std::istringstream is(text);
  std::array<uint64_t, 4> s{};
  int spare_flag = 0;
  std::string spare_text;
  if (!(is >> s[0] >> s[1] >> s[2] >> s[3] >> spare_flag >> spare_text))
    MN_THROW("Rng::set_state: malformed RNG state '", text, "'");
  char* end = nullptr;
  const double spare = std::strtod(spare_text.c_str(), &end);
  MN_CHECK(end && *end == '\0', "Rng::set_state: malformed spare value '", spare_text, "'");
  s_ = s;
  has_spare_ = spare_flag != 0;
  spare_ = static_cast<float>(spare);
}

}  // namespace metanas
