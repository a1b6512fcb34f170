// CUDA batch normalisation over [N, C, HW]: training forward (batch
// statistics + PyTorch running-statistics update with the unbiased variance),
// evaluation forward, and both backwards.
// Per-channel sums are deterministic: each channel's N*HW elements are split
// into a number of chunks fixed by the shape, each chunk is reduced in double
// with cub::BlockReduce, and a finalize kernel adds the chunks in order (no
// atomics). Per-channel coefficients are computed in double as on the CPU and
// applied by a plane-parallel kernel (grid.x = N*C planes).
// Bench: benchmarks/kernel-bench (roofline = copy).
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {

// How many chunks each channel's M = N*HW elements are split into.
int64_t chunks_for(int64_t M) { return std::max<int64_t>(1, std::min<int64_t>(128, (M + 4095) / 4096)); }

dim3 plane_grid(int64_t planes, int64_t plane_elems) {
  const int64_t tiles = std::min<int64_t>((plane_elems + kThreads - 1) / kThreads, 65535);
  return dim3(static_cast<unsigned>(planes), static_cast<unsigned>(std::max<int64_t>(tiles, 1)));
}

#define MN_PLANE_LOOP(q, count)                                                                  \
  for (int64_t q = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; q < (count); \
       q += static_cast<int64_t>(gridDim.y) * blockDim.x)

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
__global__ void apply_affine_kernel(const float* __restrict__ x, float* __restrict__ y,
                                    const float* __restrict__ coef, int64_t C, int64_t HW) {
  const int64_t plane = blockIdx.x, c = plane % C;
  const float a = coef[c], b = coef[C + c];
  const float* xp = x + plane * HW;
  float* yp = y + plane * HW;
  MN_PLANE_LOOP(q, HW) yp[q] = xp[q] * a + b;
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
                                   float* __restrict__ dx, int64_t C, int64_t HW) {
  const int64_t plane = blockIdx.x, c = plane % C;
  const float k = coef[c], off = coef[C + c], slope = coef[2 * C + c], mu = mean[c];
  const int64_t base = plane * HW;
  MN_PLANE_LOOP(q, HW) {
    const float v = k * (dy[base + q] - off - (x[base + q] - mu) * slope);
    dx[base + q] = Acc ? dx[base + q] + v : v;
  }
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
                                        const float* __restrict__ rv, float eps, float* __restrict__ dx, int64_t C,
                                        int64_t HW) {
  const int64_t plane = blockIdx.x, c = plane % C;
  const float is = static_cast<float>(1.0 / sqrt(static_cast<double>(rv[c]) + eps));
  const float k = (gamma ? gamma[c] : 1.f) * is;
  const int64_t base = plane * HW;
  MN_PLANE_LOOP(q, HW) {
    const float v = k * dy[base + q];
    dx[base + q] = Acc ? dx[base + q] + v : v;
  }
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

void batch_norm_forward_train(const Context& c, const float* x, const float* gamma, const float* beta, float* y,
                              float* mean, float* invstd, float* running_mean, float* running_var, int64_t N,
                              int64_t C, int64_t HW, float eps, float momentum) {
  if (C <= 0) return;
  const int64_t M = N * HW;
  ScratchBuffer partial(*c.alloc, sizeof(double) * 2 * static_cast<size_t>(C * chunks_for(M)));
  ScratchBuffer coef(*c.alloc, sizeof(float) * 2 * static_cast<size_t>(C));
  const int64_t S = launch_channel_sums<0>(c, x, nullptr, nullptr, partial.as<double>(), N, C, HW);
  train_finalize_kernel<<<channel_blocks(C), kThreads, 0, c.stream>>>(partial.as<double>(), C, S, M, gamma, beta,
                                                                      mean, invstd, running_mean, running_var, eps,
                                                                      momentum, coef.as<float>());
  MN_CUDA_LAUNCH_CHECK();
  if (M <= 0) return;
  apply_affine_kernel<<<plane_grid(N * C, HW), kThreads, 0, c.stream>>>(x, y, coef.as<float>(), C, HW);
  MN_CUDA_LAUNCH_CHECK();
}

void batch_norm_forward_eval(const Context& c, const float* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, float* y, int64_t N, int64_t C,
                             int64_t HW, float eps) {
  if (C <= 0 || N * HW <= 0) return;
  ScratchBuffer coef(*c.alloc, sizeof(float) * 2 * static_cast<size_t>(C));
  eval_coef_kernel<<<channel_blocks(C), kThreads, 0, c.stream>>>(gamma, beta, running_mean, running_var, C, eps,
                                                                 coef.as<float>());
  MN_CUDA_LAUNCH_CHECK();
  apply_affine_kernel<<<plane_grid(N * C, HW), kThreads, 0, c.stream>>>(x, y, coef.as<float>(), C, HW);
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
  if (accumulate)
    backward_dx_kernel<true><<<plane_grid(N * C, HW), kThreads, 0, c.stream>>>(dy, x, mean, coef.as<float>(), dx, C,
                                                                               HW);
  else
    backward_dx_kernel<false><<<plane_grid(N * C, HW), kThreads, 0, c.stream>>>(dy, x, mean, coef.as<float>(), dx,
                                                                                C, HW);
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
  if (accumulate)
    eval_backward_dx_kernel<true><<<plane_grid(N * C, HW), kThreads, 0, c.stream>>>(dy, gamma, running_var, eps, dx,
                                                                                    C, HW);
  else
    eval_backward_dx_kernel<false><<<plane_grid(N * C, HW), kThreads, 0, c.stream>>>(dy, gamma, running_var, eps,
                                                                                     dx, C, HW);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
