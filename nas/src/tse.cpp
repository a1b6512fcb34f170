// TSE-DARTS rounds over the DARTS task optimizer's two Adam states.
#include "metanas/nas/tse.h"

#include "metanas/engine/error.h"

namespace metanas::nas {

Tensor tse_unroll(DartsTaskOptimizer& opt, Model& model, const Batch& unroll, const ForwardContext& ctx,
                  ParamSet& snapshot) {
  ParamSet* A = model.alphas();
  MN_CHECK(A && opt.a_optimizer(), "tse_unroll: a ", model.kind(), " model has no architecture parameters");
  ParamSet& W = model.weights();
  MN_CHECK(snapshot.same_layout(W), "tse_unroll: the snapshot does not have the weights' layout");
  snapshot.copy_from(W);
  W.zero_grad();
  A->zero_grad();
  const LossAcc la = model.loss_backward(unroll, ctx);  // gradients for weights and alphas
  opt.w_optimizer().step();
  opt.a_optimizer()->step();
  W.copy_from(snapshot);
  W.zero_grad();
  return la.loss;
}

DartsStepResult tse_step(DartsTaskOptimizer& opt, Model& model, const Batch& unroll, const Batch& retrain,
                         const ForwardContext& ctx, int rounds, ParamSet& snapshot) {
  MN_CHECK(rounds >= 1, "tse_step: rounds (tse_steps) must be >= 1, got ", rounds);
  DartsStepResult r;
  for (int k = 0; k < rounds; ++k) {
    Tensor l = tse_unroll(opt, model, unroll, ctx, snapshot);
    if (k == 0) r.alpha_loss = l;
    ParamSet& W = model.weights();
    W.zero_grad();
    FreezeParams fa(model.alphas());
    const LossAcc lw = model.loss_backward(retrain, ctx);
    r.w_loss = lw.loss;
    r.w_acc = lw.acc;
    opt.w_optimizer().step();
  }
  r.alpha_updated = true;
  return r;
}

}  // namespace metanas::nas
