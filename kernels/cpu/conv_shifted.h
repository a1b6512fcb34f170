// Stride-1 dense convolutions as shifted GEMMs over a padded plane
// (conv_shifted.cpp: the method and why). conv.cpp asks these first; each
// returns false when it does not take the case, and the caller runs its
// im2col + GEMM or oneDNN path instead.
#pragma once

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {

// Process-wide switch (conv_library.cpp): on unless METANAS_CPU_SHIFTED_CONV=0.
// set_ is for tests and benchmarks (the old path beside the new), never while
// kernels run.
bool shifted_conv_enabled();
void set_shifted_conv_enabled(bool on);
// How many kernel calls the shifted path has taken in this process (tests ask
// which cases it takes, whatever ISA variant runs).
int64_t shifted_conv_calls();
void count_shifted_conv_call();

MN_CPU_ISA_BEGIN

// Whether this build and geometry take the shifted path (groups 1, stride 1,
// padding at most the kernel's reach, bounded scratch; AVX2 builds only).
bool shifted_conv_handles(const ConvGeom& g);
bool shifted_conv_forward(const ConvGeom& g, const float* x, const float* w, float* y);
bool shifted_conv_backward_data(const ConvGeom& g, const float* dy, const float* w, const float* x,
                                float* dx, bool accumulate);
bool shifted_conv_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw,
                                  bool accumulate);

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
