// Optimizers against double-precision references of the PyTorch update rules
// (SGD with momentum / weight decay, Adam with bias correction and L2 weight
// decay), gradient-norm clipping, and save / restore of optimizer state.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "metanas/engine/checkpoint.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/optim.h"

using namespace metanas;
using Catch::Contains;

namespace {

constexpr int kN = 8;  // w [5] + b [3]

ParamSet make_set(const char* w = "w", Shape wshape = {5}) {
  ParamSet ps;
  ps.add(w, wshape);
  ps.add("b", {3});
  ps.finalize();
  return ps;
}

std::vector<double> init_values() {
  std::vector<double> p(kN);
  for (int i = 0; i < kN; ++i) p[i] = 0.3 * std::cos(1.0 + i) - 0.1;
  return p;
}

// Gradient at step s: varies in sign and size, including one tiny element.
std::vector<double> grad_at(int s) {
  std::vector<double> g(kN);
  for (int i = 0; i < kN; ++i) g[i] = std::sin(0.7 * i + 1.3 * s) * (1.0 + 0.5 * i);
  g[3] = 1e-4 * (s + 1);
  return g;
}

std::vector<float> to_f(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

void set_values(ParamSet& ps, const std::vector<double>& v) {
  ps.values().copy_(Tensor::from_vector(to_f(v), Shape{ps.numel()}));
}
void set_grads(ParamSet& ps, const std::vector<double>& g) {
  ps.grads().copy_(Tensor::from_vector(to_f(g), Shape{ps.numel()}));
}

double l2(const std::vector<double>& g) {
  double s = 0;
  for (double x : g) s += x * x;
  return std::sqrt(s);
}

// The clipping factor of Optimizer::max_grad_norm (0: off).
double clip_factor(const std::vector<double>& g, double max_norm) {
  if (max_norm <= 0) return 1.0;
  return std::min(1.0, max_norm / (l2(g) + 1e-6));
}

// torch.optim.SGD (dampening 0, no Nesterov): the buffer starts as the first gradient.
struct RefSgd {
  double lr, momentum, wd, max_norm = 0;
  std::vector<double> buf;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    const double c = clip_factor(g, max_norm);
    const bool first = buf.empty();
    if (momentum != 0 && first) buf.assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] * c + wd * p[i];
      if (momentum != 0) {
        buf[i] = first ? d : momentum * buf[i] + d;
        d = buf[i];
      }
      p[i] -= lr * d;
    }
  }
};

// torch.optim.Adam (amsgrad off, L2 weight decay added to the gradient).
struct RefAdam {
  double lr, b1, b2, eps, wd, max_norm = 0;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    ++t;
    const double c = clip_factor(g, max_norm);
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      const double gi = g[i] * c + wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      const double denom = std::sqrt(v[i]) / std::sqrt(bc2) + eps;
      p[i] -= lr / bc1 * m[i] / denom;
    }
  }
};

void require_close(const std::vector<float>& got, const std::vector<double>& want, double rel = 2e-5,
                   double abs = 2e-6) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    REQUIRE(std::abs(got[i] - want[i]) <= abs + rel * std::abs(want[i]));
  }
}

// A scratch directory removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("metanas_optim_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::string file(const char* name) const { return (path / name).string(); }
};

}  // namespace

TEST_CASE("SGD matches PyTorch with and without momentum and weight decay", "[optim]") {
  struct Cfg { float lr, momentum, wd; };
  for (Cfg cfg : {Cfg{0.1f, 0.f, 0.f}, Cfg{0.05f, 0.f, 0.1f}, Cfg{0.1f, 0.9f, 0.f}, Cfg{0.02f, 0.8f, 0.05f}}) {
    INFO("lr " << cfg.lr << " momentum " << cfg.momentum << " wd " << cfg.wd);
    ParamSet ps = make_set();
    std::vector<double> p = init_values();
    set_values(ps, p);
    Sgd opt(ps, cfg.lr, cfg.momentum, cfg.wd);
    RefSgd ref{cfg.lr, cfg.momentum, cfg.wd};
    for (int s = 0; s < 4; ++s) {
      set_grads(ps, grad_at(s));
      opt.step();
      ref.step(p, grad_at(s));
      require_close(ps.values().to_vector(), p);
    }
  }
}

