// ParamSet: views over one flat buffer, gradients accumulated into the flat
// grad buffer, whole-set arithmetic (copy / lerp / axpy / scale / norms) and
// the layout errors.
#include <catch2/catch.hpp>
#include <cmath>

#include "metanas/engine/error.h"
#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"

using namespace metanas;
using Catch::Contains;

namespace {

// a [2, 3], b [4], c [] (a scalar): 11 elements.
ParamSet make_set() {
  ParamSet ps;
  ps.add("a", {2, 3});
  ps.add("b", {4});
  ps.add("c", {});
  ps.finalize();
  return ps;
}

std::vector<float> iota(size_t n, float start, float step) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + step * static_cast<float>(i);
  return v;
}

void set_values(ParamSet& ps, const std::vector<float>& v) {
  ps.values().copy_(Tensor::from_vector(v, Shape{ps.numel()}));
}

}  // namespace

TEST_CASE("parameters are views of one contiguous buffer", "[param_set]") {
  ParamSet ps = make_set();
  REQUIRE(ps.size() == 3);
  REQUIRE(ps.numel() == 11);
  REQUIRE(ps.offset(0) == 0);
  REQUIRE(ps.offset(1) == 6);
  REQUIRE(ps.offset(2) == 10);
  REQUIRE(ps.values().shape() == Shape{11});
  REQUIRE(ps.grads().shape() == Shape{11});
  for (int i = 0; i < ps.size(); ++i) {
    REQUIRE(ps[i].impl()->storage == ps.values().impl()->storage);
    REQUIRE(ps[i].requires_grad());
    REQUIRE(ps[i].is_leaf());
    REQUIRE(ps[i].name() == ps.name(i));
    REQUIRE(ps[i].grad().impl()->storage == ps.grads().impl()->storage);
  }
  // Starts at zero; writing through the flat buffer shows in the views ...
  for (float x : ps.values().to_vector()) REQUIRE(x == 0.f);
  set_values(ps, iota(11, 1.f, 1.f));
  REQUIRE(ps.get("a").to_vector() == iota(6, 1.f, 1.f));
  REQUIRE(ps.get("b").to_vector() == iota(4, 7.f, 1.f));
  REQUIRE(ps.get("c").item() == 11.f);
  // ... and writing through a view shows in the flat buffer.
  ps.get("b").fill_(-2.f);
  auto all = ps.values().to_vector();
  for (int i = 0; i < 11; ++i) REQUIRE(all[i] == (i >= 6 && i < 10 ? -2.f : static_cast<float>(i + 1)));
  REQUIRE(ps.contains("b"));
  REQUIRE_FALSE(ps.contains("d"));
  REQUIRE(ps.index_of("c") == 2);
}

TEST_CASE("backward accumulates straight into the flat gradient buffer", "[param_set]") {
  ParamSet ps = make_set();
  std::vector<float> v = iota(11, -1.f, 0.25f);
  set_values(ps, v);
  // L = sum(a * a) + 3 sum(b) + c * c  ->  dL/da = 2a, dL/db = 3, dL/dc = 2c
  auto loss = [&] {
    return add(add(sum(mul(ps[0], ps[0])), sum(mul_scalar(ps[1], 3.f))), sum(mul(ps[2], ps[2])));
  };
  std::vector<double> expect(11);
  for (int i = 0; i < 6; ++i) expect[i] = 2.0 * v[i];
  for (int i = 6; i < 10; ++i) expect[i] = 3.0;
  expect[10] = 2.0 * v[10];

  loss().backward();
  auto g = ps.grads().to_vector();
  for (int i = 0; i < 11; ++i) REQUIRE(g[i] == Approx(expect[i]));
  // The view's grad() is the same memory, not a copy.
  REQUIRE(ps[0].grad().to_vector()[1] == Approx(expect[1]));
  REQUIRE(ps[0].grad().impl()->storage == ps.grads().impl()->storage);

  loss().backward();  // accumulates (+=)
  g = ps.grads().to_vector();
  for (int i = 0; i < 11; ++i) REQUIRE(g[i] == Approx(2 * expect[i]));
  double ss = 0;
  for (int i = 0; i < 11; ++i) ss += 4 * expect[i] * expect[i];
  REQUIRE(ps.grad_norm() == Approx(std::sqrt(ss)));

  ps.zero_grad();
  for (float x : ps.grads().to_vector()) REQUIRE(x == 0.f);
  loss().backward();  // still wired to the buffer after zeroing
  REQUIRE(ps.grads().to_vector()[7] == Approx(3.0));
}

