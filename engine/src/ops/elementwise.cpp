// Element-wise ops and full reductions, forward and backward.
#include "ops/op_util.h"

namespace metanas {

using namespace detail;

namespace {
Tensor binary(const char* op, const Tensor& a, const Tensor& b, float alpha, float beta) {
  check_f32(op, a, "a");
  check_f32(op, b, "b");
  check_same_shape(op, a, b);
  const Device dev = common_device(op, {a, b});
  Tensor y = Tensor::empty(a.shape(), DType::F32, dev);
  backend(dev).add(y.data(), a.data(), b.data(), alpha, beta, a.numel());
  record(y, op, {a, b}, [alpha, beta](const Tensor& g) -> std::vector<Tensor> {
    return {alpha == 1.f ? g : mul_scalar(g, alpha), beta == 1.f ? g : mul_scalar(g, beta)};
  });
  return y;
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", a, b, 1.f, 1.f); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", a, b, 1.f, -1.f); }

Tensor mul(const Tensor& a, const Tensor& b) {
  check_f32("mul", a, "a");
  check_f32("mul", b, "b");
  check_same_shape("mul", a, b);
  const Device dev = common_device("mul", {a, b});
  Tensor y = Tensor::empty(a.shape(), DType::F32, dev);
  backend(dev).mul(y.data(), a.data(), b.data(), a.numel(), false);
  // Saves only the inputs whose partner needs a gradient.
  Tensor sa = b.requires_grad() ? a : Tensor(), sb = a.requires_grad() ? b : Tensor();
  record(y, "mul", {a, b}, [sa, sb](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga, gb;
    if (sb.defined()) {
      ga = Tensor::empty(g.shape(), DType::F32, g.device());
      backend(g.device()).mul(ga.data(), g.data(), sb.data(), g.numel(), false);
    }
    if (sa.defined()) {
      gb = Tensor::empty(g.shape(), DType::F32, g.device());
      backend(g.device()).mul(gb.data(), g.data(), sa.data(), g.numel(), false);
    }
    return {ga, gb};
  });
  return y;
}

Tensor add_scalar(const Tensor& x, float s) {
  check_f32("add_scalar", x, "x");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  backend(x.device()).affine(y.data(), x.data(), 1.f, s, x.numel());
  record(y, "add_scalar", {x}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return y;
}

Tensor mul_scalar(const Tensor& x, float s) {
  check_f32("mul_scalar", x, "x");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  backend(x.device()).affine(y.data(), x.data(), s, 0.f, x.numel());
  record(y, "mul_scalar", {x}, [s](const Tensor& g) -> std::vector<Tensor> { return {mul_scalar(g, s)}; });
  return y;
}

Tensor relu(const Tensor& x) {
  check_f32("relu", x, "x");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  backend(x.device()).relu_forward(y.data(), x.data(), x.numel());
  record(y, "relu", {x}, [x](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::F32, g.device());
    backend(g.device()).relu_backward(dx.data(), g.data(), x.data(), g.numel(), false);
    return {dx};
  });
  return y;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator*(const Tensor& x, float s) { return mul_scalar(x, s); }
Tensor operator*(float s, const Tensor& x) { return mul_scalar(x, s); }

namespace {
// Broadcasts a scalar gradient (on the device) times `scale` to `shape`.
Tensor broadcast_scalar_grad(const Tensor& g, const Shape& shape, float scale) {
  // g lives on the device; expand without a host round trip: y = 0 * y + g[0]
  // is done by filling with zeros then adding g via sum_rows' transpose trick
  // is overkill; a [1] x [n] GEMM does the broadcast in one call.
  Tensor y = Tensor::zeros(shape, DType::F32, g.device());
  Tensor ones_row = Tensor::full(Shape{1, shape.numel()}, scale, g.device());
  // y[1, n] = g[1, 1] * ones[1, n]
  backend(g.device()).gemm(false, false, 1, shape.numel(), 1, 1.f, g.data(), 1, ones_row.data(),
                           shape.numel(), 0.f, y.data(), shape.numel());
  return y;
}
}  // namespace

Tensor sum(const Tensor& x) {
  check_f32("sum", x, "x");
  Tensor y = Tensor::empty(Shape{}, DType::F32, x.device());
  backend(x.device()).sum(y.data(), x.data(), x.numel());
  const Shape shape = x.shape();
  record(y, "sum", {x}, [shape](const Tensor& g) -> std::vector<Tensor> {
    return {broadcast_scalar_grad(g, shape, 1.f)};
  });
  return y;
}

Tensor mean(const Tensor& x) {
  check_f32("mean", x, "x");
  MN_CHECK(x.numel() > 0, "mean: empty tensor ", x.describe());
  return mul_scalar(sum(x), 1.f / static_cast<float>(x.numel()));
}

Tensor sum_squares(const Tensor& x) {
  check_f32("sum_squares", x, "x");
  Tensor y = Tensor::empty(Shape{}, DType::F32, x.device());
  backend(x.device()).sum_squares(y.data(), x.data(), x.numel());
  record(y, "sum_squares", {x}, [x](const Tensor& g) -> std::vector<Tensor> {
    // d/dx sum x^2 = 2 x * g
    Tensor b = broadcast_scalar_grad(g, x.shape(), 2.f);
    Tensor dx = Tensor::empty(x.shape(), DType::F32, x.device());
    backend(x.device()).mul(dx.data(), b.data(), x.data(), x.numel(), false);
    return {dx};
  });
  return y;
}

}  // namespace metanas
