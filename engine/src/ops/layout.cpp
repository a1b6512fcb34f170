// Layout ops on NCHW tensors: channel concat and slice, spatial crop (all one
// backend box_copy each way) and flatten (a differentiable reshape: no copy).
#include <string>

#include "ops/op_util.h"

namespace metanas {

using namespace detail;

namespace {
// A box copy of whole planes' rows: [N, C, Hc, Wc] between two NCHW tensors.
BoxCopy box(const Shape& src, const Shape& dst, int64_t C, int64_t Hc, int64_t Wc) {
  BoxCopy b;
  b.N = src[0];
  b.C = C;
  b.Hc = Hc;
  b.Wc = Wc;
  b.src_C = src[1];
  b.src_H = src[2];
  b.src_W = src[3];
  b.dst_C = dst[1];
  b.dst_H = dst[2];
  b.dst_W = dst[3];
  return b;
}

bool box_empty(const BoxCopy& b) { return b.N * b.C * b.Hc * b.Wc == 0; }
}  // namespace

Tensor concat_channels(const std::vector<Tensor>& xs) {
  const char* op = "concat_channels";
  MN_CHECK(!xs.empty(), op, ": needs at least one input");
  int64_t C = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::string what = str_cat("xs[", i, "]");
    check_f32(op, xs[i], what.c_str());
    check_ndim(op, xs[i], 4, what.c_str());
    const Shape& s = xs[i].shape();
    const Shape& s0 = xs[0].shape();
    MN_CHECK(s[0] == s0[0] && s[2] == s0[2] && s[3] == s0[3], op,
             ": inputs must share N, H and W: xs[0] is ", xs[0].describe(), " but xs[", i, "] is ",
             xs[i].describe());
    C += s[1];
  }
  const Device dev = common_device(op, xs);
  const Shape& s0 = xs[0].shape();
  const Shape out_shape{s0[0], C, s0[2], s0[3]};
  Tensor y = Tensor::empty(out_shape, DType::F32, dev);
  std::vector<int64_t> offsets(xs.size());
  int64_t c0 = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    BoxCopy b = box(s, out_shape, s[1], s[2], s[3]);
    b.dc0 = offsets[i] = c0;
    if (!box_empty(b)) backend(dev).box_copy(b, xs[i].data(), y.data());
    c0 += s[1];
  }
  if (!any_requires_grad(xs)) return y;
  std::vector<Shape> shapes;
  std::vector<bool> need;
  for (const auto& x : xs) {
    shapes.push_back(x.shape());
    need.push_back(x.requires_grad());
  }
  record(y, op, xs, [shapes, need, offsets, out_shape](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> grads(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      if (!need[i]) continue;
      // Each input's gradient is its own channel slice of g: a plain copy.
      grads[i] = Tensor::empty(shapes[i], DType::F32, g.device());
      BoxCopy b = box(out_shape, shapes[i], shapes[i][1], shapes[i][2], shapes[i][3]);
      b.sc0 = offsets[i];
      if (!box_empty(b)) backend(g.device()).box_copy(b, g.data(), grads[i].data());
    }
    return grads;
  });
  return y;
}

Tensor slice_channels(const Tensor& x, int64_t c0, int64_t count) {
  const char* op = "slice_channels";
  check_f32(op, x, "x");
  check_ndim(op, x, 4, "x");
  const int64_t C = x.dim(1);
  MN_CHECK(c0 >= 0 && count >= 1 && c0 + count <= C, op, ": channels [", c0, ", ", c0 + count,
           ") are not a non-empty range inside ", x.describe());
  const Shape in_shape = x.shape();
  const Shape out_shape{in_shape[0], count, in_shape[2], in_shape[3]};
  Tensor y = Tensor::empty(out_shape, DType::F32, x.device());
  BoxCopy b = box(in_shape, out_shape, count, in_shape[2], in_shape[3]);
  b.sc0 = c0;
  if (!box_empty(b)) backend(x.device()).box_copy(b, x.data(), y.data());
  record(y, op, {x}, [in_shape, out_shape, c0, count](const Tensor& g) -> std::vector<Tensor> {
    // Zeros outside the slice, g copied into it.
    Tensor dx = Tensor::zeros(in_shape, DType::F32, g.device());
    BoxCopy bb = box(out_shape, in_shape, count, in_shape[2], in_shape[3]);
    bb.dc0 = c0;
    if (!box_empty(bb)) backend(g.device()).box_copy(bb, g.data(), dx.data());
    return {dx};
  });
  return y;
}

Tensor crop2d(const Tensor& x, int64_t h0, int64_t w0, int64_t h, int64_t w) {
  const char* op = "crop2d";
  check_f32(op, x, "x");
  check_ndim(op, x, 4, "x");
  const int64_t H = x.dim(2), W = x.dim(3);
  MN_CHECK(h0 >= 0 && w0 >= 0 && h >= 1 && w >= 1 && h0 + h <= H && w0 + w <= W, op, ": window rows [",
           h0, ", ", h0 + h, ") x cols [", w0, ", ", w0 + w, ") is not a non-empty window inside ",
           x.describe());
  const Shape in_shape = x.shape();
  const Shape out_shape{in_shape[0], in_shape[1], h, w};
  Tensor y = Tensor::empty(out_shape, DType::F32, x.device());
  BoxCopy b = box(in_shape, out_shape, in_shape[1], h, w);
  b.sh0 = h0;
  b.sw0 = w0;
  if (!box_empty(b)) backend(x.device()).box_copy(b, x.data(), y.data());
  record(y, op, {x}, [in_shape, out_shape, h0, w0, h, w](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::zeros(in_shape, DType::F32, g.device());
    BoxCopy bb = box(out_shape, in_shape, in_shape[1], h, w);
    bb.dh0 = h0;
    bb.dw0 = w0;
    if (!box_empty(bb)) backend(g.device()).box_copy(bb, g.data(), dx.data());
    return {dx};
  });
  return y;
}

Tensor flatten(const Tensor& x) {
  const char* op = "flatten";
  check_f32(op, x, "x");
  MN_CHECK(x.ndim() >= 1, op, ": needs at least 1 dimension, got ", x.describe());
  const int64_t N = x.dim(0);
  int64_t rest = 1;
  for (int i = 1; i < x.ndim(); ++i) rest *= x.dim(i);
  // Contiguous tensors flatten without a copy; reshape records its own backward.
  return x.reshape(Shape{N, rest});
}

}  // namespace metanas
