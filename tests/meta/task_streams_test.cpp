// Task streams (run.task_streams) and CUDA graphs (run.cuda_graphs) on the
// CPU backend: the task-parallel meta-step with one TaskLearner and stream per
// task must give bitwise the checkpoint of the task-parallel step without
// them (REPTILE/MetaNAS and FOMAML, drop-path and random batches on), and the
// graph decisions must replay the steps whose key repeats without changing a
// bit. On the CPU the streams run in issue order and graphs run eagerly: what
// is tested is everything but the device's concurrency and the replays.
#include <catch2/catch.hpp>
#include <omp.h>

#include "metanas/engine/extension.h"
#include "metanas/meta/learner.h"
#include "metanas/nas/search_network.h"
#include "tests/meta/fixtures.h"
#include "tests/meta/tiny_model.h"

using namespace metanas;
using namespace metanas::testing;

namespace {

struct Run {
  Checkpoint ck;
  GraphCache::Stats graphs;
  int stream_learners = 0;
  int streams_after = 0;  // live streams of the CPU backend after the learner is gone
};

Run run(meta::Algorithm alg, meta::ExecutionOptions exec, float drop_path = 0.2f, int batch = 4) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Rng rng(31);
  meta::MetaConfig cfg = tiny_config(3);
  cfg.algorithm = alg;
  cfg.task.drop_path_prob = drop_path;
  cfg.task.prune_threshold = 0.01f;
  cfg.task.steps = 3;
  cfg.task.batch_size = batch;
  cfg.meta.meta_batch_size = 3;
  cfg.meta.warmup_iterations = 1;  // one warm-up step, then architecture updates
  cfg.meta.query_eval = true;
  cfg.meta.task_parallel = true;
  if (alg == meta::Algorithm::Fomaml) cfg.meta.optimizer = meta::MetaOptimizer::Adam, cfg.meta.w_lr = 0.01f;
  Run r;
  {
    auto net = std::make_unique<nas::SearchNetwork>(tiny_search_config(1, 2), rng);
    auto learner = meta::make_meta_learner(cfg, std::move(net));
    learner->set_execution(exec);
    for (int it = 0; it < 3; ++it) {
      std::vector<data::Episode> eps;
      for (int t = 0; t < 3; ++t) eps.push_back(random_episode(rng, {0, 0, 1, 1, 2, 2}, {0, 1, 2}));
      learner->meta_step(eps);
    }
    learner->save_state(r.ck);
    r.graphs = learner->graph_stats();
    r.stream_learners = learner->stream_task_learners();
  }
  r.streams_after = backend(Device::CPU).live_streams();
  omp_set_num_threads(saved);
  return r;
}

// Every tensor of two checkpoints, bit for bit (and the same names).
void require_same(const Checkpoint& a, const Checkpoint& b) {
  REQUIRE(a.names() == b.names());
  for (const std::string& n : a.names()) {
    INFO(n);
    const Tensor& x = a.get(n);
    const Tensor& y = b.get(n);
    REQUIRE(x.dtype() == y.dtype());
    REQUIRE(x.shape() == y.shape());
    if (x.dtype() == DType::F32)
      REQUIRE(x.to_vector() == y.to_vector());
    else
      REQUIRE(x.to_int_vector() == y.to_int_vector());
  }
}

}  // namespace

TEST_CASE("task streams give bitwise the task-parallel checkpoint (REPTILE, FOMAML)", "[meta][streams]") {
  for (meta::Algorithm alg : {meta::Algorithm::Reptile, meta::Algorithm::Fomaml}) {
    INFO(meta::algorithm_name(alg));
    const uint64_t waits0 = backend(Device::CPU).stream_waits();
    const Run plain = run(alg, {});
    CHECK(plain.stream_learners == 0);
    const Run streams = run(alg, {true, false});
    CHECK(streams.stream_learners == 3);  // one learner per task of the meta-batch
    // 3 meta-steps x 3 tasks x (fork + join).
    CHECK(backend(Device::CPU).stream_waits() - waits0 == 3 * 3 * 2);
    CHECK(streams.streams_after == 0);
    require_same(plain.ck, streams.ck);
    // Streams and graphs together: still the same bits.
    require_same(plain.ck, run(alg, {true, true}).ck);
  }
}

TEST_CASE("CUDA-graph decisions: steps whose key repeats replay, results unchanged", "[meta][graphs]") {
  // No drop-path (its key holds the task's seed) and whole-support batches
  // (copied into the learner's fixed buffer): steps 1 and 2 of every task
  // have the same key in a meta-step (same start state, temperature and Adam
  // step counts); step 0 reads the plan back, so it is never captured.
  const Run plain = run(meta::Algorithm::Reptile, {}, 0.f, 0);
  const Run graphs = run(meta::Algorithm::Reptile, {false, true}, 0.f, 0);
  require_same(plain.ck, graphs.ck);
  const GraphCache::Stats& g = graphs.graphs;
  // Per meta-step: task 0 runs 3 steps eagerly, task 1 captures steps 1-2
  // (step 0 again eager: the plan version changed after task 0's step 0 only
  // in the first meta-step), task 2 replays them.
  CHECK(g.captures == 3 * 2);
  CHECK(g.replays == 3 * 2);
  CHECK(g.uncapturable >= 1);
  CHECK(g.eager + g.captures + g.replays == 3 * 3 * 3);
  // With drop-path the key holds each task's seed: nothing repeats.
  const Run dropped = run(meta::Algorithm::Reptile, {false, true}, 0.2f, 0);
  CHECK(dropped.graphs.replays == 0);
  CHECK(dropped.graphs.captures == 0);
  require_same(run(meta::Algorithm::Reptile, {}, 0.2f, 0).ck, dropped.ck);
}

TEST_CASE("task streams need the task-parallel semantics", "[meta][streams]") {
  Rng rng(5);
  meta::MetaConfig cfg = tiny_config(3);
  cfg.meta.task_parallel = false;
  auto learner = meta::make_meta_learner(cfg, std::make_unique<TinyModel>(3, 3, rng));
  CHECK_THROWS_WITH(learner->set_execution({true, false}), Catch::Contains("meta.task_parallel"));
  CHECK_NOTHROW(learner->set_execution({false, true}));
}
