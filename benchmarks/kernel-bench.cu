// kernel-bench: times the hand-written CUDA kernels against the best library
// alternative, on the MetaNAS Omniglot shapes (N=20, C=28 at 28x28, 14x14,
// 7x7), the MiniImageNet shapes (84x84, 42x42, 21x21) and one large shape that
// fills the GPU (64 x 256 x 56 x 56).
//   weighted_sum : fused mixed op (forward; backward with every dx_k and dw)
//                  vs the unfused chain (K axpy kernels; K scale kernels + K cublasSdot).
//   depthwise    : ReLU-fused depthwise conv (3x3, 3x3 dil 2, 5x5, 1x5, 5x1; stride 1 and 2;
//                  forward, backward-data, backward-weight) vs cuDNN's grouped convolution
//                  (fastest algorithm by cudnnFind, any determinism, ReLU as a separate kernel).
//   softmax      : softmax with temperature on rows of 7 (architecture weights) and on
//                  classifier logits, forward/backward, and the fused cross-entropy, vs cuDNN
//                  softmax (+ the temperature scale / NLL kernels it needs).
//   conv         : the library paths of the conv dispatcher (cuBLAS for 1x1, cuDNN with
//                  deterministic heuristic algorithms for dense) vs cuDNN's fastest algorithm.
// Each timing is the median over --reps runs (CUDA events around each run, after
// --warmup runs); inputs rotate through enough copies that the working set
// exceeds twice the L2 cache, so L2 does not flatter small shapes. Achieved
// GB/s counts each tensor read or written once (the minimum traffic); the
// roofline reference is the measured device-to-device cudaMemcpy bandwidth
// (bytes read + written). Usage:
//   kernel-bench [--only weighted_sum|depthwise|softmax|conv] [--reps N] [--warmup N]
//                [--quick] [--json FILE]
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "metanas/engine/extension.h"
#include "metanas/engine/device.h"
#include "metanas/engine/error.h"

namespace kc = metanas::kernels::cuda;
using metanas::ConvGeom;

