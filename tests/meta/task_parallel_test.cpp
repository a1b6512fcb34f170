// meta.task_parallel: every task starts from the task-optimizer state the
// previous meta-step left, and the meta-step keeps the mean of the tasks'
// end states. Checked against a hand-written double-precision reference on
// the tiny model (the reference adapts the tasks in reverse order: in this
// mode nothing may flow between them), and bitwise independent of the
// thread count on a search network with drop-path and random batches.
#include <catch2/catch.hpp>
#include <omp.h>

#include "metanas/meta/reptile.h"
#include "metanas/nas/search_network.h"
#include "tests/meta/fixtures.h"
#include "tests/meta/tiny_model.h"

using namespace metanas;
using namespace metanas::testing;

namespace {
constexpr int D = 3, K = 3;
}

TEST_CASE("task-parallel Reptile equals a reference with per-task copies of the start state", "[meta][parallel]") {
  Rng rng(17);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  meta::MetaConfig cfg = tiny_config(K);
  cfg.task.steps = 2;
  cfg.task.t_max = 1.0;
  cfg.task.t_min = 0.4;
  cfg.task.darts.w_lr = 0.1f;
  cfg.task.darts.a_lr = 0.05f;
  cfg.meta.query_eval = false;
  cfg.meta.task_parallel = true;
  TinyParams meta_ref = TinyParams::of(*model);
  meta::Reptile learner(cfg, std::move(model));
  RefAdam aw{0.1, 0.0, 0.999}, aa{0.05, 0.0, 0.999};  // the state the meta-steps leave
  aw.clip = cfg.task.darts.w_grad_clip;
  aa.wd = cfg.task.darts.a_weight_decay;

  for (int it = 0; it < 3; ++it) {
    std::vector<data::Episode> eps;
    for (int t = 0; t < 3; ++t) eps.push_back(tiny_episode(D, K, 2, 1, rng));
    std::vector<TinyParams> adapted(eps.size());
    std::vector<RefAdam> end_w(eps.size(), aw), end_a(eps.size(), aa);
    for (size_t t = eps.size(); t-- > 0;) {  // reverse order: the tasks are independent
      TinyParams p = meta_ref;
      const TinyBatch b = tiny_batch(eps[t].support_x, eps[t].support_y);
      for (int s = 0; s < 2; ++s) {
        const double T = s == 0 ? 1.0 : 0.4;
        end_a[t].step(tiny_a(p), tiny_grad(p, b, T, D, K).a);
        end_w[t].step(tiny_w(p), tiny_wg(tiny_grad(p, b, T, D, K)));
      }
      adapted[t] = p;
    }
    // Mean end state, in task order.
    for (RefAdam* r : {&aw, &aa}) {
      std::vector<RefAdam>& ends = r == &aw ? end_w : end_a;
      r->t = ends[0].t;
      r->m.assign(ends[0].m.size(), 0.0);
      r->v.assign(ends[0].v.size(), 0.0);
      for (const RefAdam& e : ends)
        for (size_t i = 0; i < e.m.size(); ++i) {
          r->m[i] += e.m[i] / ends.size();
          r->v[i] += e.v[i] / ends.size();
        }
    }
    TinyParams next = meta_ref;
    auto pn = next.all(), po = meta_ref.all();
    const size_t nw = meta_ref.W.size() + meta_ref.b.size();
    for (size_t i = 0; i < pn.size(); ++i) {
      double mean = 0;
      for (auto& a : adapted) mean += *a.all()[i];
      mean /= adapted.size();
      *pn[i] = *po[i] + (i < nw ? 1.0 : 0.6) * (mean - *po[i]);
    }
    meta_ref = next;
    learner.meta_step(eps);
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 2e-5);
  }
  // Each meta-step advanced the common state by one task's steps only.
  CHECK(learner.task_learner().darts()->w_optimizer().steps() == 3 * 2);
}

TEST_CASE("task-parallel Reptile differs from the carried-state mode and is thread-count independent",
          "[meta][parallel]") {
  auto run = [](bool parallel, int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Rng rng(23);
    meta::MetaConfig cfg = tiny_config(3);
    cfg.task.drop_path_prob = 0.2f;  // MetaNAS's drop-path and soft pruning back on
    cfg.task.prune_threshold = 0.01f;
    cfg.task.steps = 2;
    cfg.task.batch_size = 4;  // random batches: per-task generators matter
    cfg.meta.meta_batch_size = 3;
    cfg.meta.warmup_iterations = 0;
    cfg.meta.query_eval = false;
    cfg.meta.task_parallel = parallel;
    auto net = std::make_unique<nas::SearchNetwork>(tiny_search_config(1, 2), rng);
    meta::Reptile learner(cfg, std::move(net));
    for (int it = 0; it < 2; ++it) {
      std::vector<data::Episode> eps;
      for (int t = 0; t < 3; ++t) eps.push_back(random_episode(rng, {0, 0, 1, 1, 2, 2}, {0, 1, 2}));
      learner.meta_step(eps);
    }
    std::vector<float> out = learner.meta_model().weights().values().to_vector();
    const std::vector<float> a = learner.meta_model().alphas()->values().to_vector();
    out.insert(out.end(), a.begin(), a.end());
    omp_set_num_threads(saved);
    return out;
  };
  const std::vector<float> p1 = run(true, 1);
  CHECK(run(true, 2) == p1);
  CHECK(run(false, 1) != p1);
}
