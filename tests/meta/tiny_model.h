// Test support for the meta-learning tests: a tiny model with weights and
// alphas (logits = W (w0 x + w1 x*x) + b, (w0, w1) = softmax(alpha / T)), its
// loss in double precision with central-difference gradients (the
// hand-computed reference), a torch-semantics Adam in double, and episode
// builders.
#pragma once
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "metanas/meta/config.h"
#include "metanas/nas/model.h"

namespace metanas::testing {

// D inputs (images [N, 1, 1, D]), K classes, two candidate "ops".
class TinyModel : public nas::Model {
 public:
  TinyModel(int D, int K, Rng& rng) : D_(D), K_(K), log_(std::make_shared<Log>()) {
    weights_.add("fc.w", Shape{K, D});
    weights_.add("fc.b", Shape{K});
    weights_.finalize();
    alphas_.add("alpha", Shape{1, 2});
    alphas_.finalize();
    std::vector<float> w(weights_.numel());
    for (auto& v : w) v = 0.5f * rng.normal();
    weights_.values().copy_(Tensor::from_vector(w, Shape{weights_.numel()}));
    alphas_.values().copy_(Tensor::from_vector({0.3f * rng.normal(), 0.3f * rng.normal()}, Shape{2}));
  }
  Tensor forward(const Tensor& x, const nas::ForwardContext& ctx) override {
    {
      // Clones share the log and the task-parallel meta-step forwards them
      // concurrently (one task per thread): an unlocked push_back corrupted
      // the heap there (docs/results.md, CPU speed part 4).
      std::lock_guard<std::mutex> lock(log_->mu);
      log_->t.push_back(ctx.temperature);
    }
    Tensor xf = x.reshape(Shape{x.dim(0), D_});
    Tensor w = select_row(softmax(alphas_[0], ctx.temperature), 0);
    Tensor mixed = weighted_sum({xf, mul(xf, xf)}, w);
    return linear(mixed, weights_[0], weights_[1]);
  }
  ParamSet& weights() override { return weights_; }
  const ParamSet& weights() const override { return weights_; }
  ParamSet* alphas() override { return &alphas_; }
  const ParamSet* alphas() const override { return &alphas_; }
  std::string kind() const override { return "tiny"; }
  int num_classes() const override { return K_; }
  std::unique_ptr<nas::Model> clone() const override {
    Rng r(0);
    auto c = std::make_unique<TinyModel>(D_, K_, r);
    c->weights_.copy_from(weights_);
    c->alphas_.copy_from(alphas_);
    c->log_ = log_;  // clones share the temperature log
    return c;
  }
  // Temperatures of every forward of this model and its clones.
  // Read or clear it only while no meta-step runs.
  std::vector<float>& temperature_log() { return log_->t; }

