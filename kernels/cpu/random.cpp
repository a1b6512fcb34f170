// CPU random kernels: drop-path row scales from the counter-based Philox
// stream (metanas/kernels/philox.h), element i a pure function of (key, i),
// so the result is independent of the thread count and bit-identical to the
// CUDA kernel (kernels/cuda/random.cu), which calls the same function.
#include "kernels/cpu/cpu_kernels.h"
#include "metanas/kernels/philox.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

void drop_path_scales(const PhiloxKey& key, float p, float* scale, int64_t n) {
  MN_KCHECK(n <= int64_t{0xffffffff}, "drop_path_scales: ", n, " rows exceed the 32-bit Philox counter");
  for (int64_t i = 0; i < n; ++i) scale[i] = drop_path_scale(key, p, static_cast<uint32_t>(i));
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
