// First-order MAML over weights and alphas.
//   Fomaml (T-NAS): per task, k SGD steps on the support set over w and alpha
//     jointly (w only for fixed architectures and in warm-up); then the
//     query-loss gradient at the adapted parameters Phi_i,
//       g = (1/n) sum_i dL_query(Phi_i)/dPhi_i   (first order: dPhi_i/dPhi = I)
//     and one outer Adam step on the meta parameters.
//   AutoMaml: the inner loop adapts only w; alpha is shared by all tasks and
//     moved only by the outer step (with g_alpha as above).
//   AutoMaml with meta.auto_maml_split (meta_step_split, the T-NAS code's
//     auto_maml.py): first the architect step, g_alpha from the search tasks
//     (held images) and one Adam step on alpha; then g_w from the training
//     tasks, adapted under the updated alpha, and one Adam step on w.
// Alphas are not updated during warm-up. See docs/algorithms.md.
// With any cfg.mamlpp option on (MAML++ / T-NAS++), the meta-gradient comes
// from MamlppGradient (meta/mamlpp.h) instead: per-step rates, multi-step
// loss, second order; the rates' optimizer state is saved as "meta_opt.lslr.".
#pragma once
#include <memory>

#include "metanas/meta/learner.h"
#include "metanas/meta/mamlpp.h"

namespace metanas::meta {

class Fomaml : public MetaLearner {
 public:
  // cfg.algorithm must be Fomaml or AutoMaml.
  Fomaml(const MetaConfig& cfg, std::unique_ptr<nas::Model> meta_model);
  MetaStepStats meta_step(const std::vector<data::Episode>& tasks) override;
  MetaStepStats meta_step_split(const std::vector<data::Episode>& tasks,
                                const std::vector<data::Episode>& search_tasks) override;
  Algorithm algorithm() const override { return cfg_.algorithm; }
  void save_state(Checkpoint& ck) const override;
  void load_state(const Checkpoint& ck) override;

 private:
  MetaStepStats mamlpp_step(const std::vector<data::Episode>& tasks);
  std::unique_ptr<MamlppGradient> pp_;  // MAML++ options on
};

}  // namespace metanas::meta
