// batch_norm over [N, C, H, W] or [N, C]: training mode (batch statistics,
// in-place running-statistics update) and eval mode (running statistics),
// optional affine gamma/beta; checks, forward and backward.
#include "ops/op_util.h"

namespace metanas {

using namespace detail;

namespace {
void check_channel_vector(const Tensor& t, const char* what, int64_t C, const Tensor& x) {
  check_f32("batch_norm", t, what);
  MN_CHECK(t.ndim() == 1 && t.dim(0) == C, "batch_norm: ", what, " must be [", C,
           "] (the channels of x ", x.describe(), "), got ", t.describe());
}
}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean,
                  Tensor running_var, const BatchNormOptions& opt) {
  const char* op = "batch_norm";
  check_f32(op, x, "input x");
  MN_CHECK(x.ndim() == 4 || x.ndim() == 2, "batch_norm: input x must be [N, C, H, W] or [N, C], got ",
           x.describe());
  const int64_t N = x.dim(0), C = x.dim(1), HW = x.ndim() == 4 ? x.dim(2) * x.dim(3) : 1;
  MN_CHECK(C >= 1, "batch_norm: input x ", x.describe(), " has no channels");
  if (gamma.defined()) check_channel_vector(gamma, "gamma", C, x);
  if (beta.defined()) check_channel_vector(beta, "beta", C, x);
  MN_CHECK(running_mean.defined() == running_var.defined(),
           "batch_norm: give both running_mean and running_var, or neither");
  if (running_mean.defined()) {
    check_channel_vector(running_mean, "running_mean", C, x);
    check_channel_vector(running_var, "running_var", C, x);
  }
  const Device dev = common_device(op, {x, gamma, beta, running_mean, running_var});
  MN_CHECK(opt.eps > 0.f, "batch_norm: eps must be > 0, got ", opt.eps);
  const float* gp = gamma.defined() ? gamma.data() : nullptr;
  const float* bp = beta.defined() ? beta.data() : nullptr;
  const bool need_dx = x.requires_grad();
  const bool need_dg = gamma.defined() && gamma.requires_grad();
  const bool need_db = beta.defined() && beta.requires_grad();
  Backend& be = backend(dev);
  Tensor y = Tensor::empty(x.shape(), DType::F32, dev);

  if (opt.training) {
    MN_CHECK(N * HW > 1, "batch_norm: training needs more than one value per channel, got x ",
             x.describe(), " (use eval mode with running statistics)");
    Tensor mean = Tensor::empty(Shape{C}, DType::F32, dev);
    Tensor invstd = Tensor::empty(Shape{C}, DType::F32, dev);
    // Running statistics are buffers: updated in place, outside autograd.
    be.batch_norm_forward_train(x.data(), gp, bp, y.data(), mean.data(), invstd.data(),
                                running_mean.defined() ? running_mean.data() : nullptr,
                                running_var.defined() ? running_var.data() : nullptr, N, C, HW,
                                opt.eps, opt.momentum);
    record(y, op, {x, gamma, beta},
           [x, gamma, mean, invstd, N, C, HW, need_dx, need_dg, need_db](const Tensor& dy)
               -> std::vector<Tensor> {
             Tensor dx = Tensor::empty(x.shape(), DType::F32, dy.device());
             Tensor dg = need_dg ? Tensor::empty(Shape{C}, DType::F32, dy.device()) : Tensor();
             Tensor db = need_db ? Tensor::empty(Shape{C}, DType::F32, dy.device()) : Tensor();
             backend(dy.device())
                 .batch_norm_backward(dy.data(), x.data(), mean.data(), invstd.data(),
                                      gamma.defined() ? gamma.data() : nullptr, dx.data(),
                                      dg.defined() ? dg.data() : nullptr,
                                      db.defined() ? db.data() : nullptr, N, C, HW, false);
             return {need_dx ? dx : Tensor(), dg, db};
           });
    return y;
  }

  MN_CHECK(running_mean.defined(),
           "batch_norm: eval mode (training = false) needs running_mean and running_var; "
           "use training = true for batch statistics");
  be.batch_norm_forward_eval(x.data(), gp, bp, running_mean.data(), running_var.data(), y.data(),
                             N, C, HW, opt.eps);
  if (!any_requires_grad({x, gamma, beta})) return y;
  // Snapshots: a later training-mode forward may update the running stats in
  // place before this backward runs.
  Tensor rm = running_mean.clone(), rv = running_var.clone();
  const float eps = opt.eps;
  record(y, op, {x, gamma, beta},
         [x, gamma, rm, rv, N, C, HW, eps, need_dg, need_db](const Tensor& dy)
             -> std::vector<Tensor> {
           Tensor dx = Tensor::empty(x.shape(), DType::F32, dy.device());
           Tensor dg = need_dg ? Tensor::empty(Shape{C}, DType::F32, dy.device()) : Tensor();
           Tensor db = need_db ? Tensor::empty(Shape{C}, DType::F32, dy.device()) : Tensor();
           backend(dy.device())
               .batch_norm_backward_eval(dy.data(), x.data(),
                                         gamma.defined() ? gamma.data() : nullptr, rm.data(),
                                         rv.data(), dx.data(), dg.defined() ? dg.data() : nullptr,
                                         db.defined() ? db.data() : nullptr, N, C, HW, eps, false);
           return {dx, dg, db};
         });
  return y;
}

}  // namespace metanas
