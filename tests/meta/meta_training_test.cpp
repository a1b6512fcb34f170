// End-to-end: a seeded short meta-training (REPTILE/MetaNAS on a tiny search
// network) on the synthetic dataset reaches clearly higher held-out accuracy
// than the same network adapted from its random initialisation.
#include <catch2/catch.hpp>

#include <chrono>

#include "metanas/datasets/synthetic.h"
#include "metanas/meta/evaluator.h"
#include "metanas/meta/learner.h"
#include "tests/meta/fixtures.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

data::SyntheticOptions synth_options() {
  data::SyntheticOptions o;
  o.num_alphabets = 10;
  o.classes_per_alphabet = 10;
  o.drawers = 10;
  o.size = 14;
  o.seed = 7;
  o.invert = true;  // ink high, paper 0
  return o;
}

// A tiny MetaNAS configuration: 5-way, C = 8, 2 cells, 2 nodes on 14x14.
meta::MetaConfig small_config() {
  meta::MetaConfig c;
  c.seed = 1;
  c.model.search.image_size = 14;
  c.model.search.num_classes = 5;
  c.model.search.C = 8;
  c.model.search.layers = 2;
  c.model.search.nodes = 2;
  c.episodes.ways = 5;
  c.episodes.shots = 5;  // held-out tasks are 5-way 5-shot, as in meta-training
  c.episodes.train_shots = 5;
  c.episodes.queries = 5;
  c.task.steps = 5;
  c.task.batch_size = 0;
  c.task.drop_path_prob = 0.f;
  c.meta.meta_batch_size = 4;
  c.meta.iterations = 40;
  c.meta.warmup_iterations = 20;
  c.meta.prune_every = 0;
  // A short adaptation budget (2 + 3 steps): what meta-learning buys is fast
  // adaptation; given many steps the random initialisation catches up.
  c.eval.arch_steps = 2;
  c.eval.weight_steps = 3;
  c.eval.batch_size = 0;
  c.eval.tasks = 30;
  return c;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("Meta-training on synthetic data beats adapting from the random initialisation", "[meta][train]") {
  const auto t0 = std::chrono::steady_clock::now();
  const data::SyntheticOptions so = synth_options();
  const data::Dataset train = data::make_synthetic_split(so, "train");
  const data::Dataset test = data::make_synthetic_split(so, "test");
  meta::MetaConfig cfg = small_config();

  auto learner = meta::make_meta_learner(cfg, Device::CPU);
  // The same network, untouched: the random-initialisation baseline.
  std::unique_ptr<nas::Model> init = learner->meta_model().clone();

  data::EpisodeSampler sampler(train, cfg.episodes.ways, cfg.episodes.train_shots, cfg.episodes.queries, 99);
  float last_train_acc = 0.f;
  for (int64_t it = 0; it < cfg.meta.iterations; ++it) {
    meta::MetaStepStats st = learner->meta_step(draw_tasks(sampler, cfg.meta.meta_batch_size));
    if (st.iteration % 10 == 0) {
      last_train_acc = st.query_acc_value();
      WARN("iteration " << st.iteration << (st.warmup ? " (warm-up)" : "") << ": train query acc "
                        << last_train_acc << ", support loss " << st.support_loss_value());
    }
  }
  const double train_s = seconds_since(t0);

  // Held-out classes, the same tasks for both models.
  auto evaluate = [&](const nas::Model& m) {
    data::EpisodeSampler ts(test, cfg.episodes.ways, cfg.episodes.shots, cfg.episodes.queries, 1234);
    meta::Evaluator ev(m, cfg, 5);
    Checkpoint ck;
    if (&m == &learner->meta_model()) {
      learner->save_state(ck);
      ev.set_task_optimizer_state(ck);
    }
    return ev.evaluate(ts, cfg.eval.tasks);
  };
  const meta::EvalReport trained = evaluate(learner->meta_model());
  const meta::EvalReport baseline = evaluate(*init);
  WARN("meta-trained: " << trained.summary() << "random init: " << baseline.summary() << "train " << train_s
                        << " s, total " << seconds_since(t0) << " s");
  CHECK(trained.tasks.size() == static_cast<size_t>(cfg.eval.tasks));
  CHECK(trained.distinct_genotypes >= 1);
  CHECK(trained.sparse_min > 0);
  // Clearly higher: more than 5 points, and the 95% intervals do not overlap.
  // (Measured: 91.9% +- 2.6 vs 78.4% +- 2.9; other seeds gave 91.1 vs 81.9 and 92.7 vs 70.7.)
  CHECK(trained.mean_accuracy > baseline.mean_accuracy + 0.05);
  CHECK(trained.mean_accuracy - trained.ci95 > baseline.mean_accuracy + baseline.ci95);
}
