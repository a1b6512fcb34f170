// CUDA batch normalisation over [N, C, HW]: training forward (batch
// statistics + PyTorch running-statistics update with the unbiased variance),
// evaluation forward, and both backwards.
// Per-channel sums are deterministic: each channel's N*HW elements are split
// into a number of chunks fixed by the shape, each chunk is reduced in double
// with cub::BlockReduce, and a finalize kernel adds the chunks in order (no
// atomics). Per-channel coefficients are computed in double as on the CPU and
// applied by plane-parallel kernels (plane_grid.cuh: packed for small planes).
// Bench: benchmarks/kernel-bench (roofline = copy).
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/plane_grid.cuh"

namespace metanas::kernels::cuda {

namespace {

// How many chunks each channel's M = N*HW elements are split into.
int64_t chunks_for(int64_t M) { return std::max<int64_t>(1, std::min<int64_t>(128, (M + 4095) / 4096)); }

// Mode 0: (sum x, sum x^2). Mode 1: (sum dy, sum dy * (x - mean[c])).
// partial[(c*S + s)*2 + {0, 1}] for chunk s = blockIdx.y of channel c = blockIdx.x.
// I: index type (32-bit when every element index fits: cheaper division).
template <int Mode, typename I>
__global__ void __launch_bounds__(kThreads) channel_sums_kernel(const float* __restrict__ x,
                                                                const float* __restrict__ dy,
                                                                const float* __restrict__ mean,
                                                                double* __restrict__ partial, I C, I HW, I M,
                                                                I chunk) {
  const I c = blockIdx.x, s = blockIdx.y, S = gridDim.y;
  const I j0 = s * chunk, j1 = min(M, j0 + chunk);
  const double mu = Mode == 1 ? static_cast<double>(mean[c]) : 0.0;
  double a = 0, b = 0;
  for (I j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
    const I n = j / HW, i = (n * C + c) * HW + (j - n * HW);
    if (Mode == 0) {
      const double v = x[i];
      a += v;
      b += v * v;
    } else {
      const double g = dy[i];
      a += g;
      b += g * (static_cast<double>(x[i]) - mu);
    }
  }
  using BlockReduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const double ta = BlockReduce(temp).Sum(a);
  __syncthreads();
  const double tb = BlockReduce(temp).Sum(b);
  if (threadIdx.x == 0) {
    partial[(static_cast<int64_t>(c) * S + s) * 2] = ta;
    partial[(static_cast<int64_t>(c) * S + s) * 2 + 1] = tb;
  }
}

__device__ __forceinline__ void sum_chunks(const double* partial, int64_t c, int64_t S, double* a, double* b) {
  double ta = 0, tb = 0;
  for (int64_t s = 0; s < S; ++s) {
    ta += partial[(c * S + s) * 2];
    tb += partial[(c * S + s) * 2 + 1];
  }
  *a = ta;
  *b = tb;
}

// Training statistics: mean, invstd, running update; coef[c] = scale, coef[C + c] = shift.
__global__ void train_finalize_kernel(const double* __restrict__ partial, int64_t C, int64_t S, int64_t M,
                                      const float* __restrict__ gamma, const float* __restrict__ beta,
                                      float* __restrict__ mean, float* __restrict__ invstd,
                                      float* __restrict__ running_mean, float* __restrict__ running_var, float eps,
                                      float momentum, float* __restrict__ coef) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sx, sxx;
  sum_chunks(partial, c, S, &sx, &sxx);
  const double mu = M > 0 ? sx / static_cast<double>(M) : 0.0;
  double var = M > 0 ? sxx / static_cast<double>(M) - mu * mu : 0.0;
  var = var > 0.0 ? var : 0.0;
  const double is = 1.0 / sqrt(var + static_cast<double>(eps));
  mean[c] = static_cast<float>(mu);
  invstd[c] = static_cast<float>(is);
  if (running_mean && running_var) {
    const double unbiased = M > 1 ? var * static_cast<double>(M) / static_cast<double>(M - 1) : var;
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
  }
  const double sc = is * (gamma ? gamma[c] : 1.f);
  coef[c] = static_cast<float>(sc);
  coef[C + c] = static_cast<float>((beta ? beta[c] : 0.f) - mu * sc);
}

// Evaluation: coef[c] = gamma / sqrt(running_var + eps), coef[C + c] = beta - running_mean * coef[c].
__global__ void eval_coef_kernel(const float* __restrict__ gamma, const float* __restrict__ beta,
                                 const float* __restrict__ rm, const float* __restrict__ rv, int64_t C, float eps,
                                 float* __restrict__ coef) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double sc = (gamma ? gamma[c] : 1.f) / sqrt(static_cast<double>(rv[c]) + eps);
  coef[c] = static_cast<float>(sc);
  coef[C + c] = static_cast<float>((beta ? beta[c] : 0.f) - rm[c] * sc);
}