namespace {

struct Options {
  std::string only, json;
  int reps = 200, warmup = 20;
  bool quick = false;
};

struct Record {
  std::string kernel, variant, shape, baseline;
  double ours_us = 0, base_us = 0, bytes = 0, flops = 0;
};

double g_copy_gbps = 0;
size_t g_l2 = 50u << 20;
std::vector<Record> g_records;

// ---- device buffers ----
struct DevBuf {
  float* p = nullptr;
  size_t n = 0;
  DevBuf() = default;
  explicit DevBuf(size_t count) : n(count) {
    if (n) MN_CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
  }
  ~DevBuf() {
    if (p) cudaFree(p);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

__global__ void init_kernel(float* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = scale * (static_cast<float>(h & 0xffffff) / 16777216.f - 0.5f);
  }
}

std::unique_ptr<DevBuf> make_buf(size_t n, uint32_t seed, float scale = 2.f) {
  auto b = std::make_unique<DevBuf>(n);
  if (n) {
    init_kernel<<<1024, 256>>>(b->p, n, seed, scale);
    MN_CUDA_LAUNCH_CHECK();
  }
  return b;
}

// How many copies of a working set of `bytes` to rotate through.
int rotation(size_t bytes) {
  if (bytes == 0) return 1;
  const size_t want = (2 * g_l2 + bytes - 1) / bytes + 1;
  return static_cast<int>(std::min<size_t>(std::max<size_t>(want, 1), 64));
}

// Median milliseconds of fn(i) over reps runs (after warmup), each run timed by events.
double median_ms(const Options& o, cudaStream_t s, const std::function<void(int)>& fn) {
  MN_CUDA_CHECK(cudaDeviceSynchronize());  // inputs were initialised on the default stream
  for (int i = 0; i < o.warmup; ++i) fn(i);
  std::vector<cudaEvent_t> ev(2 * static_cast<size_t>(o.reps));
  for (auto& e : ev) MN_CUDA_CHECK(cudaEventCreate(&e));
  for (int i = 0; i < o.reps; ++i) {
    MN_CUDA_CHECK(cudaEventRecord(ev[2 * i], s));
    fn(o.warmup + i);
    MN_CUDA_CHECK(cudaEventRecord(ev[2 * i + 1], s));
  }
  MN_CUDA_CHECK(cudaStreamSynchronize(s));
  std::vector<float> t(static_cast<size_t>(o.reps));
  for (int i = 0; i < o.reps; ++i) MN_CUDA_CHECK(cudaEventElapsedTime(&t[i], ev[2 * i], ev[2 * i + 1]));
  for (auto& e : ev) cudaEventDestroy(e);
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

void report(const Record& r) {
  const double gbps = r.bytes / (r.ours_us * 1e3);
  std::printf("%-13s %-28s %-20s %9.2f us %8.1f GB/s %5.1f%% copy", r.kernel.c_str(), r.variant.c_str(),
              r.shape.c_str(), r.ours_us, gbps, 100.0 * gbps / g_copy_gbps);
  if (r.flops > 0) std::printf(" %8.1f GFLOP/s", r.flops / (r.ours_us * 1e3));
  if (r.base_us > 0)
    std::printf(" | %-26s %9.2f us  x%.2f", r.baseline.c_str(), r.base_us, r.base_us / r.ours_us);
  std::printf("\n");
  g_records.push_back(r);
}

std::string shape4(int64_t n, int64_t c, int64_t h, int64_t w) {
  return std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

// ---- roofline: device-to-device copy ----
void bench_copy(const Options& o, cudaStream_t s) {
  const size_t n = size_t(256) << 20;  // 1 GiB of floats
  DevBuf a(n), b(n);
  MN_CUDA_CHECK(cudaMemsetAsync(a.p, 0, n * 4, s));
  const double ms = median_ms(o, s, [&](int) {
    MN_CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, n * 4, cudaMemcpyDeviceToDevice, s));
  });
  g_copy_gbps = 2.0 * n * 4 / (ms * 1e6);
  std::printf("device-to-device copy of 1 GiB: %.3f ms, %.1f GB/s (read + write): the roofline below\n\n", ms,
              g_copy_gbps);
}

// ---- shapes ----
struct Shape4 {
  const char* tag;
  int64_t N, C, H, W;
};
std::vector<Shape4> shapes(const Options& o) {
  std::vector<Shape4> v = {{"omniglot", 20, 28, 28, 28}, {"omniglot", 20, 28, 14, 14}, {"omniglot", 20, 28, 7, 7},
                           {"miniimagenet", 20, 28, 84, 84}, {"miniimagenet", 20, 28, 42, 42},
                           {"miniimagenet", 20, 28, 21, 21}, {"large", 64, 256, 56, 56}};
  if (o.quick) v = {{"omniglot", 20, 28, 28, 28}, {"large", 64, 256, 56, 56}};
  return v;
}

// ---- weighted sum ----
__global__ void scale_dev_kernel(float* y, const float* x, const float* w, int64_t n) {
  const float a = *w;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = a * x[i];
}
__global__ void axpy_dev_kernel(float* y, const float* x, const float* w, int64_t n) {
  const float a = *w;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] += a * x[i];
}

void bench_weighted_sum(const Options& o, kc::Context& c, cublasHandle_t blas_dev) {
  const int K = 7;
  const unsigned grid = static_cast<unsigned>(c.sm_count * 8);
  for (const auto& sh : shapes(o)) {
    const int64_t n = sh.N * sh.C * sh.H * sh.W;
    const size_t set_bytes = static_cast<size_t>(n) * 4 * (2 * K + 2);
    const int R = rotation(set_bytes);
    std::vector<std::vector<std::unique_ptr<DevBuf>>> xs(R), dxs(R);
    std::vector<std::unique_ptr<DevBuf>> ys, dys;
    for (int r = 0; r < R; ++r) {
      for (int k = 0; k < K; ++k) {
        xs[r].push_back(make_buf(n, 17 * r + k));
        dxs[r].push_back(make_buf(n, 0));
      }
      ys.push_back(make_buf(n, 0));
      dys.push_back(make_buf(n, 91 + r));
    }
    auto w = make_buf(K, 5, 1.f);
    auto dw = make_buf(K, 0);
    auto ptrs = [&](int r) {
      std::vector<const float*> p;
      for (auto& b : xs[r]) p.push_back(b->p);
      return p;
    };
    auto dptrs = [&](int r) {
      std::vector<float*> p;
      for (auto& b : dxs[r]) p.push_back(b->p);
      return p;
    };
    const std::string shape = shape4(sh.N, sh.C, sh.H, sh.W);
    {
      Record rec{"weighted_sum", std::string("forward K=7 ") + sh.tag, shape, "unfused: 7 axpy kernels"};
      rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        const int r = i % R;
        auto p = ptrs(r);
        kc::weighted_sum_forward(c, ys[r]->p, p.data(), w->p, nullptr, 0, K, n);
      });
      rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        const int r = i % R;
        scale_dev_kernel<<<grid, 256, 0, c.stream>>>(ys[r]->p, xs[r][0]->p, w->p, n);
        for (int k = 1; k < K; ++k) axpy_dev_kernel<<<grid, 256, 0, c.stream>>>(ys[r]->p, xs[r][k]->p, w->p + k, n);
        MN_CUDA_LAUNCH_CHECK();
      });
      rec.bytes = 4.0 * n * (K + 1);
      rec.flops = 2.0 * n * K;
      report(rec);
    }
    {
      Record rec{"weighted_sum", std::string("backward dx_k+dw ") + sh.tag, shape,
                 "unfused: 7 scale + 7 cublasSdot"};
      rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        const int r = i % R;
        auto p = ptrs(r);
        auto d = dptrs(r);
        kc::weighted_sum_backward(c, d.data(), dw->p, dys[r]->p, p.data(), w->p, nullptr, 0, K, n, false);
      });
      rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        const int r = i % R;
        for (int k = 0; k < K; ++k) {
          scale_dev_kernel<<<grid, 256, 0, c.stream>>>(dxs[r][k]->p, dys[r]->p, w->p + k, n);
          MN_CUBLAS_CHECK(cublasSdot(blas_dev, static_cast<int>(n), dys[r]->p, 1, xs[r][k]->p, 1, dw->p + k));
        }
        MN_CUDA_LAUNCH_CHECK();
      });
      rec.bytes = 4.0 * n * (2 * K + 1);
      rec.flops = 4.0 * n * K;
      report(rec);
    }
  }
}

