// A GRU cell composed from engine ops (linear, sigmoid, tanh, mul, add), with
// PyTorch's nn.GRU equations and gate order (r, z, n):
//   r  = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
//   z  = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
//   n  = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
//   h' = (1 - z) * n + z * h
// Parameters live in a caller's ParamSet under "<prefix>w_ir" etc.
#pragma once
#include <string>

#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"

namespace metanas::meta::rl {

class GruCell {
 public:
  // Adds the twelve parameters (w_i* [hidden, input], w_h* [hidden, hidden],
  // b_i*, b_h* [hidden]) to `ps` (not yet finalized).
  GruCell(ParamSet& ps, const std::string& prefix, int64_t input, int64_t hidden);
  // After ps.finalize(): orthogonal weights with `gain` drawn for the stacked
  // [3 hidden, input] and [3 hidden, hidden] matrices (as orthogonal_ on
  // nn.GRU's weight_ih_l0 / weight_hh_l0), zero biases.
  void init(float gain, Rng& rng);
  // x [N, input], h [N, hidden] -> h' [N, hidden].
  Tensor step(const Tensor& x, const Tensor& h) const;
  int64_t input_size() const { return input_; }
  int64_t hidden_size() const { return hidden_; }

 private:
  ParamSet* ps_;
  std::string prefix_;
  int64_t input_, hidden_;
};

}  // namespace metanas::meta::rl
