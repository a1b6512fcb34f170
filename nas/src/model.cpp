// Model interface defaults.
#include "metanas/nas/model.h"

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::nas {

void Model::to(Device device) {
  weights().to(device);
  if (ParamSet* a = alphas()) a->to(device);
}

Tensor Model::loss(const Batch& b, const ForwardContext& ctx) {
  MN_CHECK(b.x.defined() && b.y.defined(), kind(), " loss: batch has an undefined x or y");
  return cross_entropy(forward(b.x, ctx), b.y);
}

}  // namespace metanas::nas
