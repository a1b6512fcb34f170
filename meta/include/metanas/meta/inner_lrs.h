// InnerLrs: per-step, per-tensor inner learning rates (MAML++'s LSLR). One
// parameter of `values` entries per adapted tensor: every weight tensor the
// inner loop adapts ("w.<name>") and every architecture tensor ("a.<name>"),
// initialised to the task learning rate (task.sgd_w_lr / sgd_a_lr), as the
// reference's LSLRGradientDescentLearningRule (total steps + 1 entries).
// Inner step s updates tensor k by  p_k <- p_k - lr_k[min(s, values - 1)] g_k.
// Outer-only weights (Model::outer_only) get no rate and are never moved.
// The rates live on the model's device (where their meta-gradient is
// accumulated); a host copy, refreshed after they change, feeds the updates
// without synchronising inside the inner loop.
#pragma once
#include <string>
#include <vector>

#include "metanas/engine/checkpoint.h"
#include "metanas/engine/param_set.h"
#include "metanas/nas/model.h"

namespace metanas::meta {

class InnerLrs {
 public:
  InnerLrs(const nas::Model& model, int values, float w_lr, float a_lr);

  ParamSet& params() { return lrs_; }
  const ParamSet& params() const { return lrs_; }
  int values() const { return values_; }
  // Index into params() of weight tensor i / alpha tensor i; -1 when the
  // tensor has no rate (outer-only).
  int of_weight(int i) const { return w_index_[i]; }
  int of_alpha(int i) const { return a_index_.empty() ? -1 : a_index_[i]; }
  // The rate of parameter j of params() at inner step `step` (host copy).
  float rate(int j, int step);
  // Call after the rates changed on the device (outer step, load).
  void changed() { host_valid_ = false; }

  // One inner update of the model from its current gradients: every weight
  // with a rate, and the alphas when `alphas`.
  void apply(nas::Model& model, int step, bool alphas);

  void save(Checkpoint& ck, const std::string& prefix) const;
  // Loads the rates when the checkpoint has them (returns whether it did).
  bool load(const Checkpoint& ck, const std::string& prefix);
  void copy_from(const InnerLrs& o);

 private:
  int values_;
  ParamSet lrs_;
  std::vector<int> w_index_, a_index_;
  std::vector<float> host_;
  bool host_valid_ = false;
};

// A view of tensor i of a ParamSet's value or gradient buffer (no autograd).
Tensor param_values(ParamSet& ps, int i);
Tensor param_grads(ParamSet& ps, int i);

}  // namespace metanas::meta
