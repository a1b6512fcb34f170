// Task streams (run.task_streams) and CUDA graphs (run.cuda_graphs) on the
// CPU backend: the task-parallel meta-step with one TaskLearner and stream per
// task must give bitwise the checkpoint of the task-parallel step without
// them (REPTILE/MetaNAS and FOMAML, drop-path and random batches on), and the
// graph decisions must replay the steps whose key repeats without changing a
// bit. On the CPU the streams run in issue order and graphs run eagerly: what
// is tested is everything but the device's concurrency and the replays.
#include <catch2/catch.hpp>
#include <functional>
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

Run run(meta::Algorithm alg, meta::ExecutionOptions exec, float drop_path = 0.2f, int batch = 4,
        bool task_parallel = true, int meta_steps = 3) {
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
  cfg.meta.task_parallel = task_parallel;
  if (alg == meta::Algorithm::Fomaml) cfg.meta.optimizer = meta::MetaOptimizer::Adam, cfg.meta.w_lr = 0.01f;
  Run r;
  {
    auto net = std::make_unique<nas::SearchNetwork>(tiny_search_config(1, 2), rng);
    auto learner = meta::make_meta_learner(cfg, std::move(net));
    learner->set_execution(exec);
    for (int it = 0; it < meta_steps; ++it) {
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
  // Task-parallel, whole-support batches (copied into the learner's fixed
  // buffer), 3 meta-steps x 3 tasks x 3 steps. Step 0 of a task reads the
  // plan back (and in meta-step 0 creates the Adam state), so it is never
  // captured. Keys hold neither Adam's step counts nor the drop-path seed and
  // task (read on the device), so steps 1-2 repeat across tasks and across
  // meta-steps of the same phase: meta-step 0 (warm-up) and 1 (search, a new
  // key set): task 0 eager, task 1 captures, task 2 replays; meta-step 2
  // (search again): every task replays steps 1-2.
  for (float drop : {0.f, 0.2f}) {
    INFO("drop-path " << drop);
    const Run plain = run(meta::Algorithm::Reptile, {}, drop, 0);
    const Run graphs = run(meta::Algorithm::Reptile, {false, true}, drop, 0);
    require_same(plain.ck, graphs.ck);
    const GraphCache::Stats& g = graphs.graphs;
    CHECK(g.captures == 2 + 2);
    CHECK(g.replays == 2 + 2 + 3 * 2);
    CHECK(g.uncapturable >= 1);
    CHECK(g.invalidated == 0);
    CHECK(g.eager + g.captures + g.replays == 3 * 3 * 3);
  }
}

TEST_CASE("CUDA graphs in the sequential MetaNAS mode with drop-path: replays, the same checkpoint", "[meta][graphs]") {
  // MetaNAS carries the task optimizers' Adam state from task to task, so its
  // step counts grow every step and each task has its own drop-path seed:
  // before the counts and seeds moved to the device no key repeated here.
  // Per phase as in the task-parallel case: captures in the second task of
  // the warm-up meta-step and of the first search meta-step, replays after.
  for (int batch : {0, 4}) {
    INFO("batch " << batch);
    const Run plain = run(meta::Algorithm::Reptile, {}, 0.2f, batch, false);
    const Run graphs = run(meta::Algorithm::Reptile, {false, true}, 0.2f, batch, false);
    require_same(plain.ck, graphs.ck);
    const GraphCache::Stats& g = graphs.graphs;
    CHECK(g.captures == 2 + 2);
    CHECK(g.replays == 2 + 2 + 3 * 2);
    CHECK(g.eager + g.captures + g.replays == 3 * 3 * 3);
    // The Adam state really is carried (the run is the sequential mode): the
    // saved task-optimizer step count is every step of every task.
    REQUIRE(graphs.ck.has("task_opt.w_opt.adam.step"));
    CHECK(graphs.ck.get("task_opt.w_opt.adam.step").to_int_vector()[0] == 3 * 3 * 3);
  }
}

TEST_CASE("CUDA graphs with task streams: each task's learner replays from the third meta-step", "[meta][graphs]") {
  // One learner per task: each sees each key once per meta-step, so a key
  // repeats only across meta-steps of the same phase (Adam counts and seeds
  // are not in it): 4 meta-steps = warm-up, then search x 3: search steps 1-2
  // are eager in meta-step 1, captured in 2, replayed in 3, for each of the 3
  // learners; the warm-up keys are seen once.
  const Run plain = run(meta::Algorithm::Reptile, {}, 0.2f, 4, true, 4);
  const Run both = run(meta::Algorithm::Reptile, {true, true}, 0.2f, 4, true, 4);
  require_same(plain.ck, both.ck);
  CHECK(both.stream_learners == 3);
  const GraphCache::Stats& g = both.graphs;
  CHECK(g.captures == 3 * 2);
  CHECK(g.replays == 3 * 2);
  CHECK(g.eager + g.captures + g.replays == 4 * 3 * 3);
}

TEST_CASE("a step's graph key holds what a graph bakes in, not what the step reads on the device", "[meta][graphs]") {
  Rng rng(8);
  meta::MetaConfig cfg = tiny_config(3);
  cfg.task.drop_path_prob = 0.2f;
  cfg.task.prune_threshold = 0.01f;
  cfg.task.steps = 3;
  nas::SearchNetwork meta_model(tiny_search_config(1, 2), rng);
  meta::TaskLearner tl(meta_model, meta::TaskLearnerOptions::for_training(cfg));
  tl.set_graphs(true);
  const data::Episode ep = random_episode(rng, {0, 0, 1, 1, 2, 2}, {0, 1, 2});
  tl.adapt(ep, rng);  // the optimizers' state exists
  const nas::Batch b{ep.support_x, ep.support_y};
  nas::ForwardContext ctx = tl.step_context(1, false, &rng);
  REQUIRE(ctx.drop_key);
  ctx.drop_key_words = Tensor::from_ints({1, 2, 3}, Shape{3});
  auto key = [&](const nas::ForwardContext& c, int step = 1, bool arch = true, const nas::Batch* bw = nullptr) {
    return tl.step_graph_key(step, arch, b, bw ? *bw : b, c);
  };
  const GraphKey base = key(ctx);
  CHECK(key(ctx) == base);

  // Read on the device, so not in the key: the seed and task (words given),
  // Adam's step counts.
  {
    nas::ForwardContext c = ctx;
    c.drop_key->seed ^= 0xabcdefull;
    c.drop_key->task += 5;
    CHECK(key(c) == base);
    tl.darts()->w_optimizer().count_replayed_step();
    tl.darts()->a_optimizer()->count_replayed_step();
    CHECK(key(ctx) == base);
  }
  // Host scalars and addresses a graph bakes in: each change is a new key.
  using Edit = std::function<void(nas::ForwardContext&)>;
  const std::vector<std::pair<const char*, Edit>> ctx_edits = {
      {"temperature", [](nas::ForwardContext& c) { c.temperature *= 0.5f; }},
      {"anneal_progress", [](nas::ForwardContext& c) { c.anneal_progress += 0.25f; }},
      {"prune_threshold", [](nas::ForwardContext& c) { c.prune_threshold += 0.01f; }},
      {"drop_path_prob", [](nas::ForwardContext& c) { c.drop_path_prob += 0.1f; }},
      {"aux_skip_beta", [](nas::ForwardContext& c) { c.aux_skip_beta += 0.5f; }},
      {"normalizer", [](nas::ForwardContext& c) { c.normalizer = nas::Normalizer::ReluSoftmax; }},
      {"training", [](nas::ForwardContext& c) { c.training = false; }},
      {"plan_epoch", [](nas::ForwardContext& c) { c.plan_epoch = 0; }},
      {"drop step", [](nas::ForwardContext& c) { c.drop_key->step += 1; }},
      {"drop op (pass)", [](nas::ForwardContext& c) { c.drop_key->op += nas::kDropPassStride; }},
      {"drop words' address", [](nas::ForwardContext& c) { c.drop_key_words = Tensor::from_ints({1, 2, 3}, Shape{3}); }},
      {"seed without words", [](nas::ForwardContext& c) { c.drop_key_words = Tensor(); }},
  };
  for (const auto& e : ctx_edits) {
    INFO(e.first);
    nas::ForwardContext c = ctx;
    e.second(c);
    CHECK_FALSE(key(c) == base);
  }
  {
    // Without words the seed and the task are host arguments: in the key.
    nas::ForwardContext c = ctx;
    c.drop_key_words = Tensor();
    const GraphKey host = key(c);
    nas::ForwardContext c2 = c;
    c2.drop_key->seed += 1;
    CHECK_FALSE(key(c2) == host);
    c2 = c;
    c2.drop_key->task += 1;
    CHECK_FALSE(key(c2) == host);
  }
  CHECK_FALSE(key(ctx, 2) == base);
  CHECK_FALSE(key(ctx, 1, false) == base);
  const nas::Batch other{ep.support_x.clone(), ep.support_y.clone()};
  CHECK_FALSE(key(ctx, 1, true, &other) == base);
  const nas::Batch half{ep.support_x.view(0, Shape{3, 1, 8, 8}), ep.support_y.view(0, Shape{3})};
  CHECK_FALSE(key(ctx, 1, true, &half) == base);
  // Adam's host scalars, for the weight and the architecture optimizer.
  for (Adam* o : {&tl.darts()->w_optimizer(), tl.darts()->a_optimizer()}) {
    using AdamEdit = std::function<void(Adam&, float)>;
    const std::vector<std::pair<const char*, AdamEdit>> adam_edits = {
        {"lr", [](Adam& a, float f) { a.set_lr(a.lr() * f); }},
        {"beta1", [](Adam& a, float f) { a.beta1 = a.beta1 / f + 0.05f; }},
        {"beta2", [](Adam& a, float f) { a.beta2 *= f; }},
        {"eps", [](Adam& a, float f) { a.eps *= f; }},
        {"weight_decay", [](Adam& a, float f) { a.weight_decay = a.weight_decay * f + (f > 1.f ? 1e-3f : 0.f); }},
        {"max_grad_norm", [](Adam& a, float f) { a.max_grad_norm = a.max_grad_norm * f + (f > 1.f ? 1.f : 0.f); }},
    };
    for (const auto& e : adam_edits) {
      INFO((o == &tl.darts()->w_optimizer() ? "w " : "a ") << e.first);
      const float lr = o->lr(), b1 = o->beta1, b2 = o->beta2, eps = o->eps, wd = o->weight_decay, mg = o->max_grad_norm;
      e.second(*o, 2.f);
      CHECK_FALSE(key(ctx) == base);
      o->set_lr(lr), o->beta1 = b1, o->beta2 = b2, o->eps = eps, o->weight_decay = wd, o->max_grad_norm = mg;
      CHECK(key(ctx) == base);
    }
  }
}

TEST_CASE("task streams need the task-parallel semantics", "[meta][streams]") {
  Rng rng(5);
  meta::MetaConfig cfg = tiny_config(3);
  cfg.meta.task_parallel = false;
  auto learner = meta::make_meta_learner(cfg, std::make_unique<TinyModel>(3, 3, rng));
  CHECK_THROWS_WITH(learner->set_execution({true, false}), Catch::Contains("meta.task_parallel"));
  CHECK_NOTHROW(learner->set_execution({false, true}));
}
