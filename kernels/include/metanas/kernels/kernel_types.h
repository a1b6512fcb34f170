// The kernel-facing types: the geometry structs the kernels take, and how a
// kernel reports a failure. Kernels (kernels/cpu, kernels/cuda) include only
// this header and their own; they never see the engine's Tensor or autograd.
#pragma once
#include <cstdint>
#include <sstream>
#include <string>

namespace metanas {

// Convolution geometry, NCHW input [N, Cin, H, W], weight [Cout, Cin/groups,
// KH, KW], output [N, Cout, OH, OW]. Padding may be asymmetric (1x5 / 5x1).
struct ConvGeom {
  int64_t N = 0, Cin = 0, H = 0, W = 0;
  int64_t Cout = 0, KH = 0, KW = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  int64_t OH = 0, OW = 0;  // derived: see conv_out_size
  bool relu_input = false;  // the kernel reads max(x, 0) instead of x
};

// Pooling geometry: NCHW [N, C, H, W] -> [N, C, OH, OW], square window.
struct PoolGeom {
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t k = 3, stride = 1, pad = 1;
  int64_t OH = 0, OW = 0;
};

// The key of a counter-based random stream (Philox4x32-10, philox.h): the
// run's seed and the place of a draw (task of the meta-batch, inner step,
// op in forward order). The same key gives the same numbers on every backend
// and thread count, with no generator state to carry or upload.
struct PhiloxKey {
  uint64_t seed = 0;
  uint32_t task = 0, step = 0, op = 0;
};

// A 4-D box copy: dst[n, dc0+c, dh0+h, dw0+w] (+)= src[n, sc0+c, sh0+h, sw0+w]
// for n < N, c < C, h < Hc, w < Wc. Covers concat, channel slice, spatial crop
// and their backwards (with accumulate = true).
struct BoxCopy {
  int64_t N = 0, C = 0, Hc = 0, Wc = 0;                  // box extent
  int64_t src_C = 0, src_H = 0, src_W = 0;               // source dims (N shared)
  int64_t dst_C = 0, dst_H = 0, dst_W = 0;               // destination dims
  int64_t sc0 = 0, sh0 = 0, sw0 = 0, dc0 = 0, dh0 = 0, dw0 = 0;
  bool accumulate = false;
};

// The log-probability log_softmax gives masked entries: finite (0 * it is 0)
// and far below any real log-probability.
constexpr float kMaskedLogProb = -1e30f;

namespace kernels {
// Raises the engine's error type (metanas::Error) with this message; defined
// by the engine (engine/src/backend.cpp), so kernels need not include it.
[[noreturn]] void raise_error(const std::string& what);

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace kernels
}  // namespace metanas

// Kernel-side MN_CHECK / MN_THROW (same meaning, no engine header needed).
#define MN_KCHECK(cond, ...)                                                              \
  do {                                                                                    \
    if (!(cond)) ::metanas::kernels::raise_error(::metanas::kernels::cat(__VA_ARGS__));   \
  } while (0)
#define MN_KTHROW(...) ::metanas::kernels::raise_error(::metanas::kernels::cat(__VA_ARGS__))
