// The autograd engine: graph recording and the reverse topological sweep.

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "metanas/engine/extension.h"
#include "metanas/engine/error.h"

namespace metanas {

namespace {
thread_local bool g_grad_enabled = true;
std::atomic<uint64_t> g_seq{0};

bool g_legacy_accumulation = false;  // test-only: the pre-fix aliasing rule
std::atomic<uint64_t> g_into_accumulations{0};

// A gradient waiting for its node. `owned` says whether the engine allocated
// `g` itself (the sum of two or more contributions): only then may it be added
// into in place. A single contribution is adopted by handle (no copy), but it
// may be the very tensor another slot, a saved tensor or the caller holds (add
// returns its upstream gradient for both inputs; reshape passes it through),
// so the second contribution to such a slot goes to a fresh buffer. A
// gradient from an accumulate-into backward (record_into) is fresh by that
// form's contract: it is adopted as owned, and later accumulate-into
// backwards add straight into it.
struct Pending {
  Tensor g;
  bool owned = false;
};

void accumulate(Pending& acc, const Tensor& g, bool fresh) {
  if (!acc.g.defined()) {
    acc.g = g;
    acc.owned = fresh && !g_legacy_accumulation;
    return;
  }
  MN_CHECK(acc.g.shape() == g.shape(), "backward: gradient shapes disagree: ", acc.g.describe(), " vs ",
           g.describe());
  Backend& be = backend(acc.g.device());
  if (g_legacy_accumulation) {  // adopt and add in place: wrong when buffers are shared
    if (acc.g.same_as(g)) acc.g = acc.g.clone();
    be.add(acc.g.data(), acc.g.data(), g.data(), 1.f, 1.f, acc.g.numel());
    return;
  }
  if (!acc.owned && fresh) {  // g is the slot's own now: the sum goes into it (a + b == b + a)
    const Tensor old = std::move(acc.g);
    acc.g = g;
    be.add(acc.g.data(), old.data(), acc.g.data(), 1.f, 1.f, old.numel());
    acc.owned = true;
    return;
  }
  if (!acc.owned) {  // copy-on-write: out of place into a buffer only this slot holds
    Tensor sum = Tensor::empty(acc.g.shape(), DType::F32, acc.g.device());
    be.add(sum.data(), acc.g.data(), g.data(), 1.f, 1.f, sum.numel());
    acc.g = std::move(sum);
    acc.owned = true;
    return;
  }
  be.add(acc.g.data(), acc.g.data(), g.data(), 1.f, 1.f, acc.g.numel());
}
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
void set_legacy_accumulation_for_testing(bool on) { g_legacy_accumulation = on; }
uint64_t into_accumulations_for_testing() { return g_into_accumulations.load(); }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace {
void record_node(Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardIntoFn fn,
                 bool accumulates) {
  auto node = std::make_shared<Node>();
  node->op = op;
  node->seq = g_seq.fetch_add(1);
  node->out_shape = out.shape();
  node->out_device = out.device();
  node->edges.reserve(inputs.size());
  for (const auto& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.impl()->grad_fn)
        e.node = t.impl()->grad_fn;
      else
        e.leaf = t.impl_ptr();
    }
    node->edges.push_back(std::move(e));
  }
  node->backward = std::move(fn);
  node->accumulates = accumulates;
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
}

// The buffers an accumulate-into backward of n may add into: owned pending
// sums and leaf gradients, each offered to one input only (an op reading the
// same tensor twice gets a buffer for the first of them).
std::vector<Tensor> into_buffers(const Node& n, const std::unordered_map<Node*, Pending>& pending) {
  std::vector<Tensor> into(n.edges.size());
  for (size_t i = 0; i < n.edges.size(); ++i) {
    const Edge& e = n.edges[i];
    if (!e.needed()) continue;
    bool repeat = false;
    for (size_t j = 0; j < i && !repeat; ++j)
      repeat = e.node ? n.edges[j].node == e.node : n.edges[j].leaf == e.leaf;
    if (repeat) continue;
    if (e.node) {
      auto it = pending.find(e.node.get());
      if (it != pending.end() && it->second.owned) into[i] = it->second.g;
    } else {
      into[i] = Tensor(e.leaf).grad();
    }
  }
  return into;
}
}  // namespace