// y = x * coef[c] + coef[C + c]
// Per-plane state of the element-wise kernels below: the plane's base and channel.
struct BnPlane {
  int64_t base;
  int c;
};

__global__ void apply_affine_kernel(PlaneGrid pg, const float* __restrict__ x, float* __restrict__ y,
                                    const float* __restrict__ coef, int C, int HW) {
  for_plane_elems(
      pg, HW, [&](int64_t plane) { return BnPlane{plane * HW, static_cast<int>(plane % C)}; },
      [&](const BnPlane& p, int q) { y[p.base + q] = x[p.base + q] * coef[p.c] + coef[C + p.c]; });
}

// Training backward coefficients: k = gamma*invstd, off = sum_dy / M,
// slope = invstd^2 * sum(dy (x - mean)) / M; dgamma/dbeta (+)= when non-null.
__global__ void backward_finalize_kernel(const double* __restrict__ partial, int64_t C, int64_t S, int64_t M,
                                         const float* __restrict__ invstd, const float* __restrict__ gamma,
                                         float* __restrict__ dgamma, float* __restrict__ dbeta, bool accumulate,
                                         float* __restrict__ coef) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sa, sb;
  sum_chunks(partial, c, S, &sa, &sb);
  const double is = invstd[c];
  const double inv_m = M > 0 ? 1.0 / static_cast<double>(M) : 0.0;
  coef[c] = static_cast<float>((gamma ? gamma[c] : 1.f) * is);
  coef[C + c] = static_cast<float>(sa * inv_m);
  coef[2 * C + c] = static_cast<float>(is * is * sb * inv_m);
  if (dgamma) dgamma[c] = static_cast<float>((accumulate ? dgamma[c] : 0.0) + sb * is);
  if (dbeta) dbeta[c] = static_cast<float>((accumulate ? dbeta[c] : 0.0) + sa);
}

template <bool Acc>
__global__ void backward_dx_kernel(const float* __restrict__ dy, const float* __restrict__ x,
                                   const float* __restrict__ mean, const float* __restrict__ coef,
                                   float* __restrict__ dx, PlaneGrid pg, int C, int HW) {
  for_plane_elems(
      pg, HW, [&](int64_t plane) { return BnPlane{plane * HW, static_cast<int>(plane % C)}; },
      [&](const BnPlane& p, int q) {
        const int64_t i = p.base + q;
        const float v = coef[p.c] * (dy[i] - coef[C + p.c] - (x[i] - mean[p.c]) * coef[2 * C + p.c]);
        dx[i] = Acc ? dx[i] + v : v;
      });
}

__global__ void eval_backward_finalize_kernel(const double* __restrict__ partial, int64_t C, int64_t S,
                                              const float* __restrict__ rv, float eps, float* __restrict__ dgamma,
                                              float* __restrict__ dbeta, bool accumulate) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sa, sb;
  sum_chunks(partial, c, S, &sa, &sb);
  const float is = static_cast<float>(1.0 / sqrt(static_cast<double>(rv[c]) + eps));
  if (dgamma) dgamma[c] = static_cast<float>((accumulate ? dgamma[c] : 0.0) + sb * is);
  if (dbeta) dbeta[c] = static_cast<float>((accumulate ? dbeta[c] : 0.0) + sa);
}