// ---- depthwise convolution ----
__global__ void relu_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = fmaxf(x[i], 0.f);
}
__global__ void relu_mask_kernel(float* dx, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    if (!(x[i] > 0.f)) dx[i] = 0.f;
}

// cuDNN grouped convolution with the fastest algorithms cudnnFind reports.
struct CudnnConv {
  cudnnHandle_t h;
  cudnnTensorDescriptor_t x{}, y{};
  cudnnFilterDescriptor_t w{};
  cudnnConvolutionDescriptor_t conv{};
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t ws_bytes = 0;
  float* ws = nullptr;
  CudnnConv(cudnnHandle_t handle, const ConvGeom& g) : h(handle) {
    MN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    MN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    MN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    MN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    MN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.N, g.Cin, g.H, g.W));
    MN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.Cout, g.Cin / g.groups, g.KH,
                                              g.KW));
    MN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, g.pad_top, g.pad_left, g.stride_h, g.stride_w, g.dil_h,
                                                   g.dil_w, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    MN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, g.groups));
    MN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));  // FP32 like ours
    MN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.N, g.Cout, g.OH, g.OW));
    int cnt = 0;
    cudnnConvolutionFwdAlgoPerf_t pf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    MN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(h, x, w, conv, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &cnt, pf));
    fwd = pf[0].algo;
    ws_bytes = std::max(ws_bytes, pf[0].memory);
    cudnnConvolutionBwdDataAlgoPerf_t pd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    MN_CUDNN_CHECK(
        cudnnFindConvolutionBackwardDataAlgorithm(h, w, y, conv, x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &cnt, pd));
    bwd_data = pd[0].algo;
    ws_bytes = std::max(ws_bytes, pd[0].memory);
    cudnnConvolutionBwdFilterAlgoPerf_t pw[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    MN_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(h, x, y, conv, w,
                                                               CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &cnt, pw));
    bwd_filter = pw[0].algo;
    ws_bytes = std::max(ws_bytes, pw[0].memory);
    if (ws_bytes) MN_CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
  }
  ~CudnnConv() {
    if (ws) cudaFree(ws);
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
};

