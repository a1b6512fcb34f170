// metanas: the public umbrella header of the engine (tensors, autograd, ops,
// parameter sets, optimizers, checkpoints). Include this one header.
//
// A worked example: a two-layer classifier trained with Adam.
//
//   #include <metanas/metanas.h>
//   using namespace metanas;
//
//   Device dev = resolve_device(Device::CUDA);   // falls back to the CPU
//   ParamSet ps(dev);                            // every parameter in one buffer
//   ps.add("fc1.w", {32, 2});                    // linear weights are [out, in]
//   ps.add("fc1.b", {32});
//   ps.add("fc2.w", {3, 32});
//   ps.add("fc2.b", {3});
//   ps.finalize();                               // allocates (zeros); now initialise
//   Rng rng(42);
//   ps.get("fc1.w").copy_(Tensor::randn({32, 2}, rng, 0.7f));
//   ps.get("fc2.w").copy_(Tensor::randn({3, 32}, rng, 0.2f));
//
//   Tensor x = Tensor::randn({64, 2}, rng).to(dev);        // a batch of inputs
//   Tensor y = Tensor::from_ints(labels, {64}).to(dev);     // int32 class ids
//
//   Adam opt(ps, 1e-2f);                         // PyTorch semantics
//   for (int step = 0; step < 200; ++step) {
//     Tensor h = relu(linear(x, ps.get("fc1.w"), ps.get("fc1.b")));
//     Tensor logits = linear(h, ps.get("fc2.w"), ps.get("fc2.b"));
//     Tensor loss = cross_entropy(logits, y);    // mean over the batch
//     opt.zero_grad();
//     loss.backward();                           // gradients land in ps.grads()
//     opt.step();                                // one fused kernel over the set
//     if (step % 50 == 0) std::printf("loss %.4f\n", loss.item());
//   }
//
//   Checkpoint ck;                               // docs/formats.md
//   ck.put_params("model.", ps);
//   opt.save_state(ck, "opt.");
//   ck.save("run.ckpt");                         // atomic: write .tmp, fsync, rename
//
// Errors are reported as metanas::Error with the op, shapes or path involved.
// Writing a new op (kernels, autograd record, tensor internals) takes the
// op-author interface metanas/engine/extension.h on top of this header.
// examples/embed/ is this example as a standalone CMake project.
#pragma once

#include "metanas/engine/autograd.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/device.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/optim.h"
#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"
#include "metanas/engine/shape.h"
#include "metanas/engine/tensor.h"