void record(Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!any_requires_grad(inputs)) return;
  record_node(
      out, op, inputs,
      [fn = std::move(fn)](const Tensor& g, const std::vector<Tensor>&) { return fn(g); }, false);
}

void record_into(Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardIntoFn fn) {
  if (!any_requires_grad(inputs)) return;
  record_node(out, op, inputs, std::move(fn), true);
}

void run_backward(const Tensor& root, const Tensor& grad_output) {
  MN_CHECK(root.defined() && grad_output.defined(), "backward: undefined tensor");
  MN_CHECK(root.requires_grad(), "backward: ", root.describe(),
           " does not require grad (no parameter reaches it, or it was computed under no_grad)");
  MN_CHECK(grad_output.shape() == root.shape() && grad_output.device() == root.device(),
           "backward: gradient ", grad_output.describe(), " does not match ", root.describe());
  NoGradGuard no_grad;

  if (!root.impl()->grad_fn) {  // backward on a leaf: its gradient is grad_output
    Tensor acc = root.grad();
    if (acc.defined())
      acc.add_(grad_output);
    else
      const_cast<Tensor&>(root).set_grad(grad_output.clone());
    return;
  }

  // Topological order by DFS (iterative), children before parents.
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack;
  Node* start = root.impl()->grad_fn.get();
  stack.emplace_back(start, 0);
  seen.insert(start);
  while (!stack.empty()) {
    auto& [n, i] = stack.back();
    if (i < n->edges.size()) {
      Node* child = n->edges[i++].node.get();
      if (child && seen.insert(child).second) stack.emplace_back(child, 0);
    } else {
      order.push_back(n);
      stack.pop_back();
    }
  }
  std::reverse(order.begin(), order.end());  // root first

  std::unordered_map<Node*, Pending> pending;
  pending[start].g = grad_output;  // the caller's tensor: never written
  // Keep nodes alive while we walk, even if the user drops tensors.
  std::vector<std::shared_ptr<Node>> keep;
  for (Node* n : order) {
    if (!n->backward)
      MN_THROW("backward: the graph through op '", n->op,
               "' was already freed by an earlier backward(); recompute the forward pass");
    auto it = pending.find(n);
    if (it == pending.end()) continue;  // no gradient reached it
    Tensor g = std::move(it->second.g);
    pending.erase(it);
    const std::vector<Tensor> into =
        n->accumulates && !g_legacy_accumulation ? into_buffers(*n, pending) : std::vector<Tensor>();
    std::vector<Tensor> grads = n->backward(g, into);
    MN_CHECK(grads.size() == n->edges.size(), "backward of '", n->op, "' returned ", grads.size(),
             " gradients for ", n->edges.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Edge& e = n->edges[i];
      if (!e.needed() || !grads[i].defined()) continue;
      if (!into.empty() && into[i].defined() && grads[i].same_as(into[i])) {
        ++g_into_accumulations;  // already added into the pending sum or leaf gradient
        continue;
      }
      if (e.node) {
        MN_CHECK(grads[i].shape() == e.node->out_shape, "backward of '", n->op, "': gradient ",
                 grads[i].describe(), " for an input of shape ", e.node->out_shape.str());
        keep.push_back(e.node);
        accumulate(pending[e.node.get()], grads[i], n->accumulates);
      } else {
        Tensor leaf(e.leaf);
        MN_CHECK(grads[i].shape() == leaf.shape(), "backward of '", n->op, "': gradient ",
                 grads[i].describe(), " for leaf ", leaf.describe());
        Tensor acc = leaf.grad();
        if (acc.defined())
          backend(acc.device()).add(acc.data(), acc.data(), grads[i].data(), 1.f, 1.f, acc.numel());
        else
          leaf.set_grad(grads[i].clone());  // own buffer: grads may alias others
      }
    }
    // Free the graph as it is consumed: saved tensors and edges go now.
    n->backward = nullptr;
    n->edges.clear();
  }
}

}  // namespace metanas