struct DwKind {
  const char* name;
  int64_t k_h, k_w, stride, dil, pad_h, pad_w;
};

void bench_depthwise(const Options& o, kc::Context& c) {
  std::vector<DwKind> kinds = {{"3x3", 3, 3, 1, 1, 1, 1},     {"3x3 s2", 3, 3, 2, 1, 1, 1},
                               {"3x3 dil2", 3, 3, 1, 2, 2, 2}, {"5x5", 5, 5, 1, 1, 2, 2},
                               {"1x5", 1, 5, 1, 1, 0, 2},      {"5x1", 5, 1, 1, 1, 2, 0}};
  if (o.quick) kinds.resize(2);
  const float one = 1.f, zero = 0.f;
  const unsigned grid = static_cast<unsigned>(c.sm_count * 8);
  for (const auto& sh : shapes(o)) {
    for (const auto& kd : kinds) {
      ConvGeom g;
      g.N = sh.N;
      g.Cin = g.Cout = g.groups = sh.C;
      g.H = sh.H;
      g.W = sh.W;
      g.KH = kd.k_h;
      g.KW = kd.k_w;
      g.stride_h = g.stride_w = kd.stride;
      g.dil_h = g.dil_w = kd.dil;
      g.pad_top = g.pad_bottom = kd.pad_h;
      g.pad_left = g.pad_right = kd.pad_w;
      g.OH = (g.H + 2 * kd.pad_h - kd.dil * (kd.k_h - 1) - 1) / kd.stride + 1;
      g.OW = (g.W + 2 * kd.pad_w - kd.dil * (kd.k_w - 1) - 1) / kd.stride + 1;
      g.relu_input = true;
      const int64_t nx = g.N * g.Cin * g.H * g.W, ny = g.N * g.Cout * g.OH * g.OW, nw = g.Cout * g.KH * g.KW;
      const size_t set_bytes = 4 * static_cast<size_t>(3 * nx + 2 * ny);
      const int R = rotation(set_bytes);
      std::vector<std::unique_ptr<DevBuf>> x, y, dy, dx, tmp;
      for (int r = 0; r < R; ++r) {
        x.push_back(make_buf(nx, 3 + r));
        y.push_back(make_buf(ny, 0));
        dy.push_back(make_buf(ny, 50 + r));
        dx.push_back(make_buf(nx, 0));
        tmp.push_back(make_buf(nx, 0));
      }
      auto w = make_buf(nw, 7, 0.5f);
      auto dw = make_buf(nw, 0);
      CudnnConv lib(c.cudnn, g);
      const std::string shape = shape4(g.N, g.Cin, g.H, g.W);
      const double flops = 2.0 * ny * kd.k_h * kd.k_w;
      const std::string var = std::string(kd.name) + " relu " + sh.tag;
      {
        Record rec{"depthwise", "fwd " + var, shape, "relu kernel + cuDNN conv"};
        rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) { kc::depthwise_forward(c, g, x[i % R]->p, w->p, y[i % R]->p); });
        rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
          const int r = i % R;
          relu_kernel<<<grid, 256, 0, c.stream>>>(tmp[r]->p, x[r]->p, nx);
          MN_CUDA_LAUNCH_CHECK();
          MN_CUDNN_CHECK(cudnnConvolutionForward(c.cudnn, &one, lib.x, tmp[r]->p, lib.w, w->p, lib.conv, lib.fwd,
                                                 lib.ws, lib.ws_bytes, &zero, lib.y, y[r]->p));
        });
        rec.bytes = 4.0 * (nx + ny);
        rec.flops = flops;
        report(rec);
        // cuDNN alone (no ReLU at all): the library's bare depthwise speed.
        Record bare{"depthwise", "fwd " + std::string(kd.name) + " no-relu " + sh.tag, shape, "cuDNN conv"};
        ConvGeom g0 = g;
        g0.relu_input = false;
        bare.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) { kc::depthwise_forward(c, g0, x[i % R]->p, w->p, y[i % R]->p); });
        bare.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
          const int r = i % R;
          MN_CUDNN_CHECK(cudnnConvolutionForward(c.cudnn, &one, lib.x, x[r]->p, lib.w, w->p, lib.conv, lib.fwd, lib.ws,
                                                 lib.ws_bytes, &zero, lib.y, y[r]->p));
        });
        bare.bytes = rec.bytes;
        bare.flops = flops;
        report(bare);
      }
      {
        Record rec{"depthwise", "bwd-data " + var, shape, "cuDNN bwd-data + relu mask"};
        rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) {
          const int r = i % R;
          kc::depthwise_backward_data(c, g, dy[r]->p, w->p, x[r]->p, dx[r]->p, false);
        });
        rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
          const int r = i % R;
          MN_CUDNN_CHECK(cudnnConvolutionBackwardData(c.cudnn, &one, lib.w, w->p, lib.y, dy[r]->p, lib.conv,
                                                      lib.bwd_data, lib.ws, lib.ws_bytes, &zero, lib.x, dx[r]->p));
          relu_mask_kernel<<<grid, 256, 0, c.stream>>>(dx[r]->p, x[r]->p, nx);
          MN_CUDA_LAUNCH_CHECK();
        });
        rec.bytes = 4.0 * (ny + 2 * nx);  // dy, x (mask), dx
        rec.flops = flops;
        report(rec);
      }
      {
        Record rec{"depthwise", "bwd-weight " + var, shape, "relu kernel + cuDNN bwd-filter"};
        rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) {
          const int r = i % R;
          kc::depthwise_backward_weight(c, g, x[r]->p, dy[r]->p, dw->p, false);
        });
        rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
          const int r = i % R;
          relu_kernel<<<grid, 256, 0, c.stream>>>(tmp[r]->p, x[r]->p, nx);
          MN_CUDA_LAUNCH_CHECK();
          MN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(c.cudnn, &one, lib.x, tmp[r]->p, lib.y, dy[r]->p, lib.conv,
                                                        lib.bwd_filter, lib.ws, lib.ws_bytes, &zero, lib.w, dw->p));
        });
        rec.bytes = 4.0 * (nx + ny);
        rec.flops = flops;
        report(rec);
      }
    }
  }
}