template <bool Acc>
__global__ void eval_backward_dx_kernel(const float* __restrict__ dy, const float* __restrict__ gamma,
                                        const float* __restrict__ rv, float eps, float* __restrict__ dx,
                                        PlaneGrid pg, int C, int HW) {
  for_plane_elems(
      pg, HW, [&](int64_t plane) { return BnPlane{plane * HW, static_cast<int>(plane % C)}; },
      [&](const BnPlane& p, int q) {
        const float is = static_cast<float>(1.0 / sqrt(static_cast<double>(rv[p.c]) + eps));
        const float v = (gamma ? gamma[p.c] : 1.f) * is * dy[p.base + q];
        dx[p.base + q] = Acc ? dx[p.base + q] + v : v;
      });
}

// The plane grid of the element-wise passes (packed for small planes), with
// the 32-bit limits their index math assumes.
PlaneGrid bn_planes(int64_t N, int64_t C, int64_t HW) {
  MN_KCHECK(N * C < 0x7fffffffLL && HW < 0x7fffffffLL, "batch_norm (CUDA): ", N, "x", C, " planes of ", HW,
            " elements exceed the 32-bit plane index limit");
  return plane_grid(N * C, HW);
}

unsigned channel_blocks(int64_t C) { return static_cast<unsigned>((C + kThreads - 1) / kThreads); }

// Launches the chunked per-channel sums; returns the chunk count S.
template <int Mode>
int64_t launch_channel_sums(const Context& c, const float* x, const float* dy, const float* mean, double* partial,
                            int64_t N, int64_t C, int64_t HW) {
  const int64_t M = N * HW, S = chunks_for(M), chunk = (M + S - 1) / S;
  MN_KCHECK(C <= 0x7fffffff, "batch norm: too many channels (", C, ")");
  const dim3 grid(static_cast<unsigned>(C), static_cast<unsigned>(S));
  if (N * C * HW + kThreads < 0xffffffffLL)
    channel_sums_kernel<Mode, uint32_t><<<grid, kThreads, 0, c.stream>>>(
        x, dy, mean, partial, static_cast<uint32_t>(C), static_cast<uint32_t>(HW), static_cast<uint32_t>(M),
        static_cast<uint32_t>(chunk));
  else
    channel_sums_kernel<Mode, int64_t><<<grid, kThreads, 0, c.stream>>>(x, dy, mean, partial, C, HW, M, chunk);
  MN_CUDA_LAUNCH_CHECK();
  return S;
}

}  // namespace

namespace {
// Batch statistics (and the running update, the coefficients scale/shift in coef [2C]).
void train_statistics(const Context& c, const float* x, const float* gamma, const float* beta, float* mean,
                      float* invstd, float* running_mean, float* running_var, int64_t N, int64_t C, int64_t HW,
                      float eps, float momentum, float* coef) {
  const int64_t M = N * HW;
  ScratchBuffer partial(*c.alloc, sizeof(double) * 2 * static_cast<size_t>(C * chunks_for(M)));
  const int64_t S = launch_channel_sums<0>(c, x, nullptr, nullptr, partial.as<double>(), N, C, HW);
  train_finalize_kernel<<<channel_blocks(C), kThreads, 0, c.stream>>>(partial.as<double>(), C, S, M, gamma, beta,
                                                                      mean, invstd, running_mean, running_var, eps,
                                                                      momentum, coef);
  MN_CUDA_LAUNCH_CHECK();
}
}  // namespace

void batch_norm_forward_train(const Context& c, const float* x, const float* gamma, const float* beta, float* y,
                              float* mean, float* invstd, float* running_mean, float* running_var, int64_t N,
                              int64_t C, int64_t HW, float eps, float momentum) {
  if (C <= 0) return;
  ScratchBuffer coef(*c.alloc, sizeof(float) * 2 * static_cast<size_t>(C));
  train_statistics(c, x, gamma, beta, mean, invstd, running_mean, running_var, N, C, HW, eps, momentum,
                   coef.as<float>());
  if (N * HW <= 0) return;
  const PlaneGrid pg = bn_planes(N, C, HW);
  apply_affine_kernel<<<pg.grid, kThreads, 0, c.stream>>>(pg, x, y, coef.as<float>(), static_cast<int>(C),
                                                          static_cast<int>(HW));
  MN_CUDA_LAUNCH_CHECK();
}

