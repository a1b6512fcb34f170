// Hand-written kernel 3: softmax with temperature over the rows of [rows, cols]
// and the classifier's fused log-softmax + NLL (cross-entropy), with their
// backwards; also row argmax and accuracy.
//   softmax : y = exp(x/T - max(x)/T) / sum(...)            dx (+)= y (dy - <dy, y>) / T
//   CE      : probs = softmax(x), loss = mean_r (log sum exp(x_r - m_r) - (x_r[l_r] - m_r))
//             dlogits (+)= dloss / rows * (probs - onehot(l))
// How: a row is owned by a group of G lanes of one warp, G = the next power of
// two >= cols (at most 32), so the length-7 rows of architecture weights and
// the pair-weight rows of length 1..6 pack 4..32 rows per warp instead of
// wasting a warp per row. Max and sums are group shuffles (fixed butterfly
// order); sums are taken in double like the CPU kernels. The mean loss over
// rows is a second single-block pass over per-row losses in row order: no
// atomics, bitwise reproducible. Out-of-range labels give a NaN loss and no
// one-hot term (as on the CPU; the op layer validates labels).
// Bench: build/bin/kernel-bench --only softmax (compares with cuDNN softmax).
#include <cub/block/block_reduce.cuh>

#include <cmath>

#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {

template <int G, typename T>
__device__ __forceinline__ T group_sum(T v) {
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o, G);
  return v;
}
template <int G>
__device__ __forceinline__ float group_max(float v) {
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o, G));
  return v;
}

// Thread -> (row, lane within the row's group). Every lane of the warp stays
// alive to the end (shuffles need the full mask); `active` guards memory.
template <int G>
struct RowLane {
  int64_t row;
  int lane;
  __device__ RowLane() {
    const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    row = t / G;
    lane = static_cast<int>(t % G);
  }
};

template <int G>
__global__ void softmax_forward_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t rows,
                                       int64_t cols, float inv_t) {
  const RowLane<G> rl;
  const bool active = rl.row < rows;
  const float* xr = x + (active ? rl.row : 0) * cols;
  float m = -INFINITY;
  if (active)
    for (int64_t c = rl.lane; c < cols; c += G) m = fmaxf(m, xr[c]);
  m = group_max<G>(m) * inv_t;  // inv_t > 0 (the op rejects T <= 0)
  double s = 0;
  if (active)
    for (int64_t c = rl.lane; c < cols; c += G) s += static_cast<double>(expf(xr[c] * inv_t - m));
  s = group_sum<G>(s);
  if (!active) return;
  const float inv = static_cast<float>(1.0 / s);
  float* yr = y + rl.row * cols;
  for (int64_t c = rl.lane; c < cols; c += G) yr[c] = expf(xr[c] * inv_t - m) * inv;
}

template <int G, bool Acc>
__global__ void softmax_backward_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                        const float* __restrict__ y, int64_t rows, int64_t cols, float inv_t) {
  const RowLane<G> rl;
  const bool active = rl.row < rows;
  const int64_t off = (active ? rl.row : 0) * cols;
  double dot = 0;
  if (active)
    for (int64_t c = rl.lane; c < cols; c += G) dot += static_cast<double>(dy[off + c]) * y[off + c];
  dot = group_sum<G>(dot);
  if (!active) return;
  const float fd = static_cast<float>(dot);
  for (int64_t c = rl.lane; c < cols; c += G) {
    const float v = inv_t * y[off + c] * (dy[off + c] - fd);
    dx[off + c] = Acc ? dx[off + c] + v : v;
  }
}

