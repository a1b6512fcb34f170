// CUDA 2-D convolution dispatch (NCHW, no bias):
//   depthwise (groups == Cin == Cout)   -> the hand-written kernel (depthwise_conv.cu), ReLU fused;
//   1x1, stride 1, no padding, groups 1 -> cuBLAS strided-batched GEMM per sample;
//   everything else (dense, grouped)    -> cuDNN with FP32 FMA math (no TF32, so results track the
//                                          CPU) and deterministic GEMM-like algorithms only
//                                          (no FFT, no Winograd).
// cuDNN descriptors and the heuristically chosen algorithms are cached per
// geometry (heuristics run on the host: nothing is timed or synchronised);
// workspaces come from the caching allocator. cuDNN pads symmetrically, so
// asymmetric padding, and relu_input on the library paths, go through a
// zero-padded / ReLU'd copy of the input in allocator scratch; the gradient
// w.r.t. that copy is cropped back and masked by (x > 0).
// Bench: build/bin/kernel-bench (cuDNN grouped conv is the baseline of the
// depthwise kernel).
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "kernels/cuda/cuda_common.cuh"

namespace metanas::kernels::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(512) << 20;  // cuDNN workspace cap per call

bool pointwise(const ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_bottom == 0 &&
         g.pad_left == 0 && g.pad_right == 0 && g.groups == 1;
}
bool symmetric(const ConvGeom& g) { return g.pad_top == g.pad_bottom && g.pad_left == g.pad_right; }

int to_int(int64_t v, const char* what) {
  MN_KCHECK(v >= 0 && v < 0x7fffffffLL, "conv2d (CUDA): ", what, " = ", v, " exceeds cuDNN's 32-bit range");
  return static_cast<int>(v);
}

// ---- padded / ReLU'd input copies ----

// dst [N, C, Hp, Wp] = zero-padded (relu) src [N, C, H, W] placed at (pt, pl).
__global__ void pad_copy_kernel(float* __restrict__ dst, const float* __restrict__ src, int H, int W, int Hp, int Wp,
                                int pt, int pl, bool relu) {
  const int64_t plane = blockIdx.x;
  const float* s = src + plane * H * W;
  float* d = dst + plane * Hp * Wp;
  for (int q = blockIdx.y * blockDim.x + threadIdx.x; q < Hp * Wp; q += gridDim.y * blockDim.x) {
    const int h = q / Wp - pt, w = q % Wp - pl;
    float v = 0.f;
    if (h >= 0 && h < H && w >= 0 && w < W) {
      v = s[h * W + w];
      if (relu && !(v > 0.f)) v = 0.f;
    }
    d[q] = v;
  }
}

// dx [N, C, H, W] (+)= (x > 0 when relu) * dxp [N, C, Hp, Wp] cropped at (pt, pl).
__global__ void crop_grad_kernel(float* __restrict__ dx, const float* __restrict__ dxp, const float* __restrict__ x,
                                 int H, int W, int Hp, int Wp, int pt, int pl, bool relu, bool accumulate) {
  const int64_t plane = blockIdx.x;
  const float* s = dxp + plane * Hp * Wp;
  float* d = dx + plane * H * W;
  const float* xp = relu ? x + plane * H * W : nullptr;
  for (int q = blockIdx.y * blockDim.x + threadIdx.x; q < H * W; q += gridDim.y * blockDim.x) {
    const int h = q / W, w = q - h * W;
    float v = s[(h + pt) * Wp + (w + pl)];
    if (relu && !(xp[q] > 0.f)) v = 0.f;
    d[q] = accumulate ? d[q] + v : v;
  }
}

dim3 plane_grid(int64_t planes, int64_t plane_elems) {
  const int64_t tiles = std::min<int64_t>((plane_elems + kThreads - 1) / kThreads, 65535);
  return dim3(static_cast<unsigned>(planes), static_cast<unsigned>(std::max<int64_t>(tiles, 1)));
}

