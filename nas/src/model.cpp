// Model interface defaults.
#include "metanas/nas/model.h"

#include <atomic>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::nas {

uint64_t next_plan_epoch() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

void Model::to(Device device) {
  weights().to(device);
  if (ParamSet* a = alphas()) a->to(device);
}

Tensor Model::loss(const Batch& b, const ForwardContext& ctx) {
  MN_CHECK(b.x.defined() && b.y.defined(), kind(), " loss: batch has an undefined x or y");
  return cross_entropy(forward(b.x, ctx), b.y);
}

LossAcc Model::loss_backward(const Batch& b, const ForwardContext& ctx) {
  MN_CHECK(b.x.defined() && b.y.defined(), kind(), " loss: batch has an undefined x or y");
  Tensor logits = forward(b.x, ctx);
  Tensor loss = cross_entropy(logits, b.y);
  LossAcc r;
  r.acc = accuracy(logits.detach(), b.y);
  loss.backward();
  r.loss = loss.detach();
  return r;
}

}  // namespace metanas::nas
