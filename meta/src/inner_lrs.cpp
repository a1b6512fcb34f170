// InnerLrs: MAML++'s per-step, per-tensor inner learning rates (LSLR).
#include "metanas/meta/inner_lrs.h"

#include <algorithm>

#include "metanas/engine/error.h"

namespace metanas::meta {

Tensor param_values(ParamSet& ps, int i) { return ps.values().view(ps.offset(i), ps.shape(i)); }
Tensor param_grads(ParamSet& ps, int i) { return ps.grads().view(ps.offset(i), ps.shape(i)); }

InnerLrs::InnerLrs(const nas::Model& model, int values, float w_lr, float a_lr)
    : values_(values), lrs_(model.device()) {
  MN_CHECK(values >= 1, "InnerLrs: need at least one rate per tensor, got ", values);
  const ParamSet& W = model.weights();
  std::vector<float> init;
  for (int i = 0; i < W.size(); ++i) {
    if (model.outer_only(i)) {
      w_index_.push_back(-1);
      continue;
    }
    w_index_.push_back(lrs_.add("w." + W.name(i), Shape{values}));
    init.insert(init.end(), values, w_lr);
  }
  if (const ParamSet* A = model.alphas())
    for (int i = 0; i < A->size(); ++i) {
      a_index_.push_back(lrs_.add("a." + A->name(i), Shape{values}));
      init.insert(init.end(), values, a_lr);
    }
  lrs_.finalize();
  lrs_.values().copy_(Tensor::from_vector(init, Shape{static_cast<int64_t>(init.size())}));
}

float InnerLrs::rate(int j, int step) {
  if (!host_valid_) {
    host_ = lrs_.values().to_vector();
    host_valid_ = true;
  }
  return host_[static_cast<size_t>(j) * values_ + std::min(step, values_ - 1)];
}

void InnerLrs::apply(nas::Model& model, int step, bool alphas) {
  ParamSet& W = model.weights();
  for (int i = 0; i < W.size(); ++i)
    if (const int j = w_index_[i]; j >= 0) param_values(W, i).add_(param_grads(W, i), -rate(j, step));
  if (!alphas) return;
  ParamSet* A = model.alphas();
  MN_CHECK(A && static_cast<int>(a_index_.size()) == A->size(), "InnerLrs::apply: the model has no alphas of this layout");
  for (int i = 0; i < A->size(); ++i) param_values(*A, i).add_(param_grads(*A, i), -rate(a_index_[i], step));
}

void InnerLrs::save(Checkpoint& ck, const std::string& prefix) const { ck.put_params(prefix, lrs_); }

bool InnerLrs::load(const Checkpoint& ck, const std::string& prefix) {
  if (lrs_.size() == 0 || !ck.has(prefix + lrs_.name(0))) return false;
  ck.get_params(prefix, lrs_);
  changed();
  return true;
}

void InnerLrs::copy_from(const InnerLrs& o) {
  lrs_.copy_from(o.lrs_);
  changed();
}

}  // namespace metanas::meta