TEST_CASE("Adam matches PyTorch for 3 steps (bias correction, weight decay, beta1 = 0)", "[optim]") {
  struct Cfg { float lr, b1, b2, eps, wd; };
  for (Cfg cfg : {Cfg{0.1f, 0.9f, 0.999f, 1e-8f, 0.f}, Cfg{0.05f, 0.9f, 0.99f, 1e-3f, 0.1f},
                  Cfg{0.1f, 0.f, 0.9f, 1e-8f, 0.01f}}) {
    INFO("lr " << cfg.lr << " beta1 " << cfg.b1 << " beta2 " << cfg.b2 << " eps " << cfg.eps << " wd " << cfg.wd);
    ParamSet ps = make_set();
    std::vector<double> p = init_values();
    set_values(ps, p);
    Adam opt(ps, cfg.lr, cfg.b1, cfg.b2, cfg.eps, cfg.wd);
    RefAdam ref{cfg.lr, cfg.b1, cfg.b2, cfg.eps, cfg.wd};
    for (int s = 0; s < 3; ++s) {
      set_grads(ps, grad_at(s));
      opt.step();
      ref.step(p, grad_at(s));
      REQUIRE(opt.steps() == s + 1);
      require_close(ps.values().to_vector(), p);
      require_close(opt.exp_avg().to_vector(), ref.m);
      require_close(opt.exp_avg_sq().to_vector(), ref.v);
    }
  }
}

TEST_CASE("gradient-norm clipping scales the gradient by min(1, max / ||g||)", "[optim]") {
  const std::vector<double> g = grad_at(1);
  const double norm = l2(g);
  REQUIRE(norm > 1.0);
  for (double max_norm : {0.5 * norm, 2.0 * norm}) {
    INFO("max_grad_norm " << max_norm << " vs ||g|| " << norm);
    ParamSet ps = make_set();
    std::vector<double> p = init_values();
    set_values(ps, p);
    Sgd opt(ps, 1.f);
    opt.max_grad_norm = static_cast<float>(max_norm);
    set_grads(ps, g);
    opt.step();
    const double c = std::min(1.0, max_norm / (norm + 1e-6));
    for (int i = 0; i < kN; ++i) p[i] -= c * g[i];
    require_close(ps.values().to_vector(), p);
    // The gradient buffer itself is not modified by clipping.
    require_close(ps.grads().to_vector(), g);
  }
  // Adam with weight decay: the clipped gradient changes the result.
  ParamSet ps = make_set();
  std::vector<double> p = init_values();
  set_values(ps, p);
  Adam opt(ps, 0.05f, 0.9f, 0.99f, 1e-8f, 0.5f);
  opt.max_grad_norm = 0.3f;
  RefAdam ref{0.05, 0.9, 0.99, 1e-8, 0.5, 0.3};
  for (int s = 0; s < 3; ++s) {
    set_grads(ps, grad_at(s));
    opt.step();
    ref.step(p, grad_at(s));
  }
  require_close(ps.values().to_vector(), p);
}

TEST_CASE("Adam trains through backward() on the flat buffers", "[optim]") {
  ParamSet ps = make_set();
  set_values(ps, init_values());
  Adam opt(ps, 0.05f);
  // L = sum((w - 1)^2) + sum((b + 2)^2), minimised at w = 1, b = -2.
  auto loss_fn = [&] {
    Tensor dw = add_scalar(ps.get("w"), -1.f), db = add_scalar(ps.get("b"), 2.f);
    return add(sum(mul(dw, dw)), sum(mul(db, db)));
  };
  const float start = loss_fn().item();
  for (int s = 0; s < 300; ++s) {
    opt.zero_grad();
    loss_fn().backward();
    opt.step();
  }
  const float end = loss_fn().item();
  INFO("loss " << start << " -> " << end);
  REQUIRE(end < 1e-3f * start);
}

