// Reptile: MetaNAS's meta-learner. For each task of the meta-batch, k steps of
// the DARTS task optimizer (weights and alphas; weights only in warm-up)
// from the meta parameters; then, with Phi = (w, alpha),
//   g = -(1/n) sum_i (Phi_i - Phi)      (meta-gradient)
//   SGD:  Phi <- Phi - lr g  =  Phi + lr * mean_i (Phi_i - Phi)
//         (lr 1.0 for w and 0.6 for alpha in MetaNAS)
//   Adam: Phi <- Adam(Phi, g)
// Alphas are not updated during warm-up. See docs/algorithms.md.
#pragma once
#include <memory>

#include "metanas/meta/learner.h"

namespace metanas::meta {

class Reptile : public MetaLearner {
 public:
  Reptile(const MetaConfig& cfg, std::unique_ptr<nas::Model> meta_model);
  MetaStepStats meta_step(const std::vector<data::Episode>& tasks) override;
  Algorithm algorithm() const override { return Algorithm::Reptile; }

 private:
  ParamSet w_sum_;   // sum over tasks of the adapted weights
  ParamSet a_sum_;   // ... and alphas (empty without alphas)
};

}  // namespace metanas::meta
