// CUDA reductions: sum and sum of squares of a whole array (CUB
// DeviceReduce::TransformReduce, accumulated in double, temporary storage from
// the caching allocator; CUB's reduction is run-to-run deterministic for a
// given size), and column sums of a matrix (bias gradients) with a fixed
// per-column order. Bench: benchmarks/kernel-bench (roofline = copy).
#include <cub/device/device_reduce.cuh>
#include <cuda/std/functional>

#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {
struct ToDouble {
  __host__ __device__ double operator()(float v) const { return static_cast<double>(v); }
};
struct SquareToDouble {
  __host__ __device__ double operator()(float v) const {
    const double d = v;
    return d * d;
  }
};

template <typename Transform>
void transform_reduce(const Context& c, float* out1, const float* x, int64_t n, Transform t) {
  if (n <= 0) {
    MN_CUDA_CHECK(cudaMemsetAsync(out1, 0, sizeof(float), c.stream));
    return;
  }
  size_t temp_bytes = 0;
  MN_CUDA_CHECK(cub::DeviceReduce::TransformReduce(nullptr, temp_bytes, x, out1, n,
                                                    ::cuda::std::plus<double>{}, t, 0.0, c.stream));
  ScratchBuffer temp(*c.alloc, temp_bytes);
  MN_CUDA_CHECK(cub::DeviceReduce::TransformReduce(temp.get(), temp_bytes, x, out1, n,
                                                    ::cuda::std::plus<double>{}, t, 0.0, c.stream));
  MN_CUDA_LAUNCH_CHECK();
}

// Column sums: block (32, 8) covers 32 columns; thread row ty sums rows
// ty, ty + 8, ... in double, then row 0 adds the 8 partials in order.
template <bool Acc>
__global__ void sum_rows_kernel(float* y, const float* x, int64_t rows, int64_t cols) {
  __shared__ double part[8][33];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  double s = 0;
  if (col < cols)
    for (int64_t r = threadIdx.y; r < rows; r += 8) s += x[r * cols + col];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    double t = 0;
#pragma unroll
    for (int k = 0; k < 8; ++k) t += part[k][threadIdx.x];
    y[col] = Acc ? y[col] + static_cast<float>(t) : static_cast<float>(t);
  }
}
}  // namespace

void sum(const Context& c, float* out1, const float* x, int64_t n) { transform_reduce(c, out1, x, n, ToDouble{}); }

void sum_squares(const Context& c, float* out1, const float* x, int64_t n) {
  transform_reduce(c, out1, x, n, SquareToDouble{});
}

void sum_rows(const Context& c, float* y, const float* x, int64_t rows, int64_t cols, bool accumulate) {
  if (cols <= 0) return;
  const dim3 block(32, 8);
  const dim3 grid(static_cast<unsigned>((cols + 31) / 32));
  if (accumulate)
    sum_rows_kernel<true><<<grid, block, 0, c.stream>>>(y, x, rows, cols);
  else
    sum_rows_kernel<false><<<grid, block, 0, c.stream>>>(y, x, rows, cols);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
