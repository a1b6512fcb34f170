// Normalizers of architecture logits and the temperature schedule.
#include "metanas/nas/normalizer.h"

#include <algorithm>
#include <cmath>

#include "metanas/engine/extension.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::nas {

// ---- names ----

const char* normalizer_name(Normalizer n) {
  switch (n) {
    case Normalizer::Softmax: return "softmax";
    case Normalizer::ReluSoftmax: return "relu_softmax";
    case Normalizer::GumbelSoftmax: return "gumbel_softmax";
  }
  MN_THROW("normalizer_name: invalid normalizer ", static_cast<int>(n));
}

Normalizer parse_normalizer(const std::string& name) {
  if (name == "softmax") return Normalizer::Softmax;
  if (name == "relu_softmax" || name == "relusoftmax") return Normalizer::ReluSoftmax;
  if (name == "gumbel_softmax") return Normalizer::GumbelSoftmax;
  MN_THROW("unknown normalizer '", name, "' (valid: softmax, relu_softmax, gumbel_softmax)");
}

// ---- schedule ----

void TemperatureSchedule::validate() const {
  MN_CHECK(t_min > 0 && t_max >= t_min, "TemperatureSchedule: need t_max >= t_min > 0, got t_max ",
           t_max, ", t_min ", t_min);
  MN_CHECK(steps >= 1, "TemperatureSchedule: steps must be >= 1, got ", steps);
}

double TemperatureSchedule::progress(int step, bool warmup) const {
  if (warmup || step <= 0) return 0.0;
  if (steps <= 1 || step >= steps - 1) return 1.0;
  return static_cast<double>(step) / static_cast<double>(steps - 1);
}

double TemperatureSchedule::at(int step, bool warmup) const {
  if (warmup || step <= 0) return t_max;
  if (steps <= 1 || step >= steps - 1) return t_min;
  return t_max - step * (t_max - t_min) / static_cast<double>(steps - 1);
}

void TemperatureSchedule::apply(ForwardContext& ctx, int step, bool warmup) const {
  ctx.temperature = static_cast<float>(at(step, warmup));
  ctx.anneal_progress = static_cast<float>(progress(step, warmup));
}

// ---- normalizers ----

namespace {

void check_temperature(float t) {
  MN_CHECK(t > 0.f && std::isfinite(t), "normalize: temperature must be positive and finite, got ", t);
}

// y[r, :] = x[r, :] / sum(x[r, :]) for non-negative x (0 where the sum is 0).
// Architecture matrices are a few dozen numbers, so this runs on the host;
// there is no division op in the engine.
Tensor row_normalize(const Tensor& x) {
  const int64_t cols = x.ndim() == 0 ? 1 : x.dim(-1);
  const int64_t rows = cols ? x.numel() / cols : 0;
  std::vector<float> v = x.to_vector();
  std::vector<float> y(v.size(), 0.f), sums(static_cast<size_t>(rows), 0.f);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += v[static_cast<size_t>(r * cols + c)];
    sums[static_cast<size_t>(r)] = static_cast<float>(s);
    if (s > 0)
      for (int64_t c = 0; c < cols; ++c)
        y[static_cast<size_t>(r * cols + c)] = static_cast<float>(v[static_cast<size_t>(r * cols + c)] / s);
  }
  Tensor out = Tensor::from_vector(y, x.shape(), x.device());
  record(out, "row_normalize", {x}, [y, sums, rows, cols](const Tensor& g) -> std::vector<Tensor> {
    // dx[r, c] = (g[r, c] - sum_k g[r, k] y[r, k]) / s_r
    std::vector<float> gv = g.to_vector(), dx(gv.size(), 0.f);
    for (int64_t r = 0; r < rows; ++r) {
      const double s = sums[static_cast<size_t>(r)];
      if (!(s > 0)) continue;
      double dot = 0;
      for (int64_t c = 0; c < cols; ++c)
        dot += static_cast<double>(gv[static_cast<size_t>(r * cols + c)]) * y[static_cast<size_t>(r * cols + c)];
      for (int64_t c = 0; c < cols; ++c)
        dx[static_cast<size_t>(r * cols + c)] =
            static_cast<float>((gv[static_cast<size_t>(r * cols + c)] - dot) / s);
    }
    return {Tensor::from_vector(dx, g.shape(), g.device())};
  });
  return out;
}

}  // namespace

