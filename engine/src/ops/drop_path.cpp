// Drop-path regularisation: each sample (dim 0) is zeroed with probability p
// and kept samples are scaled by 1 / (1 - p), forward and backward.
//
// The op knows nothing of training vs evaluation: callers apply it only while
// training. With p == 0 it returns x itself and draws nothing from rng;
// otherwise it draws exactly one rng.uniform() per sample, in sample order.
#include <cmath>

#include "metanas/engine/random.h"
#include "ops/op_util.h"

namespace metanas {

using namespace detail;

Tensor drop_path(const Tensor& x, float p, Rng& rng) {
  const char* op = "drop_path";
  check_f32(op, x, "x");
  MN_CHECK(x.ndim() >= 1, op, ": needs a batch dimension, got ", x.describe());
  MN_CHECK(std::isfinite(p) && p >= 0.f && p < 1.f, op, ": drop probability must be in [0, 1), got ", p);
  if (p == 0.f) return x;
  const int64_t N = x.dim(0);
  const int64_t cols = N ? x.numel() / N : 0;
  // Mask on the host (reproducible from rng), uploaded as one small tensor.
  const float keep_scale = 1.f / (1.f - p);
  std::vector<float> scale(static_cast<size_t>(N));
  for (auto& s : scale) s = rng.uniform() >= p ? keep_scale : 0.f;
  Tensor sc = Tensor::from_vector(scale, Shape{N}, x.device());
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (x.numel()) backend(x.device()).scale_rows(y.data(), x.data(), sc.data(), N, cols, false);
  record(y, op, {x}, [sc, N, cols](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::F32, g.device());
    if (g.numel()) backend(g.device()).scale_rows(dx.data(), g.data(), sc.data(), N, cols, false);
    return {dx};
  });
  return y;
}

}  // namespace metanas
