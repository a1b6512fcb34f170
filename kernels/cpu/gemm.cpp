// Row-major SGEMM through OpenBLAS (cblas). Bench: benchmarks/engine-bench.
#include <cblas.h>

#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C,
              static_cast<blasint>(ldc));
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
