// Reverse-mode autograd on a dynamic graph: the public switch (NoGradGuard).
// The graph itself (Node, Edge, record) is the op-author interface:
// metanas/engine/extension.h.
//
// Each differentiable op records a Node: its backward closure (which captures
// only the tensors it needs) and one Edge per input. backward() walks the
// graph in reverse topological order, sums the gradients reaching each tensor
// (+= for tensors used more than once) and accumulates leaf gradients into
// leaf.grad(). The graph is freed as it is consumed; backward through a freed
// graph is an error. Backward closures run with grad recording off, so the
// engine is first-order: second-order terms (DARTS unrolled step, MAML) are
// computed with finite differences of first-order gradients.
#pragma once

namespace metanas {

// Whether ops record the graph (thread-local; on by default).
bool grad_enabled();
void set_grad_enabled(bool on);

// RAII: no graph is recorded while alive.
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace metanas