// The input a library conv actually reads: x itself, or a scratch copy that
// is zero-padded to make the padding symmetric (all padding explicit) and/or
// ReLU'd. geom is the geometry to give the library.
struct LibInput {
  ConvGeom geom;
  const float* x = nullptr;
  std::unique_ptr<ScratchBuffer> buf;
  bool copied() const { return buf != nullptr; }
};

// A copy is needed for relu_input, and for asymmetric padding on cuDNN.
LibInput prepare_input(const Context& c, const ConvGeom& g, const float* x, bool need_symmetric, bool materialise) {
  LibInput in;
  in.geom = g;
  in.x = x;
  const bool pad_copy = need_symmetric && !symmetric(g);
  if (!g.relu_input && !pad_copy) return in;
  ConvGeom& e = in.geom;
  e.relu_input = false;
  if (pad_copy) {
    e.H = g.H + g.pad_top + g.pad_bottom;
    e.W = g.W + g.pad_left + g.pad_right;
    e.pad_top = e.pad_bottom = e.pad_left = e.pad_right = 0;
  }
  const int64_t planes = g.N * g.Cin;
  in.buf = std::make_unique<ScratchBuffer>(*c.alloc, sizeof(float) * static_cast<size_t>(planes * e.H * e.W));
  if (materialise && planes * e.H * e.W > 0) {
    const int pt = pad_copy ? static_cast<int>(g.pad_top) : 0, pl = pad_copy ? static_cast<int>(g.pad_left) : 0;
    pad_copy_kernel<<<plane_grid(planes, e.H * e.W), kThreads, 0, c.stream>>>(
        in.buf->as<float>(), x, to_int(g.H, "H"), to_int(g.W, "W"), to_int(e.H, "padded H"), to_int(e.W, "padded W"),
        pt, pl, g.relu_input);
    MN_CUDA_LAUNCH_CHECK();
  }
  in.x = in.buf->as<float>();
  return in;
}

// dx (+)= gradient w.r.t. the library input `dxe` (geometry in.geom), cropped
// back to x's shape and masked by (x > 0) when relu_input.
void finish_input_grad(const Context& c, const ConvGeom& g, const LibInput& in, const float* dxe, const float* x,
                       float* dx, bool accumulate) {
  const int64_t planes = g.N * g.Cin;
  if (planes * g.H * g.W <= 0) return;
  const bool padded = in.geom.H != g.H || in.geom.W != g.W;
  const int pt = padded ? static_cast<int>(g.pad_top) : 0, pl = padded ? static_cast<int>(g.pad_left) : 0;
  crop_grad_kernel<<<plane_grid(planes, g.H * g.W), kThreads, 0, c.stream>>>(
      dx, dxe, x, to_int(g.H, "H"), to_int(g.W, "W"), to_int(in.geom.H, "padded H"), to_int(in.geom.W, "padded W"),
      pt, pl, g.relu_input, accumulate);
  MN_CUDA_LAUNCH_CHECK();
}

}  // namespace

// ---- cuDNN plans ----

struct ConvKey {
  int64_t v[17];
  bool operator==(const ConvKey& o) const { return std::memcmp(v, o.v, sizeof(v)) == 0; }
};
struct ConvKeyHash {
  size_t operator()(const ConvKey& k) const {
    size_t h = 1469598103934665603ull;
    for (int64_t x : k.v) h = (h ^ static_cast<size_t>(x)) * 1099511628211ull;
    return h;
  }
};

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool have_fwd = false, have_bwd_data = false, have_bwd_filter = false;
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo{};
  size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
  ~ConvPlan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

struct CudnnConvCache {
  std::mutex mu;
  std::unordered_map<ConvKey, std::unique_ptr<ConvPlan>, ConvKeyHash> plans;
};

CudnnConvCache* conv_cache_create() { return new CudnnConvCache(); }
void conv_cache_destroy(CudnnConvCache* cache) { delete cache; }

