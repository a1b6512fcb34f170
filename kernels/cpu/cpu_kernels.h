// CPU kernels: the arithmetic behind every engine op on the CPU. Signatures
// and semantics are those of the op table (metanas/kernels/op_table.def). Threads: OpenMP; GEMM: OpenBLAS (OpenMP
// build, so it shares our thread pool and runs serially inside our regions).
// One file per op family: elementwise.cpp, gemm.cpp, optim.cpp,
// weighted_sum.cpp, softmax.cpp, conv.cpp, pool.cpp, batch_norm.cpp;
// cpu_backend.cpp forwards the Backend virtuals to them.
#pragma once
#include <cstdint>
#include <string>

#include "metanas/kernels/kernel_types.h"

namespace metanas::kernels::cpu {

// One declaration per MN_KERNEL of the op table, same parameters.
#define MN_KERNEL(name, params, args) void name params;
#include "metanas/kernels/op_table.def"

// Re-selects OpenBLAS's kernels when its CPU detection fell back to the SSE3
// "Prescott" core on an AVX-512/AVX2 CPU (blas_core.cpp); returns the core in
// use ("" without a DYNAMIC_ARCH OpenBLAS). blas_core_for() is the decision:
// the core to force for a reported one, or nullptr to keep it.
std::string ensure_blas_core();
const char* blas_core_for(const char* reported, bool avx512, bool avx2_fma);

}  // namespace metanas::kernels::cpu
