// CUDA random kernels: drop-path row scales, one thread per row, from the
// counter-based Philox stream (metanas/kernels/philox.h) that the CPU kernel
// (kernels/cpu/random.cpp, the reference) also calls: same key, same bits,
// and no mask is drawn on the host or uploaded.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/step_state.h"
#include "metanas/kernels/philox.h"

namespace metanas::kernels::cuda {

namespace {

__global__ void drop_path_scales_kernel(PhiloxKey key, float p, float* __restrict__ scale, int64_t n) {
  MN_GRID_STRIDE(i, n) scale[i] = drop_path_scale(key, p, static_cast<uint32_t>(i));
}

// The key's seed and task from device words (a graph replay reads the
// current task's), step and op from the host.
__global__ void drop_path_scales_at_kernel(const int32_t* __restrict__ key3, uint32_t step, uint32_t op, float p,
                                           float* __restrict__ scale, int64_t n) {
  const PhiloxKey key = philox_key_from_words(key3, step, op);
  MN_GRID_STRIDE(i, n) scale[i] = drop_path_scale(key, p, static_cast<uint32_t>(i));
}

}  // namespace

void drop_path_scales_at(const Context& c, const int32_t* key3, uint32_t step, uint32_t op, float p, float* scale,
                         int64_t n) {
  if (n <= 0) return;
  MN_KCHECK(n <= int64_t{0xffffffff}, "drop_path_scales: ", n, " rows exceed the 32-bit Philox counter");
  drop_path_scales_at_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(key3, step, op, p, scale, n);
  MN_CUDA_LAUNCH_CHECK();
}

void drop_path_scales(const Context& c, const PhiloxKey& key, float p, float* scale, int64_t n) {
  if (n <= 0) return;
  MN_KCHECK(n <= int64_t{0xffffffff}, "drop_path_scales: ", n, " rows exceed the 32-bit Philox counter");
  drop_path_scales_kernel<<<grid_for(c, n), kThreads, 0, c.stream>>>(key, p, scale, n);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
