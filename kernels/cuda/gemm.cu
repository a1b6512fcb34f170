// Row-major SGEMM on the GPU through cuBLAS (column-major): a row-major
// C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T, so the operands
// are passed swapped. FP32 math (no TF32), so results match the CPU closely;
// cuBLAS is bitwise reproducible run to run on one GPU with a fixed workspace.
#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

void gemm(const Context& c, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  constexpr int64_t kMax = 0x7fffffff;
  MN_KCHECK(M <= kMax && N <= kMax && K <= kMax && lda <= kMax && ldb <= kMax && ldc <= kMax,
           "gemm: dimensions exceed cuBLAS's 32-bit limit (M=", M, " N=", N, " K=", K, ")");
  if (K <= 0 && ldc == N) {
    // C = beta * C; beta == 0 overwrites without reading C (BLAS semantics).
    if (beta == 0.f)
      fill(c, C, 0.f, M * N);
    else
      affine(c, C, C, beta, 0.f, M * N);
    return;
  }
  MN_CUBLAS_CHECK(cublasSgemm(c.cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                              static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha, B,
                              static_cast<int>(ldb), A, static_cast<int>(lda), &beta, C,
                              static_cast<int>(ldc)));
}

}  // namespace metanas::kernels::cuda