Tensor normalize(const Tensor& logits, const ForwardContext& ctx) {
  MN_CHECK(logits.defined() && logits.dtype() == DType::F32, "normalize: logits must be a float tensor");
  switch (ctx.normalizer) {
    case Normalizer::Softmax:
      check_temperature(ctx.temperature);
      return softmax(logits, ctx.temperature);
    case Normalizer::GumbelSoftmax: {
      check_temperature(ctx.temperature);
      MN_CHECK(ctx.rng, "normalize: gumbel_softmax needs ForwardContext::rng");
      std::vector<float> g(static_cast<size_t>(logits.numel()));
      for (auto& v : g) {
        // Gumbel(0, 1) = -log(-log(u)), u in (0, 1).
        const double u = std::max(static_cast<double>(ctx.rng->uniform()), 1e-20);
        v = static_cast<float>(-std::log(-std::log(u) + 1e-20));
      }
      Tensor noise = Tensor::from_vector(g, logits.shape(), logits.device());
      return softmax(add(logits, noise), ctx.temperature);
    }
    case Normalizer::ReluSoftmax: {
      const float lam = std::clamp(ctx.anneal_progress, 0.f, 1.f);
      if (lam <= 0.f) return softmax(logits, 1.f);
      Tensor rn = row_normalize(relu(logits));
      if (lam >= 1.f) return rn;
      return add(mul_scalar(softmax(logits, 1.f), 1.f - lam), mul_scalar(rn, lam));
    }
  }
  MN_THROW("normalize: invalid normalizer ", static_cast<int>(ctx.normalizer));
}

std::vector<float> normalize_host(const std::vector<float>& logits, int rows, int cols,
                                  const ForwardContext& ctx) {
  MN_CHECK(rows >= 0 && cols > 0 && static_cast<size_t>(rows) * static_cast<size_t>(cols) == logits.size(),
           "normalize_host: ", logits.size(), " logits do not form ", rows, " x ", cols);
  std::vector<float> out(logits.size(), 0.f);
  const float lam = std::clamp(ctx.anneal_progress, 0.f, 1.f);
  const bool relu_sm = ctx.normalizer == Normalizer::ReluSoftmax;
  const double t = relu_sm ? 1.0 : static_cast<double>(ctx.temperature);
  if (!relu_sm) check_temperature(ctx.temperature);
  for (int r = 0; r < rows; ++r) {
    const float* a = logits.data() + static_cast<size_t>(r) * cols;
    float* y = out.data() + static_cast<size_t>(r) * cols;
    double mx = -INFINITY;
    for (int c = 0; c < cols; ++c) mx = std::max(mx, a[c] / t);
    double z = 0;
    for (int c = 0; c < cols; ++c) z += std::exp(a[c] / t - mx);
    std::vector<double> sm(static_cast<size_t>(cols));
    for (int c = 0; c < cols; ++c) sm[static_cast<size_t>(c)] = std::exp(a[c] / t - mx) / z;
    if (!relu_sm || lam <= 0.f) {
      for (int c = 0; c < cols; ++c) y[c] = static_cast<float>(sm[static_cast<size_t>(c)]);
      continue;
    }
    double s = 0;
    for (int c = 0; c < cols; ++c) s += std::max(a[c], 0.f);
    for (int c = 0; c < cols; ++c) {
      const double rn = s > 0 ? std::max(a[c], 0.f) / s : 0.0;
      y[c] = static_cast<float>(lam >= 1.f ? rn : (1.0 - lam) * sm[static_cast<size_t>(c)] + lam * rn);
    }
  }
  return out;
}

}  // namespace metanas::nas