void batch_norm_statistics(const Context& c, const float* x, float* mean, float* invstd, int64_t N, int64_t C,
                           int64_t HW, float eps) {
  if (C <= 0) return;
  ScratchBuffer coef(*c.alloc, sizeof(float) * 2 * static_cast<size_t>(C));
  train_statistics(c, x, nullptr, nullptr, mean, invstd, nullptr, nullptr, N, C, HW, eps, 0.f, coef.as<float>());
}

void batch_norm_forward_eval(const Context& c, const float* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, float* y, int64_t N, int64_t C,
                             int64_t HW, float eps) {
  if (C <= 0 || N * HW <= 0) return;
  ScratchBuffer coef(*c.alloc, sizeof(float) * 2 * static_cast<size_t>(C));
  eval_coef_kernel<<<channel_blocks(C), kThreads, 0, c.stream>>>(gamma, beta, running_mean, running_var, C, eps,
                                                                 coef.as<float>());
  MN_CUDA_LAUNCH_CHECK();
  const PlaneGrid pg = bn_planes(N, C, HW);
  apply_affine_kernel<<<pg.grid, kThreads, 0, c.stream>>>(pg, x, y, coef.as<float>(), static_cast<int>(C),
                                                          static_cast<int>(HW));
  MN_CUDA_LAUNCH_CHECK();
}

void batch_norm_backward(const Context& c, const float* dy, const float* x, const float* mean, const float* invstd,
                         const float* gamma, float* dx, float* dgamma, float* dbeta, int64_t N, int64_t C,
                         int64_t HW, bool accumulate) {
  if (C <= 0) return;
  const int64_t M = N * HW;
  ScratchBuffer partial(*c.alloc, sizeof(double) * 2 * static_cast<size_t>(C * chunks_for(M)));
  ScratchBuffer coef(*c.alloc, sizeof(float) * 3 * static_cast<size_t>(C));
  const int64_t S = launch_channel_sums<1>(c, x, dy, mean, partial.as<double>(), N, C, HW);
  backward_finalize_kernel<<<channel_blocks(C), kThreads, 0, c.stream>>>(
      partial.as<double>(), C, S, M, invstd, gamma, dgamma, dbeta, accumulate, coef.as<float>());
  MN_CUDA_LAUNCH_CHECK();
  if (!dx || M <= 0) return;
  const PlaneGrid pg = bn_planes(N, C, HW);
  const int Ci = static_cast<int>(C), HWi = static_cast<int>(HW);
  if (accumulate)
    backward_dx_kernel<true><<<pg.grid, kThreads, 0, c.stream>>>(dy, x, mean, coef.as<float>(), dx, pg, Ci, HWi);
  else
    backward_dx_kernel<false><<<pg.grid, kThreads, 0, c.stream>>>(dy, x, mean, coef.as<float>(), dx, pg, Ci, HWi);
  MN_CUDA_LAUNCH_CHECK();
}

void batch_norm_backward_eval(const Context& c, const float* dy, const float* x, const float* gamma,
                              const float* running_mean, const float* running_var, float* dx, float* dgamma,
                              float* dbeta, int64_t N, int64_t C, int64_t HW, float eps, bool accumulate) {
  if (C <= 0) return;
  if (dgamma || dbeta) {
    const int64_t M = N * HW;
    ScratchBuffer partial(*c.alloc, sizeof(double) * 2 * static_cast<size_t>(C * chunks_for(M)));
    const int64_t S = launch_channel_sums<1>(c, x, dy, running_mean, partial.as<double>(), N, C, HW);
    eval_backward_finalize_kernel<<<channel_blocks(C), kThreads, 0, c.stream>>>(partial.as<double>(), C, S,
                                                                                running_var, eps, dgamma, dbeta,
                                                                                accumulate);
    MN_CUDA_LAUNCH_CHECK();
  }
  if (!dx || N * HW <= 0) return;
  const PlaneGrid pg = bn_planes(N, C, HW);
  const int Ci = static_cast<int>(C), HWi = static_cast<int>(HW);
  if (accumulate)
    eval_backward_dx_kernel<true><<<pg.grid, kThreads, 0, c.stream>>>(dy, gamma, running_var, eps, dx, pg, Ci, HWi);
  else
    eval_backward_dx_kernel<false><<<pg.grid, kThreads, 0, c.stream>>>(dy, gamma, running_var, eps, dx, pg, Ci, HWi);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
