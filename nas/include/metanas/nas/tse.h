// TSE-DARTS (training-speed estimate) as an architecture step of the DARTS
// task optimizer (docs/nas.md "TSE-DARTS"). One round:
//   1. snapshot the weights w0;
//   2. one weight step on `unroll` from a joint backward, so that the alpha
//      gradient of the training loss accumulates (alphas unchanged);
//   3. one alpha step (the task optimizer's alpha Adam) with that gradient;
//   4. restore the weights to w0 bit for bit;
//   5. one weight step on `retrain` with the new alphas.
// The Adam moments advanced in step 2 are kept (as the reference code does).
#pragma once
#include "metanas/engine/param_set.h"
#include "metanas/nas/darts.h"
#include "metanas/nas/model.h"

namespace metanas::nas {

// Steps 1-4 (for tests): afterwards the weights equal their values on entry
// bit for bit and only the alphas have changed. `snapshot` is scratch with the
// weights' layout. Returns the unrolled step's loss.
Tensor tse_unroll(DartsTaskOptimizer& opt, Model& model, const Batch& unroll, const ForwardContext& ctx,
                  ParamSet& snapshot);

// `rounds` (tse_steps) full rounds; the result holds the first round's unroll
// loss as alpha_loss and the last retrain step's loss/accuracy.
DartsStepResult tse_step(DartsTaskOptimizer& opt, Model& model, const Batch& unroll, const Batch& retrain,
                         const ForwardContext& ctx, int rounds, ParamSet& snapshot);

}  // namespace metanas::nas
