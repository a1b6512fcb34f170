// CPU kernels: the arithmetic behind every engine op on the CPU. Signatures
// and semantics are those of the op table (metanas/kernels/op_table.def). Threads: OpenMP; GEMM: OpenBLAS (OpenMP
// build, so it shares our thread pool and runs serially inside our regions).
// One file per op family: elementwise.cpp, gemm.cpp, optim.cpp,
// weighted_sum.cpp, softmax.cpp, conv.cpp, pool.cpp, batch_norm.cpp;
// cpu_backend.cpp forwards the Backend virtuals to them.
//
// ISA variants: each family file is compiled once per instruction set
// (CMakeLists.txt, METANAS_CPU_ISAS) with METANAS_CPU_ISA = baseline | avx2 |
// avx512; its definitions land in the inline namespace cpu::<isa> and, between
// MN_CPU_ISA_BEGIN/END, are compiled for that ISA by a target pragma. The pragma
// (rather than -march on the command line) keeps everything the headers define
// (std::vector, <algorithm>, ...) at the baseline ISA, so the one copy of those
// inline functions the linker keeps cannot be an AVX2 one called on an older CPU.
// cpu_isa.cpp picks one variant's KernelTable at start-up.
#pragma once
#include <cstdint>
#include <string>

#include "metanas/kernels/kernel_types.h"

#ifndef METANAS_CPU_ISA
#define METANAS_CPU_ISA baseline
#define METANAS_CPU_ISA_LEVEL 2
#endif

#if defined(__GNUC__) && !defined(__clang__) && METANAS_CPU_ISA_LEVEL == 3
#define MN_CPU_TARGET_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"arch=x86-64-v3\")")
#define MN_CPU_TARGET_END _Pragma("GCC pop_options")
#elif defined(__GNUC__) && !defined(__clang__) && METANAS_CPU_ISA_LEVEL == 4
#define MN_CPU_TARGET_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"arch=x86-64-v4\")")
#define MN_CPU_TARGET_END _Pragma("GCC pop_options")
#elif METANAS_CPU_ISA_LEVEL == 2
#define MN_CPU_TARGET_BEGIN
#define MN_CPU_TARGET_END
#else
#error "METANAS_CPU_ISA_LEVEL: 2 (baseline) with any compiler, 3 (avx2) and 4 (avx512) with GCC"
#endif

// Open/close the ISA namespace (inside namespace metanas::kernels::cpu).
#define MN_CPU_ISA_BEGIN inline namespace METANAS_CPU_ISA { MN_CPU_TARGET_BEGIN
#define MN_CPU_ISA_END MN_CPU_TARGET_END }

namespace metanas::kernels::cpu {

// One function pointer per MN_KERNEL of the op table, same parameters: what
// the CPU backend calls through.
struct KernelTable {
#define MN_KERNEL(name, params, args) void(*name) params;
#include "metanas/kernels/op_table.def"
#undef MN_KERNEL
};

inline namespace METANAS_CPU_ISA {
// One declaration per MN_KERNEL of the op table, same parameters.
#define MN_KERNEL(name, params, args) void name params;
#include "metanas/kernels/op_table.def"
#undef MN_KERNEL
// This variant's kernels as a table (cpu_isa_table.cpp).
const KernelTable& isa_kernel_table();
}  // namespace METANAS_CPU_ISA

// The table the CPU backend calls now (cpu_isa.cpp: chosen on first use from
// the CPU and METANAS_CPU_ISA). Replacing it is for tests (a spy table that
// counts calls) and set_cpu_isa(); never while kernels run.
const KernelTable& active_kernel_table();
void set_active_kernel_table(const KernelTable* t);

// METANAS_CPU_PROFILE (kernel_profile.cpp): a table that times every kernel
// of `inner` (one process-wide set of counters, printed to stderr at exit),
// and the counters so far as the printed table.
const KernelTable* profiled_kernel_table(const KernelTable* inner);
std::string kernel_profile_report();

// Re-selects OpenBLAS's kernels when its CPU detection fell back to the SSE3
// "Prescott" core on an AVX-512/AVX2 CPU (blas_core.cpp); returns the core in
// use ("" without a DYNAMIC_ARCH OpenBLAS). blas_core_for() is the decision:
// the core to force for a reported one, or nullptr to keep it.
std::string ensure_blas_core();

// Which library runs the convolutions oneDNN is faster on (conv_library.cpp;
// the oneDNN code is the plugin libmetanas_dnnl.so, kernels/cpu/dnnl):
// "dnnl" (oneDNN; only in builds with libdnnl-dev) or "own" (conv.cpp's
// kernels). Chosen on first use from METANAS_CPU_CONV: unset or "auto" is
// dnnl when the plugin loads, else own. set_ ("auto", "own", "dnnl") is for
// tests and embedders, never while kernels run. An unknown name, or "dnnl"
// when the plugin cannot be loaded, throws; cpu_conv_library() says which runs.
void set_cpu_conv_library(const std::string& name);
std::string cpu_conv_library();
bool cpu_conv_library_available(const std::string& name);
// The oneDNN path of conv2d_forward / _backward_data / _backward_weight (same
// arguments): false when it does not take the case (library "own", a shape it
// is slower on, or no oneDNN), and then the caller runs its own kernel.
bool dnnl_conv_forward(const ConvGeom& g, const float* x, const float* w, float* y);
bool dnnl_conv_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                             float* dx, bool accumulate);
bool dnnl_conv_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                               bool accumulate);
const char* blas_core_for(const char* reported, bool avx512, bool avx2_fma);

}  // namespace metanas::kernels::cpu