// ---- library convolutions: what the dispatcher picked vs cuDNN's fastest ----
// 1x1 convs go to cuBLAS (strided-batched GEMM per sample) and dense convs to
// cuDNN restricted to deterministic algorithms picked by heuristics; the
// baseline is cuDNN with the fastest algorithm cudnnFind measures (any
// determinism), so this section shows what the 1x1 choice and the
// determinism rule cost or gain.
void bench_conv(const Options& o, kc::Context& c) {
  struct Case {
    const char* tag;
    int64_t N, Cin, H, W, Cout, K, pad;
  };
  std::vector<Case> cases = {{"1x1 omniglot", 20, 28, 28, 28, 28, 1, 0},    {"1x1 miniimagenet", 20, 28, 42, 42, 28, 1, 0},
                             {"1x1 large", 64, 256, 56, 56, 256, 1, 0},     {"3x3 omniglot", 20, 28, 28, 28, 28, 3, 1},
                             {"3x3 stem 84x84", 20, 3, 84, 84, 28, 3, 1}, {"3x3 large", 64, 64, 56, 56, 64, 3, 1}};
  if (o.quick) cases = {{"1x1 omniglot", 20, 28, 28, 28, 28, 1, 0}, {"3x3 omniglot", 20, 28, 28, 28, 28, 3, 1}};
  const float one = 1.f, zero = 0.f;
  for (const auto& cs : cases) {
    ConvGeom g;
    g.N = cs.N;
    g.Cin = cs.Cin;
    g.H = cs.H;
    g.W = cs.W;
    g.Cout = cs.Cout;
    g.KH = g.KW = cs.K;
    g.pad_top = g.pad_bottom = g.pad_left = g.pad_right = cs.pad;
    g.OH = cs.H + 2 * cs.pad - cs.K + 1;
    g.OW = cs.W + 2 * cs.pad - cs.K + 1;
    const int64_t nx = g.N * g.Cin * g.H * g.W, ny = g.N * g.Cout * g.OH * g.OW, nw = g.Cout * g.Cin * g.KH * g.KW;
    const int R = rotation(4 * static_cast<size_t>(2 * nx + 2 * ny));
    std::vector<std::unique_ptr<DevBuf>> x, y, dy, dx;
    for (int r = 0; r < R; ++r) {
      x.push_back(make_buf(nx, 31 + r));
      y.push_back(make_buf(ny, 0));
      dy.push_back(make_buf(ny, 61 + r));
      dx.push_back(make_buf(nx, 0));
    }
    auto w = make_buf(nw, 9, 0.2f);
    auto dw = make_buf(nw, 0);
    CudnnConv lib(c.cudnn, g);
    const std::string shape = shape4(g.N, g.Cin, g.H, g.W) + "->" + std::to_string(g.Cout);
    const double flops = 2.0 * ny * g.Cin * g.KH * g.KW;
    const std::string path = cs.K == 1 ? "cuBLAS" : "cuDNN deterministic";
    {
      Record rec{"conv", std::string("fwd ") + cs.tag + " (" + path + ")", shape, "cuDNN fastest (cudnnFind)"};
      rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) { kc::conv2d_forward(c, g, x[i % R]->p, w->p, y[i % R]->p); });
      rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        MN_CUDNN_CHECK(cudnnConvolutionForward(c.cudnn, &one, lib.x, x[i % R]->p, lib.w, w->p, lib.conv, lib.fwd,
                                               lib.ws, lib.ws_bytes, &zero, lib.y, y[i % R]->p));
      });
      rec.bytes = 4.0 * (nx + ny + nw);
      rec.flops = flops;
      report(rec);
    }
    {
      Record rec{"conv", std::string("bwd-data ") + cs.tag + " (" + path + ")", shape, "cuDNN fastest (cudnnFind)"};
      rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        kc::conv2d_backward_data(c, g, dy[i % R]->p, w->p, nullptr, dx[i % R]->p, false);
      });
      rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        MN_CUDNN_CHECK(cudnnConvolutionBackwardData(c.cudnn, &one, lib.w, w->p, lib.y, dy[i % R]->p, lib.conv,
                                                    lib.bwd_data, lib.ws, lib.ws_bytes, &zero, lib.x, dx[i % R]->p));
      });
      rec.bytes = 4.0 * (nx + ny + nw);
      rec.flops = flops;
      report(rec);
    }
    {
      Record rec{"conv", std::string("bwd-weight ") + cs.tag + " (" + path + ")", shape, "cuDNN fastest (cudnnFind)"};
      rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        kc::conv2d_backward_weight(c, g, x[i % R]->p, dy[i % R]->p, dw->p, false);
      });
      rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        MN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(c.cudnn, &one, lib.x, x[i % R]->p, lib.y, dy[i % R]->p, lib.conv,
                                                      lib.bwd_filter, lib.ws, lib.ws_bytes, &zero, lib.w, dw->p));
      });
      rec.bytes = 4.0 * (nx + ny + nw);
      rec.flops = flops;
      report(rec);
    }
  }
}