namespace {

// g must have symmetric padding and no relu_input (see prepare_input).
ConvPlan& plan_for(const Context& c, const ConvGeom& g) {
  const ConvKey key{{g.N, g.Cin, g.H, g.W, g.Cout, g.KH, g.KW, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.dil_h,
                     g.dil_w, g.groups, g.OH, g.OW, 0}};
  CudnnConvCache& cache = *c.conv_cache;
  std::lock_guard<std::mutex> lock(cache.mu);
  auto it = cache.plans.find(key);
  if (it != cache.plans.end()) return *it->second;
  auto p = std::make_unique<ConvPlan>();
  MN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  MN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  MN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  MN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
  MN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int(g.N, "N"),
                                            to_int(g.Cin, "Cin"), to_int(g.H, "H"), to_int(g.W, "W")));
  MN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, to_int(g.Cout, "Cout"),
                                            to_int(g.Cin / g.groups, "Cin/groups"), to_int(g.KH, "KH"),
                                            to_int(g.KW, "KW")));
  MN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, to_int(g.pad_top, "pad_h"), to_int(g.pad_left, "pad_w"),
                                                 to_int(g.stride_h, "stride_h"), to_int(g.stride_w, "stride_w"),
                                                 to_int(g.dil_h, "dil_h"), to_int(g.dil_w, "dil_w"),
                                                 CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  MN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, to_int(g.groups, "groups")));
  // FP32 FMA math: no TF32 tensor cores, so results match the CPU to float rounding.
  MN_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH));
  int n = 0, ch = 0, h = 0, w = 0;
  MN_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &ch, &h, &w));
  MN_KCHECK(n == g.N && ch == g.Cout && h == g.OH && w == g.OW, "conv2d (CUDA): cuDNN output [", n, ", ", ch, ", ", h,
           ", ", w, "] differs from the expected [", g.N, ", ", g.Cout, ", ", g.OH, ", ", g.OW, "]");
  MN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, ch, h, w));
  ConvPlan& ref = *p;
  cache.plans.emplace(key, std::move(p));
  return ref;
}

std::string geom_str(const ConvGeom& g) {
  return cat("x [", g.N, ", ", g.Cin, ", ", g.H, ", ", g.W, "], w [", g.Cout, ", ", g.Cin / g.groups, ", ", g.KH,
                 ", ", g.KW, "], stride ", g.stride_h, "x", g.stride_w, ", pad ", g.pad_top, "/", g.pad_left,
                 ", dilation ", g.dil_h, "x", g.dil_w, ", groups ", g.groups);
}

// FFT and Winograd algorithms change the arithmetic (transforms with their own
// rounding), so the parity tolerances against the CPU's direct sums would not
// hold: only GEMM-like algorithms are allowed.
bool allowed_algo(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}
bool allowed_algo(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
bool allowed_algo(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

// Picks the first (fastest by cuDNN's heuristic) algorithm that is supported,
// deterministic, FMA math (no tensor-op/TF32 downconversion), non-FFT and
// non-Winograd, and fits the workspace cap.
template <typename Perf, typename Algo>
bool pick(const Perf* perf, int count, Algo* algo, size_t* ws) {
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].determinism != CUDNN_DETERMINISTIC ||
        perf[i].memory > kMaxWorkspace || !allowed_algo(perf[i].algo) ||
        (perf[i].mathType != CUDNN_FMA_MATH && perf[i].mathType != CUDNN_DEFAULT_MATH))
      continue;
    *algo = perf[i].algo;
    *ws = perf[i].memory;
    return true;
  }
  return false;
}

