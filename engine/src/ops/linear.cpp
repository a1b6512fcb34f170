// Fully connected layer y = x w^T + b, forward and backward, through the
// backend GEMM (OpenBLAS / cuBLAS) and the row-bias kernels.
#include "ops/op_util.h"

namespace metanas {

using namespace detail;

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  const char* op = "linear";
  check_f32(op, x, "x");
  check_f32(op, w, "w");
  check_ndim(op, x, 2, "x");
  check_ndim(op, w, 2, "w");
  const int64_t N = x.dim(0), in = x.dim(1), out = w.dim(0);
  MN_CHECK(w.dim(1) == in, op, ": x ", x.describe(), " has ", in, " features but w ", w.describe(),
           " expects ", w.dim(1), " (w is [out, in])");
  MN_CHECK(in > 0 && out > 0, op, ": empty layer: x ", x.describe(), ", w ", w.describe());
  if (b.defined()) {
    check_f32(op, b, "b");
    MN_CHECK(b.ndim() == 1 && b.dim(0) == out, op, ": bias must be [", out, "] for w ", w.describe(),
             ", got ", b.describe());
  }
  const Device dev = common_device(op, {x, w, b});
  Backend& be = backend(dev);

  Tensor y = Tensor::empty(Shape{N, out}, DType::F32, dev);
  // y[N, out] = x[N, in] * w[out, in]^T
  be.gemm(false, true, N, out, in, 1.f, x.data(), in, w.data(), in, 0.f, y.data(), out);
  if (b.defined() && N) be.add_bias_rows(y.data(), b.data(), N, out);

  if (!any_requires_grad({x, w, b})) return y;
  const bool need_x = x.requires_grad(), need_w = w.requires_grad();
  const bool need_b = b.defined() && b.requires_grad();
  // dx needs w, dw needs x: save only what a wanted gradient reads.
  Tensor sx = need_w ? x : Tensor(), sw = need_x ? w : Tensor();
  record(y, op, {x, w, b},
         [sx, sw, need_x, need_w, need_b, N, in, out](const Tensor& g) -> std::vector<Tensor> {
           Backend& be = backend(g.device());
           Tensor dx, dw, db;
           if (need_x) {  // dx[N, in] = g[N, out] * w[out, in]
             dx = Tensor::empty(Shape{N, in}, DType::F32, g.device());
             be.gemm(false, false, N, in, out, 1.f, g.data(), out, sw.data(), in, 0.f, dx.data(), in);
           }
           if (need_w) {  // dw[out, in] = g^T[out, N] * x[N, in]
             dw = Tensor::empty(Shape{out, in}, DType::F32, g.device());
             if (N)
               be.gemm(true, false, out, in, N, 1.f, g.data(), out, sx.data(), in, 0.f, dw.data(), in);
             else
               dw.zero_();
           }
           if (need_b) {  // db[out] = sum over rows of g
             db = Tensor::empty(Shape{out}, DType::F32, g.device());
             be.sum_rows(db.data(), g.data(), N, out, false);
           }
           return {dx, dw, db};
         });
  return y;
}

}  // namespace metanas
