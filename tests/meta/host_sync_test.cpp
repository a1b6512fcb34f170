// Host synchronisations of a MetaNAS task, counted on the CPU backend
// (host_syncs(): the calls that would wait for a GPU). Target (issue 16): at
// most one per inner step. The soft-pruning plan reads the task's logits back
// once per task (ForwardContext::plan_epoch; the threshold is applied on the
// device), drop-path masks come from the on-device Philox stream keyed by
// (seed, task, step, op), batches are uploaded once per task and the losses
// stay on the device; the query evaluation reuses the task's plan. A
// regression (a new to_vector(), item(), a plan readback per forward or a
// mask upload through a synchronous path) shows up as a higher count.
#include <catch2/catch.hpp>

#include "metanas/engine/device.h"
#include "metanas/meta/task_learner.h"
#include "metanas/nas/search_network.h"
#include "tests/meta/fixtures.h"

using namespace metanas;
using namespace metanas::testing;

TEST_CASE("a MetaNAS task synchronises at most once per inner step, drop-path, batches and query included",
          "[meta][sync]") {
  Rng rng(91);
  data::Episode ep = random_episode(rng, {0, 0, 1, 1, 2, 2}, {0, 1, 2});
  meta::MetaConfig cfg;  // MetaNAS defaults: softmax, prune 0.01, drop-path 0.2, Adam
  cfg.task.steps = 3;
  cfg.task.batch_size = 4;  // random support batches (drawn and uploaded once per task)
  REQUIRE(cfg.task.drop_path_prob > 0.f);
  REQUIRE(cfg.task.prune_threshold >= 0.f);
  nas::SearchNetwork net(tiny_search_config(2, 2), rng);
  meta::TaskLearner tl(net, meta::TaskLearnerOptions::for_training(cfg));

  for (bool warmup : {false, true}) {
    const uint64_t before = host_syncs(Device::CPU);
    const meta::AdaptResult r = tl.adapt(ep, rng, warmup);
    const meta::QueryResult q = tl.evaluate_query(ep, false);
    const uint64_t per_task = host_syncs(Device::CPU) - before;
    INFO("warm-up " << warmup << ": " << per_task << " host syncs in " << r.steps << " inner steps");
    // One readback of the logits for the task's plan, nothing else.
    CHECK(per_task == 1);
    CHECK(per_task <= static_cast<uint64_t>(r.steps));
    (void)q;
  }
}
