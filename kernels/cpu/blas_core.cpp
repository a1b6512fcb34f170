// OpenBLAS core selection. A DYNAMIC_ARCH OpenBLAS (Debian's) picks its
// kernels from the CPU model at load time and falls back to the SSE3
// "Prescott" kernels on models it does not know: 0.3.21 does not know
// Emerald/Sapphire Rapids (family 6, model 207 on the development machine),
// where that made every GEMM ~6x slower than the AVX-512 kernels (measured:
// sgemm 1024^3, docs/results.md "CPU speed"). When the library reports
// Prescott on a CPU with AVX-512 (or AVX2+FMA) and the user has not chosen a
// core (OPENBLAS_CORETYPE), we re-run OpenBLAS's own selection with
// OPENBLAS_CORETYPE=SkylakeX (or Haswell). The OpenBLAS entry points are weak:
// with another BLAS, or a build without DYNAMIC_ARCH, this does nothing.
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/cpu_kernels.h"

extern "C" {
char* openblas_get_corename(void) __attribute__((weak));
void gotoblas_dynamic_init(void) __attribute__((weak));
extern void* gotoblas __attribute__((weak));  // the selected kernel table (dynamic.c)
}

namespace metanas::kernels::cpu {

const char* blas_core_for(const char* reported, bool avx512, bool avx2_fma) {
  if (!reported || std::strcmp(reported, "Prescott") != 0) return nullptr;
  if (avx512) return "SkylakeX";
  if (avx2_fma) return "Haswell";
  return nullptr;
}

std::string ensure_blas_core() {
  if (!openblas_get_corename || !gotoblas_dynamic_init || !&gotoblas) return "";
  const std::string before = openblas_get_corename();
  if (std::getenv("OPENBLAS_CORETYPE")) return before;  // the user's choice
  __builtin_cpu_init();
  const char* want = blas_core_for(before.c_str(), __builtin_cpu_supports("avx512f") != 0,
                                   __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
  if (!want) return before;
  // gotoblas_dynamic_init() returns early once a table is set; it reads the
  // variable, selects the table and runs its init (blocking parameters).
  setenv("OPENBLAS_CORETYPE", want, 0);
  gotoblas = nullptr;
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
  return openblas_get_corename();
}

}  // namespace metanas::kernels::cpu
