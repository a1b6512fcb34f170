// Pooling ops: max_pool2d, avg_pool2d (padding excluded from the count) and
// global_avg_pool: checks, forward and backward.
#include "ops/op_util.h"

namespace metanas {

using namespace detail;

namespace {

PoolGeom pool_geom(const char* op, const Tensor& x, int64_t k, int64_t stride, int64_t pad) {
  check_f32(op, x, "input x");
  check_ndim(op, x, 4, "input x [N, C, H, W]");
  MN_CHECK(k >= 1 && stride >= 1 && pad >= 0, op, ": needs k >= 1, stride >= 1, pad >= 0; got k ",
           k, ", stride ", stride, ", pad ", pad);
  // As in PyTorch: with pad <= k/2 every window holds at least one real pixel.
  MN_CHECK(2 * pad <= k, op, ": pad ", pad, " must be at most half the window ", k);
  PoolGeom g;
  g.N = x.dim(0);
  g.C = x.dim(1);
  g.H = x.dim(2);
  g.W = x.dim(3);
  g.k = k;
  g.stride = stride;
  g.pad = pad;
  MN_CHECK(g.H + 2 * pad >= k && g.W + 2 * pad >= k, op, ": window ", k, " with padding ", pad,
           " does not fit input ", x.describe());
  g.OH = (g.H + 2 * pad - k) / stride + 1;
  g.OW = (g.W + 2 * pad - k) / stride + 1;
  return g;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, int64_t k, int64_t stride, int64_t pad) {
  const PoolGeom g = pool_geom("max_pool2d", x, k, stride, pad);
  const Device dev = x.device();
  const Shape out{g.N, g.C, g.OH, g.OW};
  Tensor y = Tensor::empty(out, DType::F32, dev);
  Tensor arg = Tensor::empty(out, DType::I32, dev);
  backend(dev).max_pool_forward(g, x.data(), y.data(), arg.data_i32());
  // Backward needs only the argmax indices, not x.
  record_into(y, "max_pool2d", {x}, [g, arg](const Tensor& dy, const std::vector<Tensor>& into) -> std::vector<Tensor> {
    bool acc = false;
    Tensor dx = grad_target(into, 0, Shape{g.N, g.C, g.H, g.W}, dy.device(), acc);
    backend(dy.device()).max_pool_backward(g, dy.data(), arg.data_i32(), dx.data(), acc);
    return {dx};
  });
  return y;
}

Tensor avg_pool2d(const Tensor& x, int64_t k, int64_t stride, int64_t pad) {
  const PoolGeom g = pool_geom("avg_pool2d", x, k, stride, pad);
  const Device dev = x.device();
  Tensor y = Tensor::empty(Shape{g.N, g.C, g.OH, g.OW}, DType::F32, dev);
  backend(dev).avg_pool_forward(g, x.data(), y.data());
  record_into(y, "avg_pool2d", {x}, [g](const Tensor& dy, const std::vector<Tensor>& into) -> std::vector<Tensor> {
    bool acc = false;
    Tensor dx = grad_target(into, 0, Shape{g.N, g.C, g.H, g.W}, dy.device(), acc);
    backend(dy.device()).avg_pool_backward(g, dy.data(), dx.data(), acc);
    return {dx};
  });
  return y;
}

Tensor global_avg_pool(const Tensor& x) {
  check_f32("global_avg_pool", x, "input x");
  check_ndim("global_avg_pool", x, 4, "input x [N, C, H, W]");
  const int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
  MN_CHECK(HW >= 1, "global_avg_pool: input x ", x.describe(), " has an empty spatial size");
  const Device dev = x.device();
  Tensor y = Tensor::empty(Shape{N, C}, DType::F32, dev);
  backend(dev).global_avg_pool_forward(x.data(), y.data(), N * C, HW);
  const Shape in = x.shape();
  record_into(y, "global_avg_pool", {x}, [in, HW](const Tensor& dy, const std::vector<Tensor>& into) -> std::vector<Tensor> {
    bool acc = false;
    Tensor dx = grad_target(into, 0, in, dy.device(), acc);
    backend(dy.device()).global_avg_pool_backward(dy.data(), dx.data(), dy.numel(), HW, acc);
    return {dx};
  });
  return y;
}

}  // namespace metanas