void ensure_fwd(const Context& c, ConvPlan& p, const ConvGeom& g) {
  std::lock_guard<std::mutex> lock(c.conv_cache->mu);
  if (p.have_fwd) return;
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  MN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(c.cudnn, p.x, p.w, p.conv, p.y,
                                                        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
  if (!pick(perf, count, &p.fwd_algo, &p.fwd_ws)) {
    p.fwd_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;  // deterministic, no workspace
    MN_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(c.cudnn, p.x, p.w, p.conv, p.y, p.fwd_algo, &p.fwd_ws));
  }
  p.have_fwd = true;
  (void)g;
}

void ensure_bwd_data(const Context& c, ConvPlan& p, const ConvGeom& g) {
  std::lock_guard<std::mutex> lock(c.conv_cache->mu);
  if (p.have_bwd_data) return;
  cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int count = 0;
  MN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(c.cudnn, p.w, p.y, p.conv, p.x,
                                                             CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
  if (!pick(perf, count, &p.bwd_data_algo, &p.bwd_data_ws)) {
    p.bwd_data_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;  // deterministic
    const cudnnStatus_t s =
        cudnnGetConvolutionBackwardDataWorkspaceSize(c.cudnn, p.w, p.y, p.conv, p.x, p.bwd_data_algo, &p.bwd_data_ws);
    MN_KCHECK(s == CUDNN_STATUS_SUCCESS, "conv2d backward-data (CUDA): cuDNN has no deterministic algorithm for ",
             geom_str(g), ": ", cudnnGetErrorString(s));
  }
  p.have_bwd_data = true;
}

void ensure_bwd_filter(const Context& c, ConvPlan& p, const ConvGeom& g) {
  std::lock_guard<std::mutex> lock(c.conv_cache->mu);
  if (p.have_bwd_filter) return;
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int count = 0;
  MN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(c.cudnn, p.x, p.y, p.conv, p.w,
                                                               CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
  if (!pick(perf, count, &p.bwd_filter_algo, &p.bwd_filter_ws)) {
    p.bwd_filter_algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;  // deterministic
    const cudnnStatus_t s = cudnnGetConvolutionBackwardFilterWorkspaceSize(c.cudnn, p.x, p.y, p.conv, p.w,
                                                                           p.bwd_filter_algo, &p.bwd_filter_ws);
    MN_KCHECK(s == CUDNN_STATUS_SUCCESS, "conv2d backward-weight (CUDA): cuDNN has no deterministic algorithm for ",
             geom_str(g), ": ", cudnnGetErrorString(s));
  }
  p.have_bwd_filter = true;
}

// ---- cuBLAS 1x1 ----
// Per sample, row-major: Y_n [Cout, HW] = W [Cout, Cin] X_n [Cin, HW]. In
// cuBLAS's column-major terms Y_n^T [HW, Cout] = X_n^T [HW, Cin] W^T [Cin, Cout].
void pointwise_forward(const Context& c, const ConvGeom& g, const float* x, const float* w, float* y) {
  const int HW = to_int(g.H * g.W, "H*W"), Cin = to_int(g.Cin, "Cin"), Cout = to_int(g.Cout, "Cout");
  const float one = 1.f, zero = 0.f;
  MN_CUBLAS_CHECK(cublasSgemmStridedBatched(c.cublas, CUBLAS_OP_N, CUBLAS_OP_N, HW, Cout, Cin, &one, x, HW,
                                            static_cast<long long>(Cin) * HW, w, Cin, 0, &zero, y, HW,
                                            static_cast<long long>(Cout) * HW, to_int(g.N, "N")));
}

// dX_n [Cin, HW] (+)= W^T dY_n: column-major dX_n^T [HW, Cin] = dY_n^T [HW, Cout] W [Cout, Cin].
void pointwise_backward_data(const Context& c, const ConvGeom& g, const float* dy, const float* w, float* dx,
                             float beta) {
  const int HW = to_int(g.H * g.W, "H*W"), Cin = to_int(g.Cin, "Cin"), Cout = to_int(g.Cout, "Cout");
  const float one = 1.f;
  MN_CUBLAS_CHECK(cublasSgemmStridedBatched(c.cublas, CUBLAS_OP_N, CUBLAS_OP_T, HW, Cin, Cout, &one, dy, HW,
                                            static_cast<long long>(Cout) * HW, w, Cin, 0, &beta, dx, HW,
                                            static_cast<long long>(Cin) * HW, to_int(g.N, "N")));
}

// dW [Cout, Cin] (+)= sum_n dY_n X_n^T; column-major dW^T [Cin, Cout] = sum_n X_n [Cin, HW] dY_n^T [HW, Cout]
// (X_n is the transpose of x's column-major view). With N > 1 the per-sample
// products go to scratch [N, Cout*Cin] and are summed over n in a fixed order.
void pointwise_backward_weight(const Context& c, const ConvGeom& g, const float* x, const float* dy, float* dw,
                               bool accumulate) {
  const int HW = to_int(g.H * g.W, "H*W"), Cin = to_int(g.Cin, "Cin"), Cout = to_int(g.Cout, "Cout");
  const int64_t per = g.Cout * g.Cin;
  const float one = 1.f, zero = 0.f;
  if (g.N == 1) {
    const float beta = accumulate ? 1.f : 0.f;
    MN_CUBLAS_CHECK(cublasSgemm(c.cublas, CUBLAS_OP_T, CUBLAS_OP_N, Cin, Cout, HW, &one, x, HW, dy, HW, &beta, dw,
                                Cin));
    return;
  }
  ScratchBuffer part(*c.alloc, sizeof(float) * static_cast<size_t>(g.N * per));
  MN_CUBLAS_CHECK(cublasSgemmStridedBatched(c.cublas, CUBLAS_OP_T, CUBLAS_OP_N, Cin, Cout, HW, &one, x, HW,
                                            static_cast<long long>(Cin) * HW, dy, HW,
                                            static_cast<long long>(Cout) * HW, &zero, part.as<float>(), Cin, per,
                                            to_int(g.N, "N")));
  sum_rows(c, dw, part.as<float>(), g.N, per, accumulate);
}

}  // namespace

void cudnn_conv_forward(const Context& c, const ConvGeom& g, const float* x, const float* w, float* y) {
  if (g.N * g.Cout * g.OH * g.OW <= 0) return;
  LibInput in = prepare_input(c, g, x, /*need_symmetric=*/true, /*materialise=*/true);
  ConvPlan& p = plan_for(c, in.geom);
  ensure_fwd(c, p, in.geom);
  ScratchBuffer ws(*c.alloc, p.fwd_ws);
  const float one = 1.f, zero = 0.f;
  MN_CUDNN_CHECK(cudnnConvolutionForward(c.cudnn, &one, p.x, in.x, p.w, w, p.conv, p.fwd_algo, ws.get(), p.fwd_ws,
                                         &zero, p.y, y));
}

void cudnn_conv_backward_data(const Context& c, const ConvGeom& g, const float* dy, const float* w, const float* x,
                              float* dx, bool accumulate) {
  if (g.N * g.Cin * g.H * g.W <= 0) return;
  MN_KCHECK(!g.relu_input || x, "conv2d backward-data (CUDA): relu_input needs the input x");
  // Only the geometry of the library input is needed (not its values).
  LibInput in = prepare_input(c, g, x, /*need_symmetric=*/true, /*materialise=*/false);
  ConvPlan& p = plan_for(c, in.geom);
  ensure_bwd_data(c, p, in.geom);
  ScratchBuffer ws(*c.alloc, p.bwd_data_ws);
  const float one = 1.f, zero = 0.f;
  if (!in.copied()) {
    const float beta = accumulate ? 1.f : 0.f;
    MN_CUDNN_CHECK(cudnnConvolutionBackwardData(c.cudnn, &one, p.w, w, p.y, dy, p.conv, p.bwd_data_algo, ws.get(),
                                                p.bwd_data_ws, &beta, p.x, dx));
    return;
  }
  MN_CUDNN_CHECK(cudnnConvolutionBackwardData(c.cudnn, &one, p.w, w, p.y, dy, p.conv, p.bwd_data_algo, ws.get(),
                                              p.bwd_data_ws, &zero, p.x, in.buf->as<float>()));
  finish_input_grad(c, g, in, in.buf->as<float>(), x, dx, accumulate);
}

void cudnn_conv_backward_weight(const Context& c, const ConvGeom& g, const float* x, const float* dy, float* dw,
                                bool accumulate) {
  if (g.Cout * (g.Cin / g.groups) * g.KH * g.KW <= 0) return;
  if (g.N * g.OH * g.OW <= 0) {
    if (!accumulate) fill(c, dw, 0.f, g.Cout * (g.Cin / g.groups) * g.KH * g.KW);
    return;
  }
  LibInput in = prepare_input(c, g, x, /*need_symmetric=*/true, /*materialise=*/true);
  ConvPlan& p = plan_for(c, in.geom);
  ensure_bwd_filter(c, p, in.geom);
  ScratchBuffer ws(*c.alloc, p.bwd_filter_ws);
  const float one = 1.f, beta = accumulate ? 1.f : 0.f;
  MN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(c.cudnn, &one, p.x, in.x, p.y, dy, p.conv, p.bwd_filter_algo,
                                                ws.get(), p.bwd_filter_ws, &beta, p.w, dw));
}

