// Fixtures shared by the NAS tests that compare two forwards of one search
// network (soft pruning, the device-side plan): setting one architecture
// logit, a forward + backward that records logits, gradients, forward stats
// and host syncs, and a relative comparison of two vectors.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "metanas/engine/device.h"
#include "metanas/nas/nas.h"

namespace metanas::testing {

// Sets element `flat` of architecture parameter `param` to v.
inline void set_logit(nas::SearchNetwork& net, int param, int64_t flat, float v) {
  Tensor& t = (*net.alphas())[param];
  std::vector<float> x = t.to_vector();
  x[static_cast<size_t>(flat)] = v;
  t.copy_(Tensor::from_vector(x, t.shape()));
}

struct ForwardOutputs {
  std::vector<float> logits, galpha, gweight;  // logits; gradients w.r.t. alphas and weights
  nas::ForwardStats stats;                     // of the forward
  uint64_t syncs = 0;                          // host syncs of the forward alone
};

// Logits, and gradients of sum(logits * R) w.r.t. alphas and weights for a
// fixed pattern R.
inline ForwardOutputs forward_backward(nas::SearchNetwork& net, const Tensor& x, const nas::ForwardContext& ctx) {
  net.alphas()->zero_grad();
  net.weights().zero_grad();
  const uint64_t s0 = host_syncs(Device::CPU);
  Tensor y = net.forward(x, ctx);
  ForwardOutputs o;
  o.syncs = host_syncs(Device::CPU) - s0;
  o.stats = net.last_forward_stats();
  o.logits = y.to_vector();
  std::vector<float> r(o.logits.size());
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<float>((i * 7) % 5) - 2.f;
  y.backward(Tensor::from_vector(r, y.shape()));
  o.galpha = net.alphas()->grads().to_vector();
  o.gweight = net.weights().grads().to_vector();
  return o;
}

// |a - b| <= tol * max(max |b|, 1e-3) elementwise.
inline void require_close(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  REQUIRE(a.size() == b.size());
  double scale = 0;
  for (float v : b) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("element " << i << ": " << a[i] << " vs " << b[i]);
    REQUIRE(std::fabs(static_cast<double>(a[i]) - b[i]) <= tol * std::max(scale, 1e-3));
  }
}

}  // namespace metanas::testing
