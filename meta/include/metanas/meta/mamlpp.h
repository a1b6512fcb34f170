// MAML++ (Antoniou et al., "How to train your MAML", 2019; reference code
// HowToTrainYourMAMLPytorch) as an option of the FOMAML / T-NAS / Auto-MAML
// learners: the meta-gradient of one task through an Sgd inner loop with
//   - LSLR: per-step per-tensor inner rates (InnerLrs), learned in the outer loop;
//   - MSL: meta-loss sum_s v_s L_query(P_{s+1}), v = msl_importance(...);
//   - second order (derivative-order annealing): exact backward through the
//     inner updates, with Hessian-vector products by central differences of
//     first-order gradients; first order: the inner Jacobians taken as I.
// Notation: P_s the parameters (weights, and alphas after warm-up) before
// inner step s, g_s the support gradient at P_s, Lambda_s the diagonal of
// rates (0 for outer-only tensors and for alphas not adapted in that step),
// P_{s+1} = P_s - Lambda_s g_s, q_t = grad L_query(P_t). Backward:
//   u_N = v_{N-1} q_N;  u_s = v_{s-1} q_s + u_{s+1} - H_s Lambda_s u_{s+1}
//   (second order; first order drops H_s), with u_0 the meta-gradient of P_0,
//   dL/dlr_s[k] = -<g_s[k], u_{s+1}[k]>   (exact given u_{s+1}),
//   H_s d = (g(P_s + e d) - g(P_s - e d)) / (2 e),  e = fd_eps / ||d||.
// With first order the rate gradients are those of the reference's first-
// order mode (its rates multiply detached gradients); only the last step's
// rate gradient is then the exact one.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/engine/optim.h"
#include "metanas/meta/config.h"
#include "metanas/meta/task_learner.h"

namespace metanas::meta {

// The reference's per-step loss importance vector at `epoch` for `steps`
// inner steps: 1/N each at epoch 0; non-final weights decay by epoch / (N
// msl_epochs) to the floor 0.03 / N, the final one grows accordingly (capped
// at 1 - (N - 1) 0.03 / N).
std::vector<double> msl_importance(int steps, int msl_epochs, int64_t epoch);
// The weights the meta-loss uses at `epoch`: msl_importance while MSL is on
// and epoch < msl_epochs, else the final step only.
std::vector<double> step_loss_weights(const MamlppSection& p, int steps, int64_t epoch);
// Whether the meta-gradient is second order at `epoch`.
bool second_order_at(const MamlppSection& p, int64_t epoch);

// Clamps every gradient of ps to [-c, c] (c <= 0: nothing).
void clamp_grads(ParamSet& ps, float c);

class MamlppGradient : public InnerStepObserver {
 public:
  // `meta` and `task` must outlive this object; task's inner loop must have
  // per-step rates (TaskLearnerOptions::lslr_values > 0).
  MamlppGradient(const MetaConfig& cfg, nas::Model& meta, TaskLearner& task);

  struct TaskResult {
    AdaptResult adapt;
    Tensor query_loss, query_acc;  // after the last inner step
  };
  // Adapts to one episode and adds scale * (meta-gradient) to the meta
  // model's weight gradients, its alpha gradients when `update_alphas`, and
  // the rates' gradients. warmup: no alpha adaptation (alphas held fixed).
  TaskResult accumulate(const data::Episode& ep, Rng& rng, bool warmup, bool update_alphas, int64_t epoch,
                        float scale);

  // The rates' meta optimizer (Adam or SGD as cfg.meta), stepping only with
  // mamlpp.lslr; clamps the rate gradients with meta_grad_clamp.
  void zero_rate_grads();
  void step_rates(float lr);
  Optimizer* rate_optimizer() { return opt_.get(); }

  void after_gradient(int s, const nas::Batch& batch, const nas::ForwardContext& ctx, bool alphas) override;
  void after_update(int s) override;

 private:
  struct Step {
    Tensor pw, pa, gw, ga;      // P_s, g_s (copies)
    Tensor qw, qa;              // v_{s} q_{s+1} (undefined: no query loss after this step)
    nas::Batch batch;
    nas::ForwardContext ctx;
    bool alphas = false;
  };
  // H_s d over (weights, alphas) at P_s; restores nothing (the caller does).
  void hvp(const Step& st, const Tensor& dw, const Tensor& da, Tensor& hw, Tensor& ha);

  MamlppSection p_;
  nas::Model& meta_;
  TaskLearner& task_;
  std::unique_ptr<Optimizer> opt_;
  std::vector<Step> steps_;
  std::vector<double> v_;
  bool with_alphas_ = false;  // alphas are part of P this task
  const data::Episode* ep_ = nullptr;
  Tensor last_loss_, last_acc_;
};

}  // namespace metanas::meta
