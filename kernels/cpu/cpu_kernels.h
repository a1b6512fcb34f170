// CPU kernels: the arithmetic behind every engine op on the CPU. Signatures
// and semantics are those of the op table (metanas/kernels/op_table.def). Threads: OpenMP; GEMM: OpenBLAS (OpenMP
// build, so it shares our thread pool and runs serially inside our regions).
// One file per op family: elementwise.cpp, gemm.cpp, optim.cpp,
// weighted_sum.cpp, softmax.cpp, conv.cpp, pool.cpp, batch_norm.cpp;
// cpu_backend.cpp forwards the Backend virtuals to them.
#pragma once
#include <cstdint>

#include "metanas/kernels/kernel_types.h"

namespace metanas::kernels::cpu {

// One declaration per MN_KERNEL of the op table, same parameters.
#define MN_KERNEL(name, params, args) void name params;
#include "metanas/kernels/op_table.def"

}  // namespace metanas::kernels::cpu