 private:
  int D_, K_;
  ParamSet weights_, alphas_;
  struct Log {
    std::mutex mu;
    std::vector<float> t;
  };
  std::shared_ptr<Log> log_;
};

// Parameters of the tiny model in double: W (K x D), b (K), a (2).
struct TinyParams {
  std::vector<double> W, b, a;
  static TinyParams of(const nas::Model& m) {
    TinyParams p;
    for (float v : m.weights()[0].to_vector()) p.W.push_back(v);
    for (float v : m.weights()[1].to_vector()) p.b.push_back(v);
    for (float v : m.alphas()->values().to_vector()) p.a.push_back(v);
    return p;
  }
  // All values flattened W, b, a (for finite differences).
  std::vector<double*> all() {
    std::vector<double*> r;
    for (auto& v : W) r.push_back(&v);
    for (auto& v : b) r.push_back(&v);
    for (auto& v : a) r.push_back(&v);
    return r;
  }
};

struct TinyBatch {
  std::vector<double> x;  // N x D
  std::vector<int> y;
};

// Mean cross-entropy of the tiny model in double.
inline double tiny_loss(const TinyParams& p, const TinyBatch& b, double T, int D, int K) {
  const double m = std::max(p.a[0], p.a[1]);
  const double e0 = std::exp((p.a[0] - m) / T), e1 = std::exp((p.a[1] - m) / T);
  const double w0 = e0 / (e0 + e1), w1 = e1 / (e0 + e1);
  const int N = static_cast<int>(b.y.size());
  double total = 0;
  std::vector<double> z(K);
  for (int n = 0; n < N; ++n) {
    double zmax = -1e300;
    for (int k = 0; k < K; ++k) {
      double s = p.b[k];
      for (int d = 0; d < D; ++d) {
        const double xv = b.x[n * D + d];
        s += p.W[k * D + d] * (w0 * xv + w1 * xv * xv);
      }
      z[k] = s;
      zmax = std::max(zmax, s);
    }
    double se = 0;
    for (int k = 0; k < K; ++k) se += std::exp(z[k] - zmax);
    total += -(z[b.y[n]] - zmax - std::log(se));
  }
  return total / N;
}

// Central-difference gradient of tiny_loss in double: {gW, gb, ga}.
inline TinyParams tiny_grad(const TinyParams& p, const TinyBatch& b, double T, int D, int K) {
  TinyParams g = p, q = p;
  auto qs = q.all();
  auto gs = g.all();
  const double h = 1e-6;
  for (size_t i = 0; i < qs.size(); ++i) {
    const double v = *qs[i];
    *qs[i] = v + h;
    const double lp = tiny_loss(q, b, T, D, K);
    *qs[i] = v - h;
    const double lm = tiny_loss(q, b, T, D, K);
    *qs[i] = v;
    *gs[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// torch.optim.Adam (L2 weight decay added to the gradient) in double, with
// optional gradient-norm clipping before the update.
struct RefAdam {
  double lr, b1, b2, eps = 1e-8, wd = 0, clip = 0;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double*> p, std::vector<double> g) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    if (clip > 0) {
      double n2 = 0;
      for (double x : g) n2 += x * x;
      const double s = std::min(1.0, clip / std::sqrt(n2));
      for (double& x : g) x *= s;
    }
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      const double gi = g[i] + wd * *p[i];
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      const double mh = m[i] / (1 - std::pow(b1, t)), vh = v[i] / (1 - std::pow(b2, t));
      *p[i] -= lr * mh / (std::sqrt(vh) + eps);
    }
  }
};

// Max |x - y| over all parameters.
inline double max_diff(const TinyParams& x, const TinyParams& y) {
  TinyParams a = x, b = y;
  auto pa = a.all(), pb = b.all();
  double d = 0;
  for (size_t i = 0; i < pa.size(); ++i) d = std::max(d, std::abs(*pa[i] - *pb[i]));
  return d;
}
// Max |float - double| between a tiny model's parameters and a reference.
inline double max_diff(const nas::Model& m, const TinyParams& ref) { return max_diff(TinyParams::of(m), ref); }

// The W and b entries (weights) / the alpha entries of a TinyParams.
inline std::vector<double*> tiny_w(TinyParams& p) {
  std::vector<double*> r;
  for (auto& v : p.W) r.push_back(&v);
  for (auto& v : p.b) r.push_back(&v);
  return r;
}
inline std::vector<double*> tiny_a(TinyParams& p) {
  std::vector<double*> r;
  for (auto& v : p.a) r.push_back(&v);
  return r;
}
inline std::vector<double> tiny_wg(const TinyParams& g) {
  std::vector<double> r = g.W;
  r.insert(r.end(), g.b.begin(), g.b.end());
  return r;
}

// A CPU episode of the tiny model's shapes with random inputs in [0, 1).
inline data::Episode tiny_episode(int D, int K, int shots, int queries, Rng& rng) {
  data::Episode ep;
  ep.ways = K;
  ep.shots = shots;
  ep.queries = queries;
  auto make = [&](int per, Tensor& x, Tensor& y) {
    std::vector<float> xs;
    std::vector<int32_t> ys;
    for (int k = 0; k < K; ++k)
      for (int i = 0; i < per; ++i) {
        for (int d = 0; d < D; ++d) xs.push_back(rng.uniform());
        ys.push_back(k);
      }
    x = Tensor::from_vector(xs, Shape{K * per, 1, 1, D});
    y = Tensor::from_ints(ys, Shape{K * per});
  };
  make(shots, ep.support_x, ep.support_y);
  make(queries, ep.query_x, ep.query_y);
  return ep;
}

inline TinyBatch tiny_batch(const Tensor& x, const Tensor& y) {
  TinyBatch b;
  for (float v : x.to_vector()) b.x.push_back(v);
  for (int32_t v : y.to_int_vector()) b.y.push_back(v);
  return b;
}

// A configuration for the tiny model (K classes; the search section is only
// there to satisfy validation).
inline meta::MetaConfig tiny_config(int K) {
  meta::MetaConfig c;
  c.model.search.num_classes = K;
  c.episodes.ways = K;
  c.task.batch_size = 0;
  c.task.drop_path_prob = 0.f;
  c.task.prune_threshold = -1.f;
  c.meta.warmup_iterations = 0;
  c.meta.prune_every = 0;
  return c;
}

}  // namespace metanas::testing
