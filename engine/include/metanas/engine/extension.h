// The op-author interface: what a new differentiable op (in the engine or in a
// library built on it, like nas/'s row_normalize) needs beyond the public
// umbrella header metanas/metanas.h: the tensor internals, the autograd graph
// and record(), and the kernel dispatch (Backend, generated from the op table
// metanas/kernels/op_table.def). Users of the library do not need this header.
//
// A new op computes its output with backend(device).<kernel>(...) and calls
// record(out, "name", {inputs...}, backward) with a closure that captures only
// what its backward needs and returns one gradient per input (an undefined
// Tensor where none is needed). A backward may return its upstream gradient
// itself (pass-through) or the same tensor for several inputs: the engine
// never writes into a gradient it did not allocate (see autograd.cpp).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "metanas/engine/autograd.h"
#include "metanas/engine/backend.h"
#include "metanas/engine/tensor.h"

namespace metanas {

// A block of device memory, freed through its backend when the last view dies.
struct Storage {
  Storage(Device device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;          // null for leaves and constants
  std::shared_ptr<TensorImpl> grad;       // accumulated gradient of a leaf
  std::string name;                       // optional, for error messages
};

// Where an input's gradient goes: into the node that produced it, or into a
// leaf's .grad. Both empty: the input needs no gradient.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> leaf;
  bool needed() const { return node || leaf; }
};

// grads[i] is the gradient of input i (undefined Tensor when not needed).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// The accumulate-into form (record_into). `into` is empty or has one entry per
// input: where defined, into[i] is a gradient buffer the engine owns (the
// input's pending sum, or a leaf's .grad) of the input's shape; the backward
// may add input i's gradient into it (a kernel's accumulate flag) and return
// into[i] itself, which saves the separate add pass and buffer. Every other
// gradient such a backward returns must be a fresh tensor that nothing else
// holds: the engine takes it as its own buffer, to add later contributions into.
using BackwardIntoFn =
    std::function<std::vector<Tensor>(const Tensor& grad_output, const std::vector<Tensor>& into)>;

struct Node {
  std::string op;              // op name, for error messages
  std::vector<Edge> edges;     // one per op input
  BackwardIntoFn backward;     // null once consumed (record() wraps a BackwardFn)
  bool accumulates = false;    // recorded by record_into: takes `into`, returns fresh gradients
  Shape out_shape;             // shape of the op's output (checks the incoming grad)
  Device out_device = Device::CPU;
  uint64_t seq = 0;            // creation order (topological tie-break)
};

// True when grad mode is on and any input requires grad.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Records `fn` as the backward of `out` (made from `inputs` by `op`) when
// grad mode is on and any input requires grad; otherwise does nothing.
// `inputs` and the vector fn returns correspond one to one.
void record(Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardFn fn);

// record() for a backward of the accumulate-into form (BackwardIntoFn above).
void record_into(Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardIntoFn fn);

// Reverse-mode backward from root with the given upstream gradient.
void run_backward(const Tensor& root, const Tensor& grad_output);

// Test-only: restores the accumulation rule before the ownership fix (a
// pending gradient adopted by handle and later added into in place, even when
// another slot shares its buffer), so that tests can show the graph fuzzer
// catches it. Never use outside tests.
void set_legacy_accumulation_for_testing(bool on);

// Test-only: how many gradients backward ops have added into an engine buffer
// (the accumulate-into form) since the process started.
uint64_t into_accumulations_for_testing();

}  // namespace metanas
