// OpenBLAS core re-selection (kernels/cpu/blas_core.cpp): the decision, that
// the engine does not run OpenBLAS's SSE3 fallback on an AVX-512/AVX2 CPU,
// and a BLAS-sized GEMM through the selected kernels against a double reference.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/tensor.h"

using namespace metanas;
namespace k = metanas::kernels::cpu;

TEST_CASE("blas core: Prescott fallback is replaced on AVX-512 / AVX2 CPUs only", "[engine][blas]") {
  CHECK(std::string(k::blas_core_for("Prescott", true, true)) == "SkylakeX");
  CHECK(std::string(k::blas_core_for("Prescott", false, true)) == "Haswell");
  CHECK(k::blas_core_for("Prescott", false, false) == nullptr);
  CHECK(k::blas_core_for("Haswell", true, true) == nullptr);
  CHECK(k::blas_core_for("SkylakeX", true, true) == nullptr);
  CHECK(k::blas_core_for(nullptr, true, true) == nullptr);
}

TEST_CASE("blas core: the engine's GEMM kernels are not the SSE3 fallback where the CPU has more",
          "[engine][blas]") {
  (void)Tensor::zeros(Shape{1}, DType::F32, Device::CPU);  // instantiates the CPU backend
  const std::string core = k::ensure_blas_core();
  if (core.empty()) SUCCEED("not a DYNAMIC_ARCH OpenBLAS: nothing to select");
  __builtin_cpu_init();
  const bool wide = __builtin_cpu_supports("avx512f") ||
                    (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
  if (!core.empty() && wide && !std::getenv("OPENBLAS_CORETYPE")) CHECK(core != "Prescott");

  // A GEMM large enough for OpenBLAS's blocked kernels, against double.
  const int64_t M = 131, N = 257, K = 190;
  std::vector<float> A(M * K), B(K * N), C(M * N, 1.f);
  for (int64_t i = 0; i < M * K; ++i) A[i] = std::sin(0.37f * i);
  for (int64_t i = 0; i < K * N; ++i) B[i] = std::cos(0.11f * i);
  k::gemm(false, false, M, N, K, 0.5f, A.data(), K, B.data(), N, 2.f, C.data(), N);
  double worst = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t q = 0; q < K; ++q) s += static_cast<double>(A[m * K + q]) * B[q * N + n];
      worst = std::max(worst, std::abs(0.5 * s + 2.0 - C[m * N + n]));
    }
  CHECK(worst < 1e-3);
}
