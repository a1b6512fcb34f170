// Drop-path regularisation: each sample (dim 0) is zeroed with probability p
// and kept samples are scaled by 1 / (1 - p), forward and backward.
//
// The op knows nothing of training vs evaluation: callers apply it only while
// training. With p == 0 it returns x itself. The mask is computed on the
// device by the drop_path_scales kernel from a Philox key, so a step does not
// upload (or wait for) anything; the Rng overload draws one seed per call.
#include <cmath>

#include "metanas/engine/random.h"
#include "ops/op_util.h"

namespace metanas {

using namespace detail;

namespace {

void check_key_words(const char* op, const Tensor* key_words, Device device) {
  if (key_words)
    MN_CHECK(key_words->defined() && key_words->dtype() == DType::I32 && key_words->numel() >= 3 &&
                 key_words->device() == device,
             op, ": key words must be int32 [3] on ", device_name(device), ", got ",
             key_words->defined() ? key_words->describe() : std::string("an undefined tensor"));
}

// scale[0, n) = the masks of `key` (its seed and task from key_words when given).
void write_scales(Backend& be, const PhiloxKey& key, float p, const Tensor* key_words, float* scale, int64_t n) {
  if (key_words)
    be.drop_path_scales_at(key_words->data_i32(), key.step, key.op, p, scale, n);
  else
    be.drop_path_scales(key, p, scale, n);
}

// The op around its row scales: key_words null = the host key's scales.
Tensor drop_path_impl(const Tensor& x, float p, const PhiloxKey& key, const Tensor* key_words) {
  const char* op = "drop_path";
  check_f32(op, x, "x");
  MN_CHECK(x.ndim() >= 1, op, ": needs a batch dimension, got ", x.describe());
  MN_CHECK(std::isfinite(p) && p >= 0.f && p < 1.f, op, ": drop probability must be in [0, 1), got ", p);
  check_key_words(op, key_words, x.device());
  if (p == 0.f) return x;
  const int64_t N = x.dim(0);
  const int64_t cols = N ? x.numel() / N : 0;
  Backend& be = backend(x.device());
  Tensor sc = Tensor::empty(Shape{N}, DType::F32, x.device());
  if (N) write_scales(be, key, p, key_words, sc.data(), N);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (x.numel()) be.scale_rows(y.data(), x.data(), sc.data(), N, cols, false);
  record(y, op, {x}, [sc, N, cols](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::F32, g.device());
    if (g.numel()) backend(g.device()).scale_rows(dx.data(), g.data(), sc.data(), N, cols, false);
    return {dx};
  });
  return y;
}

}  // namespace

Tensor drop_path_scales(int64_t n, float p, const PhiloxKey& key, const std::vector<int64_t>& ops, Device device,
                        const Tensor* key_words) {
  const char* op = "drop_path_scales";
  MN_CHECK(n >= 0, op, ": negative sample count ", n);
  MN_CHECK(std::isfinite(p) && p >= 0.f && p < 1.f, op, ": drop probability must be in [0, 1), got ", p);
  check_key_words(op, key_words, device);
  const int64_t M = static_cast<int64_t>(ops.size());
  Tensor sc = Tensor::empty(Shape{M, n}, DType::F32, device);
  if (n == 0) return sc;
  Backend& be = backend(device);
  for (int64_t r = 0; r < M; ++r) {
    float* row = sc.data() + r * n;
    const int64_t o = ops[static_cast<size_t>(r)];
    if (o < 0 || p == 0.f) {
      be.fill(row, 1.f, n);
      continue;
    }
    PhiloxKey k = key;
    k.op += static_cast<uint32_t>(o);
    write_scales(be, k, p, key_words, row, n);
  }
  return sc;
}

Tensor drop_path(const Tensor& x, float p, const PhiloxKey& key) { return drop_path_impl(x, p, key, nullptr); }

Tensor drop_path(const Tensor& x, float p, const PhiloxKey& key, const Tensor& key_words) {
  return drop_path_impl(x, p, key, &key_words);
}

Tensor drop_path(const Tensor& x, float p, Rng& rng) {
  if (p == 0.f) return drop_path(x, p, PhiloxKey{});  // checks x; draws nothing
  PhiloxKey key;
  key.seed = rng.next_u64();
  return drop_path(x, p, key);
}

}  // namespace metanas