void conv2d_forward(const Context& c, const ConvGeom& g, const float* x, const float* w, float* y) {
  if (depthwise_applies(g)) return depthwise_forward(c, g, x, w, y);
  if (pointwise(g)) {
    if (g.N * g.Cout * g.OH * g.OW <= 0) return;
    LibInput in = prepare_input(c, g, x, /*need_symmetric=*/false, /*materialise=*/true);
    return pointwise_forward(c, g, in.x, w, y);
  }
  cudnn_conv_forward(c, g, x, w, y);
}

void conv2d_backward_data(const Context& c, const ConvGeom& g, const float* dy, const float* w, const float* x,
                          float* dx, bool accumulate) {
  if (depthwise_applies(g)) return depthwise_backward_data(c, g, dy, w, x, dx, accumulate);
  if (pointwise(g)) {
    if (g.N * g.Cin * g.H * g.W <= 0) return;
    if (!g.relu_input) return pointwise_backward_data(c, g, dy, w, dx, accumulate ? 1.f : 0.f);
    MN_KCHECK(x, "conv2d backward-data (CUDA): relu_input needs the input x");
    ScratchBuffer tmp(*c.alloc, sizeof(float) * static_cast<size_t>(g.N * g.Cin * g.H * g.W));
    pointwise_backward_data(c, g, dy, w, tmp.as<float>(), 0.f);
    return relu_backward(c, dx, tmp.as<float>(), x, g.N * g.Cin * g.H * g.W, accumulate);
  }
  cudnn_conv_backward_data(c, g, dy, w, x, dx, accumulate);
}

void conv2d_backward_weight(const Context& c, const ConvGeom& g, const float* x, const float* dy, float* dw,
                            bool accumulate) {
  if (depthwise_applies(g)) return depthwise_backward_weight(c, g, x, dy, dw, accumulate);
  if (pointwise(g)) {
    if (g.Cout * g.Cin <= 0) return;
    if (g.N * g.H * g.W <= 0) {
      if (!accumulate) fill(c, dw, 0.f, g.Cout * g.Cin);
      return;
    }
    LibInput in = prepare_input(c, g, x, /*need_symmetric=*/false, /*materialise=*/true);
    return pointwise_backward_weight(c, g, in.x, dy, dw, accumulate);
  }
  cudnn_conv_backward_weight(c, g, x, dy, dw, accumulate);
}

}  // namespace metanas::kernels::cuda