TEST_CASE("optimizer state round-trips through a checkpoint: the next steps are identical", "[optim]") {
  TempDir dir;
  SECTION("Adam") {
    ParamSet a = make_set();
    set_values(a, init_values());
    Adam oa(a, 0.05f, 0.8f, 0.99f, 1e-6f, 0.02f);
    oa.max_grad_norm = 2.f;
    for (int s = 0; s < 3; ++s) {
      set_grads(a, grad_at(s));
      oa.step();
    }
    Checkpoint ck;
    ck.put_params("params.", a);
    oa.save_state(ck, "opt.");
    ck.save(dir.file("adam.ckpt"));

    const Checkpoint ld = Checkpoint::load(dir.file("adam.ckpt"));
    ParamSet b = make_set();
    Adam ob(b, 1.f, 0.5f, 0.5f, 1e-2f, 0.f);  // different hyperparameters: restored from the file
    ld.get_params("params.", b);
    ob.load_state(ld, "opt.");
    REQUIRE(ob.steps() == 3);
    REQUIRE(ob.lr() == oa.lr());
    REQUIRE(ob.beta1 == oa.beta1);
    REQUIRE(ob.beta2 == oa.beta2);
    REQUIRE(ob.eps == oa.eps);
    REQUIRE(ob.weight_decay == oa.weight_decay);
    REQUIRE(ob.max_grad_norm == oa.max_grad_norm);
    REQUIRE(b.values().to_vector() == a.values().to_vector());
    for (int s = 3; s < 6; ++s) {
      set_grads(a, grad_at(s));
      set_grads(b, grad_at(s));
      oa.step();
      ob.step();
      REQUIRE(b.values().to_vector() == a.values().to_vector());  // bitwise
      REQUIRE(ob.exp_avg_sq().to_vector() == oa.exp_avg_sq().to_vector());
    }
  }
  SECTION("SGD with momentum, before and after the first step") {
    for (int warm : {0, 2}) {
      INFO("steps before saving: " << warm);
      ParamSet a = make_set();
      set_values(a, init_values());
      Sgd oa(a, 0.1f, 0.9f, 0.01f);
      for (int s = 0; s < warm; ++s) {
        set_grads(a, grad_at(s));
        oa.step();
      }
      Checkpoint ck;
      ck.put_params("params.", a);
      oa.save_state(ck, "opt.");
      ck.save(dir.file("sgd.ckpt"));
      const Checkpoint ld = Checkpoint::load(dir.file("sgd.ckpt"));
      ParamSet b = make_set();
      Sgd ob(b, 0.5f, 0.1f, 0.f);
      set_grads(b, grad_at(9));
      ob.step();  // stale momentum that load_state must replace
      ld.get_params("params.", b);
      ob.load_state(ld, "opt.");
      REQUIRE(ob.momentum == oa.momentum);
      for (int s = warm; s < warm + 3; ++s) {
        set_grads(a, grad_at(s));
        set_grads(b, grad_at(s));
        oa.step();
        ob.step();
        REQUIRE(b.values().to_vector() == a.values().to_vector());
      }
    }
  }
}

TEST_CASE("loading optimizer state into a mismatched set or optimizer is a clear error", "[optim]") {
  ParamSet a = make_set();
  Adam oa(a, 0.1f);
  set_grads(a, grad_at(0));
  oa.step();
  Checkpoint ck;
  oa.save_state(ck, "opt.");
  Sgd sa(a, 0.1f, 0.9f);
  sa.step();
  sa.save_state(ck, "sgd_opt.");

  ParamSet renamed = make_set("v");
  Adam o1(renamed, 0.1f);
  REQUIRE_THROWS_WITH(o1.load_state(ck, "opt."), Contains("'v'") && Contains("opt.adam.exp_avg.v"));
  REQUIRE(o1.steps() == 0);  // nothing was half-loaded

  ParamSet reshaped = make_set("w", {1, 5});
  Adam o2(reshaped, 0.1f);
  REQUIRE_THROWS_WITH(o2.load_state(ck, "opt."), Contains("'w'") && Contains("[1, 5]") && Contains("[5]"));

  ParamSet smaller;
  smaller.add("w", {5});
  smaller.finalize();
  Adam o3(smaller, 0.1f);
  REQUIRE_THROWS_WITH(o3.load_state(ck, "opt."), Contains("2 parameters") && Contains("1"));

  Adam o4(a, 0.1f);
  REQUIRE_THROWS_WITH(o4.load_state(ck, "sgd_opt."), Contains("different optimizer"));
  REQUIRE_THROWS_WITH(o4.load_state(ck, "nothing."), Contains("nothing."));
  Sgd o5(a, 0.1f);
  REQUIRE_THROWS_WITH(o5.load_state(ck, "opt."), Contains("different optimizer"));

  REQUIRE_THROWS_WITH(Adam(a, 0.1f, 1.f), Contains("beta1"));
  REQUIRE_THROWS_WITH(Sgd(a, -1.f), Contains("learning rate"));
  ParamSet unfinished;
  unfinished.add("w", {2});
  Sgd o6(unfinished, 0.1f);
  REQUIRE_THROWS_WITH(o6.step(), Contains("not finalized"));
}
