// Reverse-mode autograd on a dynamic graph.
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
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "metanas/engine/tensor.h"

namespace metanas {

// Where an input's gradient goes: into the node that produced it, or into a
// leaf's .grad. Both empty: the input needs no gradient.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> leaf;
  bool needed() const { return node || leaf; }
};

// grads[i] is the gradient of input i (undefined Tensor when not needed).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;              // op name, for error messages
  std::vector<Edge> edges;     // one per op input
  BackwardFn backward;         // null once consumed
  Shape out_shape;             // shape of the op's output (checks the incoming grad)
  Device out_device = Device::CPU;
  uint64_t seq = 0;            // creation order (topological tie-break)
};

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

// True when grad mode is on and any input requires grad.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Records `fn` as the backward of `out` (made from `inputs` by `op`) when
// grad mode is on and any input requires grad; otherwise does nothing.
// `inputs` and the vector fn returns correspond one to one.
void record(Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardFn fn);

// Reverse-mode backward from root with the given upstream gradient.
void run_backward(const Tensor& root, const Tensor& grad_output);

}  // namespace metanas