TEST_CASE("copy_from, lerp_, axpy_, scale_ and norm match hand-computed values", "[param_set]") {
  ParamSet x = make_set(), y = make_set();
  Rng rng(7);
  std::vector<float> xv(11), yv(11);
  for (auto& e : xv) e = rng.normal();
  for (auto& e : yv) e = rng.normal();
  set_values(x, xv);
  set_values(y, yv);

  double ss = 0;
  for (float e : xv) ss += double(e) * e;
  REQUIRE(x.norm() == Approx(std::sqrt(ss)).epsilon(1e-6));

  ParamSet z = x.clone();
  REQUIRE(z.same_layout(x));
  REQUIRE(z.values().impl()->storage != x.values().impl()->storage);  // own buffers
  REQUIRE(z.values().to_vector() == xv);

  z.lerp_(y, 0.3f);
  auto zv = z.values().to_vector();
  for (int i = 0; i < 11; ++i) REQUIRE(zv[i] == Approx(xv[i] + 0.3 * (double(yv[i]) - xv[i])).margin(1e-6));
  REQUIRE(x.values().to_vector() == xv);  // the source is untouched

  z.copy_from(x);
  REQUIRE(z.values().to_vector() == xv);
  z.axpy_(y, -1.5f);
  zv = z.values().to_vector();
  for (int i = 0; i < 11; ++i) REQUIRE(zv[i] == Approx(xv[i] - 1.5 * double(yv[i])).margin(1e-6));

  z.scale_(0.5f);
  auto zv2 = z.values().to_vector();
  for (int i = 0; i < 11; ++i) REQUIRE(zv2[i] == Approx(0.5 * double(zv[i])).margin(1e-7));

  // copy_from copies values only; the views still alias z's own buffer.
  z.copy_from(y);
  REQUIRE(z.get("b").to_vector() == std::vector<float>(yv.begin() + 6, yv.begin() + 10));
}

TEST_CASE("REPTILE meta-update theta += eps (theta_task - theta)", "[param_set]") {
  ParamSet meta = make_set();
  Rng rng(3);
  std::vector<float> theta(11);
  for (auto& e : theta) e = rng.normal();
  set_values(meta, theta);

  // Task adaptation: a few plain gradient steps on L = sum((p - 1)^2) of a copy.
  ParamSet task = meta.clone();
  for (int step = 0; step < 3; ++step) {
    task.zero_grad();
    Tensor loss;
    for (int i = 0; i < task.size(); ++i) {
      Tensor d = add_scalar(task[i], -1.f);
      Tensor li = sum(mul(d, d));
      loss = loss.defined() ? add(loss, li) : li;
    }
    loss.backward();
    Tensor g = task.grads();
    task.values().add_(g, -0.1f);
  }
  // The meta gradient stays clean: only the task copy saw backward().
  for (float e : meta.grads().to_vector()) REQUIRE(e == 0.f);

  // Hand-computed: each step p <- p - 0.1 * 2 (p - 1) = 0.8 p + 0.2.
  std::vector<double> task_expect(11);
  for (int i = 0; i < 11; ++i) {
    double p = theta[i];
    for (int s = 0; s < 3; ++s) p = 0.8 * p + 0.2;
    task_expect[i] = p;
  }
  auto tv = task.values().to_vector();
  for (int i = 0; i < 11; ++i) REQUIRE(tv[i] == Approx(task_expect[i]).margin(1e-6));

  const float eps = 0.25f;
  meta.lerp_(task, eps);
  auto mv = meta.values().to_vector();
  for (int i = 0; i < 11; ++i)
    REQUIRE(mv[i] == Approx(theta[i] + eps * (task_expect[i] - theta[i])).margin(1e-6));
}

TEST_CASE("ParamSet errors name the parameter and the problem", "[param_set]") {
  ParamSet ps;
  ps.add("w", {3, 2});
  REQUIRE_THROWS_WITH(ps.add("w", {2}), Contains("duplicate") && Contains("'w'"));
  REQUIRE_THROWS_WITH(ps[0], Contains("not finalized"));
  REQUIRE_THROWS_WITH(ps.add("bad", Shape{2, -1}), Contains("negative") && Contains("bad"));
  ps.finalize();
  REQUIRE_THROWS_WITH(ps.add("v", {2}), Contains("already finalized") && Contains("'v'"));
  REQUIRE_THROWS_WITH(ps.finalize(), Contains("already finalized"));
  REQUIRE_THROWS_WITH(ps.get("nope"), Contains("'nope'") && Contains("'w'"));
  REQUIRE_THROWS_WITH(ps[5], Contains("out of range"));

  ParamSet same = ps.clone(), renamed, reshaped, longer;
  renamed.add("u", {3, 2});
  renamed.finalize();
  reshaped.add("w", {2, 3});
  reshaped.finalize();
  longer.add("w", {3, 2});
  longer.add("extra", {5});
  longer.finalize();
  REQUIRE_NOTHROW(ps.copy_from(same));
  REQUIRE_FALSE(ps.same_layout(renamed));
  REQUIRE_THROWS_WITH(ps.copy_from(renamed), Contains("copy_from") && Contains("'w'") && Contains("'u'"));
  REQUIRE_THROWS_WITH(ps.lerp_(reshaped, 0.5f), Contains("lerp_") && Contains("[3, 2]") && Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(ps.axpy_(longer, 1.f), Contains("axpy_") && Contains("'extra'"));
  REQUIRE_THROWS_WITH(longer.axpy_(ps, 1.f), Contains("'extra'") && Contains("this set"));

  ParamSet unfinished;
  unfinished.add("w", {3, 2});
  REQUIRE_THROWS_WITH(ps.copy_from(unfinished), Contains("finalized"));
  REQUIRE_THROWS_WITH(unfinished.zero_grad(), Contains("not finalized"));
}

TEST_CASE("an empty set and moving to the same device are harmless", "[param_set]") {
  ParamSet e;
  e.finalize();
  REQUIRE(e.numel() == 0);
  REQUIRE(e.norm() == 0.f);
  e.zero_grad();
  e.scale_(2.f);
  ParamSet ps = make_set();
  set_values(ps, iota(11, 0.f, 1.f));
  Tensor before = ps[1];
  ps.to(Device::CPU);
  REQUIRE(ps[1].same_as(before));
  REQUIRE(ps.values().to_vector() == iota(11, 0.f, 1.f));
}