// ---- softmax ----
__global__ void scale_kernel(float* y, const float* x, float s, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = s * x[i];
}
// loss = -mean_r logp[r, label[r]] (one block, fixed order).
__global__ void nll_mean_kernel(float* loss, const float* logp, const int32_t* labels, int64_t rows, int64_t cols) {
  __shared__ double part[256];
  double s = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) s -= logp[r * cols + labels[r]];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int o = 128; o > 0; o >>= 1) {
    if (threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) *loss = static_cast<float>(part[0] / rows);
}
__global__ void labels_kernel(int32_t* l, int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < rows;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    l[i] = static_cast<int32_t>((i * 7919) % cols);
}

void bench_softmax(const Options& o, kc::Context& c) {
  struct Case {
    const char* tag;
    int64_t rows, cols;
  };
  // Architecture weights: 14 edges x 7 ops (normal cell) and the pair-weight
  // rows; classifier logits 5-way x 25 or 100 queries; large shapes.
  std::vector<Case> cases = {{"arch weights", 14, 7},    {"pair weights", 14, 5}, {"logits 5-way", 100, 5},
                             {"large rows of 7", 1 << 22, 7}, {"large logits", 1 << 16, 1000}};
  if (o.quick) cases = {{"arch weights", 14, 7}, {"large rows of 7", 1 << 22, 7}};
  const float one = 1.f, zero = 0.f, inv_t = 1.f / 0.7f;
  const unsigned grid = static_cast<unsigned>(c.sm_count * 8);
  for (const auto& cs : cases) {
    const int64_t n = cs.rows * cs.cols;
    const int R = rotation(4 * static_cast<size_t>(4 * n));
    std::vector<std::unique_ptr<DevBuf>> x, y, dy, dx;
    for (int r = 0; r < R; ++r) {
      x.push_back(make_buf(n, 11 + r, 8.f));
      y.push_back(make_buf(n, 0));
      dy.push_back(make_buf(n, 23 + r));
      dx.push_back(make_buf(n, 0));
    }
    auto tmp = make_buf(n, 0);
    auto loss = make_buf(1, 0);
    int32_t* labels = nullptr;
    MN_CUDA_CHECK(cudaMalloc(&labels, sizeof(int32_t) * cs.rows));
    labels_kernel<<<64, 256, 0, c.stream>>>(labels, cs.rows, cs.cols);
    MN_CUDA_LAUNCH_CHECK();
    cudnnTensorDescriptor_t d;
    MN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    MN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(cs.rows),
                                              static_cast<int>(cs.cols), 1, 1));
    const std::string shape = std::to_string(cs.rows) + "x" + std::to_string(cs.cols);
    {
      Record rec{"softmax", std::string("fwd T=0.7 ") + cs.tag, shape, "scale kernel + cuDNN softmax"};
      rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) { kc::softmax_forward(c, y[i % R]->p, x[i % R]->p, cs.rows, cs.cols, inv_t); });
      rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        const int r = i % R;
        scale_kernel<<<grid, 256, 0, c.stream>>>(tmp->p, x[r]->p, inv_t, n);
        MN_CUDA_LAUNCH_CHECK();
        MN_CUDNN_CHECK(cudnnSoftmaxForward(c.cudnn, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one, d,
                                           tmp->p, &zero, d, y[r]->p));
      });
      rec.bytes = 8.0 * n;
      report(rec);
    }
    {
      Record rec{"softmax", std::string("bwd T=0.7 ") + cs.tag, shape, "cuDNN softmax backward"};
      rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        const int r = i % R;
        kc::softmax_backward(c, dx[r]->p, dy[r]->p, y[r]->p, cs.rows, cs.cols, inv_t, false);
      });
      rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        const int r = i % R;
        MN_CUDNN_CHECK(cudnnSoftmaxBackward(c.cudnn, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &inv_t, d,
                                            y[r]->p, d, dy[r]->p, &zero, d, dx[r]->p));
      });
      rec.bytes = 12.0 * n;
      report(rec);
    }
    {
      Record rec{"softmax", std::string("cross-entropy fwd ") + cs.tag, shape,
                 "cuDNN softmax + log-softmax + NLL"};
      rec.ours_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        const int r = i % R;
        kc::cross_entropy_forward(c, loss->p, y[r]->p, x[r]->p, labels, cs.rows, cs.cols);
      });
      rec.base_us = 1e3 * median_ms(o, c.stream, [&](int i) {
        const int r = i % R;
        MN_CUDNN_CHECK(cudnnSoftmaxForward(c.cudnn, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one, d,
                                           x[r]->p, &zero, d, y[r]->p));
        MN_CUDNN_CHECK(cudnnSoftmaxForward(c.cudnn, CUDNN_SOFTMAX_LOG, CUDNN_SOFTMAX_MODE_INSTANCE, &one, d, x[r]->p,
                                           &zero, d, tmp->p));
        nll_mean_kernel<<<1, 256, 0, c.stream>>>(loss->p, tmp->p, labels, cs.rows, cs.cols);
        MN_CUDA_LAUNCH_CHECK();
      });
      rec.bytes = 8.0 * n + 4.0 * cs.rows;
      report(rec);
    }
    cudnnDestroyTensorDescriptor(d);
    cudaFree(labels);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kernel-bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--only") o.only = next();
    else if (a == "--json") o.json = next();
    else if (a == "--reps") o.reps = std::max(1, std::stoi(next()));
    else if (a == "--warmup") o.warmup = std::max(0, std::stoi(next()));
    else if (a == "--quick") o.quick = true;
    else {
      std::fprintf(stderr,
                   "usage: kernel-bench [--only weighted_sum|depthwise|softmax|conv] [--reps N] [--warmup N] [--quick] "
                   "[--json FILE]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  try {
    if (!metanas::cuda_available()) {
      std::string why;
      try {
        metanas::backend(metanas::Device::CUDA);
      } catch (const std::exception& e) {
        why = e.what();
      }
      std::fprintf(stderr, "kernel-bench: no usable GPU: %s\n", why.c_str());
      return 1;
    }
    kc::Context& c = kc::backend_context();
    int l2 = 0;
    MN_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, c.device));
    g_l2 = static_cast<size_t>(l2);
    cudaDeviceProp prop{};
    MN_CUDA_CHECK(cudaGetDeviceProperties(&prop, c.device));
    std::printf("GPU: %s, %d SMs, L2 %.0f MiB; median of %d runs after %d warm-up runs\n", prop.name, c.sm_count,
                l2 / 1048576.0, o.reps, o.warmup);
    bench_copy(o, c.stream);
    cublasHandle_t blas_dev;
    MN_CUBLAS_CHECK(cublasCreate(&blas_dev));
    MN_CUBLAS_CHECK(cublasSetStream(blas_dev, c.stream));
    MN_CUBLAS_CHECK(cublasSetPointerMode(blas_dev, CUBLAS_POINTER_MODE_DEVICE));
    if (o.only.empty() || o.only == "weighted_sum") bench_weighted_sum(o, c, blas_dev);
    if (o.only.empty() || o.only == "depthwise") bench_depthwise(o, c);
    if (o.only.empty() || o.only == "softmax") bench_softmax(o, c);
    if (o.only.empty() || o.only == "conv") bench_conv(o, c);
    cublasDestroy(blas_dev);
    if (!o.json.empty()) {
      nlohmann::json j;
      j["gpu"] = prop.name;
      j["copy_gbps"] = g_copy_gbps;
      j["reps"] = o.reps;
      j["warmup"] = o.warmup;
      for (const auto& r : g_records) {
        const double gbps = r.bytes / (r.ours_us * 1e3);
        j["results"].push_back({{"kernel", r.kernel},
                                {"variant", r.variant},
                                {"shape", r.shape},
                                {"median_us", r.ours_us},
                                {"gbps", gbps},
                                {"fraction_of_copy_bw", gbps / g_copy_gbps},
                                {"gflops", r.flops > 0 ? r.flops / (r.ours_us * 1e3) : 0.0},
                                {"baseline", r.baseline},
                                {"baseline_median_us", r.base_us},
                                {"speedup_vs_baseline", r.base_us > 0 ? r.base_us / r.ours_us : 0.0}});
      }
      std::ofstream f(o.json);
      if (!f) throw metanas::Error("kernel-bench: cannot write " + o.json);
      f << j.dump(2) << "\n";
      std::printf("\nwrote %s\n", o.json.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
