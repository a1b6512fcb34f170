// GRU cell from engine ops (PyTorch nn.GRU equations).
#include "metanas/meta/rl/gru.h"

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/meta/rl/orthogonal.h"

namespace metanas::meta::rl {

namespace {
const char* kGates[3] = {"r", "z", "n"};
}

GruCell::GruCell(ParamSet& ps, const std::string& prefix, int64_t input, int64_t hidden)
    : ps_(&ps), prefix_(prefix), input_(input), hidden_(hidden) {
  MN_CHECK(input > 0 && hidden > 0, "GruCell: sizes must be positive, got input ", input, ", hidden ", hidden);
  for (const char* g : kGates) {
    ps.add(prefix + "w_i" + g, Shape{hidden, input});
    ps.add(prefix + "w_h" + g, Shape{hidden, hidden});
    ps.add(prefix + "b_i" + g, Shape{hidden});
    ps.add(prefix + "b_h" + g, Shape{hidden});
  }
}

void GruCell::init(float gain, Rng& rng) {
  const std::vector<float> wi = orthogonal(3 * hidden_, input_, gain, rng);
  const std::vector<float> wh = orthogonal(3 * hidden_, hidden_, gain, rng);
  for (int k = 0; k < 3; ++k) {
    const std::string g = kGates[k];
    std::vector<float> bi(wi.begin() + k * hidden_ * input_, wi.begin() + (k + 1) * hidden_ * input_);
    std::vector<float> bh(wh.begin() + k * hidden_ * hidden_, wh.begin() + (k + 1) * hidden_ * hidden_);
    Tensor& ti = ps_->get(prefix_ + "w_i" + g);
    Tensor& th = ps_->get(prefix_ + "w_h" + g);
    ti.copy_(Tensor::from_vector(bi, ti.shape()));
    th.copy_(Tensor::from_vector(bh, th.shape()));
    ps_->get(prefix_ + "b_i" + g).zero_();
    ps_->get(prefix_ + "b_h" + g).zero_();
  }
}

Tensor GruCell::step(const Tensor& x, const Tensor& h) const {
  MN_CHECK(x.ndim() == 2 && x.dim(1) == input_, "GruCell: x must be [N, ", input_, "], got ", x.describe());
  MN_CHECK(h.ndim() == 2 && h.dim(1) == hidden_ && h.dim(0) == x.dim(0), "GruCell: h must be [", x.dim(0), ", ",
           hidden_, "], got ", h.describe());
  ParamSet& p = *ps_;
  auto lin = [&](const Tensor& in, const char* kind, const char* g) {
    return linear(in, p.get(prefix_ + "w_" + kind + g), p.get(prefix_ + "b_" + kind + g));
  };
  const Tensor r = sigmoid(add(lin(x, "i", "r"), lin(h, "h", "r")));
  const Tensor z = sigmoid(add(lin(x, "i", "z"), lin(h, "h", "z")));
  const Tensor n = tanh(add(lin(x, "i", "n"), mul(r, lin(h, "h", "n"))));
  // (1 - z) * n + z * h = n + z * (h - n)
  return add(n, mul(z, sub(h, n)));
}

}  // namespace metanas::meta::rl
