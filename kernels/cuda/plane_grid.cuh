// Launch geometry for kernels that work plane by plane (the (n, c) planes of
// an NCHW tensor, or the rows of a matrix): a plane's base pointers are
// computed once, its elements are addressed with 32-bit indices.
//
// Large planes: grid (planes, tiles), each block row strides over one plane.
// Small planes (at most kPackMax = 128 elements: 7x7, 8x8, 10x10; a 14x14
// plane already fills 196 of 256 lanes): a block per plane
// would leave most of its 256 lanes idle, so one block packs 256 / L planes of
// L lanes each (L = the next power of two >= the plane size), mapped with
// shifts and masks rather than divisions. plane_slot() is the packed mapping,
// host-callable so tests/cuda/kernel_math_test.cpp checks that it covers every
// (plane, element) exactly once. The mapping part compiles as plain C++.
#pragma once
#include <algorithm>
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_runtime.h>
#define MN_PG_HD __host__ __device__ __forceinline__
#else
#define MN_PG_HD inline
#endif

namespace metanas::kernels::cuda {

constexpr int kPlaneThreads = 256;  // = kThreads of cuda_common.cuh
constexpr int kPlaneThreadsLog2 = 8;
constexpr int kPackMax = kPlaneThreads / 2;

// log2 of the lanes a small plane gets when packed; -1: tile it instead.
inline int plane_pack_shift(int64_t plane_elems) {
  if (plane_elems > kPackMax) return -1;
  int shift = 0;
  while ((int64_t{1} << shift) < plane_elems) ++shift;
  return shift;
}

// Blocks of a packed grid.
inline int64_t packed_blocks(int64_t planes, int lane_shift) {
  const int64_t per_block = int64_t{1} << (kPlaneThreadsLog2 - lane_shift);
  return (planes + per_block - 1) / per_block;
}

// Packed mapping of (block, thread) to (plane, element); false for a lane
// beyond the last plane or the plane's size.
MN_PG_HD bool plane_slot(int lane_shift, int64_t planes, int count, unsigned block, unsigned thread, int64_t* plane,
                         int* q) {
  *plane = (static_cast<int64_t>(block) << (kPlaneThreadsLog2 - lane_shift)) + (thread >> lane_shift);
  *q = static_cast<int>(thread & ((1u << lane_shift) - 1u));
  return *plane < planes && *q < count;
}

#ifdef __CUDACC__
struct PlaneGrid {
  dim3 grid;
  int lane_shift = -1;  // log2(lanes per plane) when packed, -1 when tiled
  int64_t planes = 0;
};

// The tiled grid alone: (planes, tiles of kPlaneThreads), for kernels that
// keep one block row per plane (shared-memory tiles, per-channel partials).
inline dim3 plane_tiles(int64_t planes, int64_t plane_elems) {
  const int64_t tiles = std::min<int64_t>((plane_elems + kPlaneThreads - 1) / kPlaneThreads, 65535);
  return dim3(static_cast<unsigned>(planes), static_cast<unsigned>(std::max<int64_t>(tiles, 1)));
}

inline PlaneGrid plane_grid(int64_t planes, int64_t plane_elems) {
  PlaneGrid pg;
  pg.planes = planes;
  pg.lane_shift = plane_pack_shift(plane_elems);
  if (pg.lane_shift >= 0) {
    pg.grid = dim3(static_cast<unsigned>(packed_blocks(planes, pg.lane_shift)));
    return pg;
  }
  pg.grid = plane_tiles(planes, plane_elems);
  return pg;
}

// Runs body(state, q) for every element q < count of the planes this thread
// owns, with state = setup(plane) evaluated once per plane.
template <typename Setup, typename Body>
__device__ __forceinline__ void for_plane_elems(const PlaneGrid& pg, int count, Setup setup, Body body) {
  if (pg.lane_shift >= 0) {
    int64_t plane;
    int q;
    if (plane_slot(pg.lane_shift, pg.planes, count, blockIdx.x, threadIdx.x, &plane, &q)) body(setup(plane), q);
    return;
  }
  const auto state = setup(static_cast<int64_t>(blockIdx.x));
  for (int q = static_cast<int>(blockIdx.y * blockDim.x + threadIdx.x); q < count;
       q += static_cast<int>(gridDim.y * blockDim.x))
    body(state, q);
}
#endif  // __CUDACC__

}  // namespace metanas::kernels::cuda