// probs and the per-row loss (double) in one pass over the logits.
template <int G>
__global__ void ce_forward_kernel(double* __restrict__ row_loss, float* __restrict__ probs,
                                  const float* __restrict__ logits, const int32_t* __restrict__ labels,
                                  int64_t rows, int64_t cols) {
  const RowLane<G> rl;
  const bool active = rl.row < rows;
  const float* xr = logits + (active ? rl.row : 0) * cols;
  float m = -INFINITY;
  if (active)
    for (int64_t c = rl.lane; c < cols; c += G) m = fmaxf(m, xr[c]);
  m = group_max<G>(m);
  double s = 0;
  if (active)
    for (int64_t c = rl.lane; c < cols; c += G) s += static_cast<double>(expf(xr[c] - m));
  s = group_sum<G>(s);
  if (!active) return;
  const float inv = static_cast<float>(1.0 / s);
  float* pr = probs + rl.row * cols;
  for (int64_t c = rl.lane; c < cols; c += G) pr[c] = expf(xr[c] - m) * inv;
  if (rl.lane == 0) {
    const int32_t l = labels[rl.row];
    row_loss[rl.row] = (l >= 0 && l < cols) ? log(s) - (static_cast<double>(xr[l]) - m) : nan("");
  }
}

// loss1[0] = sum_r row_loss[r] / rows, one block, fixed order.
__global__ void __launch_bounds__(kThreads) mean_kernel(float* loss1, const double* row_loss, int64_t rows) {
  double s = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) s += row_loss[r];
  using BlockReduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const double t = BlockReduce(temp).Sum(s);
  if (threadIdx.x == 0) loss1[0] = static_cast<float>(t / static_cast<double>(rows));
}

template <bool Acc>
__global__ void ce_backward_kernel(float* __restrict__ dlogits, const float* __restrict__ dloss1,
                                   const float* __restrict__ probs, const int32_t* __restrict__ labels,
                                   int64_t rows, int64_t cols) {
  const float scale = dloss1[0] / static_cast<float>(rows);
  MN_GRID_STRIDE(i, rows * cols) {
    const int64_t r = i / cols, col = i - r * cols;
    float v = scale * probs[i];
    if (labels[r] == col) v -= scale;  // an out-of-range label never matches
    dlogits[i] = Acc ? dlogits[i] + v : v;
  }
}

// First max wins ties: (value, index) pairs combine to the larger value, then
// the smaller index.
template <int G>
__global__ void argmax_kernel(int32_t* __restrict__ idx, const float* __restrict__ x, int64_t rows, int64_t cols) {
  const RowLane<G> rl;
  const bool active = rl.row < rows;
  const float* xr = x + (active ? rl.row : 0) * cols;
  const int none = static_cast<int>(cols);  // "no column yet": loses every comparison below
  float bv = -INFINITY;
  int bi = none;
  if (active)
    for (int c = rl.lane; c < none; c += G) {
      const float v = xr[c];
      if (bi == none || v > bv) {
        bv = v;
        bi = c;
      }
    }
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o, G);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o, G);
    if (oi != none && (bi == none || ov > bv || (ov == bv && oi < bi))) {
      bv = ov;
      bi = oi;
    }
  }
  if (active && rl.lane == 0) idx[rl.row] = bi == none ? -1 : bi;
}

__global__ void __launch_bounds__(kThreads) accuracy_kernel(float* out1, const int32_t* idx, const int32_t* labels,
                                                            int64_t rows) {
  long long n = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) n += idx[r] == labels[r];
  using BlockReduce = cub::BlockReduce<long long, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const long long t = BlockReduce(temp).Sum(n);
  if (threadIdx.x == 0) out1[0] = static_cast<float>(static_cast<double>(t) / static_cast<double>(rows));
}

__global__ void set_nan_kernel(float* p) { p[0] = nanf(""); }

// Calls f(std::integral_constant<int, G>) with G = next power of two >= cols, capped at 32.
template <typename F>
void with_group(int64_t cols, F f) {
  if (cols <= 1) f(std::integral_constant<int, 1>{});
  else if (cols <= 2) f(std::integral_constant<int, 2>{});
  else if (cols <= 4) f(std::integral_constant<int, 4>{});
  else if (cols <= 8) f(std::integral_constant<int, 8>{});
  else if (cols <= 16) f(std::integral_constant<int, 16>{});
  else f(std::integral_constant<int, 32>{});
}

