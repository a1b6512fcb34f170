// Shared device helpers for the CUDA kernels: launch sizing, warp and block
// reductions with a fixed combination order (bitwise reproducible run to run).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"

namespace metanas::kernels::cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the GPU
// several times over, never more than the work needs.
inline unsigned grid_for(const Context& c, int64_t n, int threads = kThreads) {
  const int64_t need = (n + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(c.sm_count) * 16;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(need, cap)));
}

// Grid-stride loop helper.
#define MN_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); the result
// is valid in every thread. `shared` needs 32 slots. Fixed order: warp
// butterflies, then warp 0 combines the warp sums.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  const int nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // protect `shared` from a previous use
  if (lane == 0) shared[wid] = v;
  __syncthreads();
  T t = lane < nw ? shared[lane] : T(0);
  t = warp_sum(t);
  return t;
}

}  // namespace metanas::kernels::cuda
