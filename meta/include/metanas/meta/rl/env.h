// The environment interface of the meta-RL agents (a gym-like, single-worker
// version of the reference's): observations are float vectors, actions are
// indices with a validity mask (non-zero = allowed).
#pragma once
#include <cstdint>
#include <vector>

namespace metanas::meta::rl {

struct Observation {
  std::vector<float> obs;
  std::vector<int32_t> mask;  // one entry per action; 0 = invalid here
};

struct Transition {
  Observation next;
  float reward = 0.f;
  bool done = false;
};

class Env {
 public:
  virtual ~Env() = default;
  virtual int obs_size() const = 0;
  virtual int action_count() const = 0;
  // Starts an episode.
  virtual Observation reset() = 0;
  // One step. An action the mask marks invalid is a no-op (the reference
  // counts it as an illegal move), so an unmasked policy can still run.
  virtual Transition step(int action) = 0;
};

}  // namespace metanas::meta::rl