unsigned row_blocks(int64_t rows, int G) {
  const int64_t threads = rows * G;
  return static_cast<unsigned>((threads + kThreads - 1) / kThreads);
}
}  // namespace

void softmax_forward(const Context& c, float* y, const float* x, int64_t rows, int64_t cols, float inv_t) {
  if (rows <= 0 || cols <= 0) return;
  with_group(cols, [&](auto g) {
    constexpr int G = decltype(g)::value;
    softmax_forward_kernel<G><<<row_blocks(rows, G), kThreads, 0, c.stream>>>(y, x, rows, cols, inv_t);
  });
  MN_CUDA_LAUNCH_CHECK();
}

void softmax_backward(const Context& c, float* dx, const float* dy, const float* y, int64_t rows, int64_t cols,
                      float inv_t, bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  with_group(cols, [&](auto g) {
    constexpr int G = decltype(g)::value;
    if (accumulate)
      softmax_backward_kernel<G, true><<<row_blocks(rows, G), kThreads, 0, c.stream>>>(dx, dy, y, rows, cols, inv_t);
    else
      softmax_backward_kernel<G, false><<<row_blocks(rows, G), kThreads, 0, c.stream>>>(dx, dy, y, rows, cols, inv_t);
  });
  MN_CUDA_LAUNCH_CHECK();
}

void cross_entropy_forward(const Context& c, float* loss1, float* probs, const float* logits, const int32_t* labels,
                           int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) {
    set_nan_kernel<<<1, 1, 0, c.stream>>>(loss1);
    MN_CUDA_LAUNCH_CHECK();
    return;
  }
  ScratchBuffer row_loss(*c.alloc, sizeof(double) * static_cast<size_t>(rows));
  with_group(cols, [&](auto g) {
    constexpr int G = decltype(g)::value;
    ce_forward_kernel<G><<<row_blocks(rows, G), kThreads, 0, c.stream>>>(row_loss.as<double>(), probs, logits, labels,
                                                                          rows, cols);
  });
  MN_CUDA_LAUNCH_CHECK();
  mean_kernel<<<1, kThreads, 0, c.stream>>>(loss1, row_loss.as<double>(), rows);
  MN_CUDA_LAUNCH_CHECK();
}

void cross_entropy_backward(const Context& c, float* dlogits, const float* dloss1, const float* probs,
                            const int32_t* labels, int64_t rows, int64_t cols, bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  if (accumulate)
    ce_backward_kernel<true><<<grid_for(c, rows * cols), kThreads, 0, c.stream>>>(dlogits, dloss1, probs, labels, rows,
                                                                                  cols);
  else
    ce_backward_kernel<false><<<grid_for(c, rows * cols), kThreads, 0, c.stream>>>(dlogits, dloss1, probs, labels,
                                                                                   rows, cols);
  MN_CUDA_LAUNCH_CHECK();
}

void argmax_rows(const Context& c, int32_t* idx, const float* x, int64_t rows, int64_t cols) {
  if (rows <= 0) return;
  if (cols <= 0) {
    fill_i32(c, idx, -1, rows);
    return;
  }
  MN_KCHECK(cols < 0x7fffffff, "argmax: ", cols, " columns exceed the 32-bit index range");
  with_group(cols, [&](auto g) {
    constexpr int G = decltype(g)::value;
    argmax_kernel<G><<<row_blocks(rows, G), kThreads, 0, c.stream>>>(idx, x, rows, cols);
  });
  MN_CUDA_LAUNCH_CHECK();
}

void accuracy(const Context& c, float* out1, const float* logits, const int32_t* labels, int64_t rows, int64_t cols) {
  if (rows <= 0) {
    fill(c, out1, 0.f, 1);
    return;
  }
  ScratchBuffer idx(*c.alloc, sizeof(int32_t) * static_cast<size_t>(rows));
  argmax_rows(c, idx.as<int32_t>(), logits, rows, cols);
  accuracy_kernel<<<1, kThreads, 0, c.stream>>>(out1, idx.as<int32_t>(), labels, rows);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace metanas::kernels::cuda
