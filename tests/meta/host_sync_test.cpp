// Host synchronisations of a MetaNAS inner step, counted on the CPU backend
// (host_syncs(): the calls that would wait for a GPU). An inner step after
// warm-up is an architecture step and a weight step; each forward of the
// search network reads its normalized architecture weights back once for
// the soft-pruning plan, and nothing else may wait: drop-path masks come
// from the on-device Philox stream, batches are uploaded once per task, the
// losses stay on the device. A regression here (a new to_vector(), item()
// or a mask upload through a synchronous path) shows up as a higher count.
#include <catch2/catch.hpp>

#include "metanas/engine/device.h"
#include "metanas/meta/task_learner.h"
#include "metanas/nas/search_network.h"
#include "tests/meta/fixtures.h"

using namespace metanas;
using namespace metanas::testing;

TEST_CASE("a MetaNAS inner step synchronises once per forward, drop-path and batches included", "[meta][sync]") {
  Rng rng(91);
  data::Episode ep = random_episode(rng, {0, 0, 1, 1, 2, 2}, {0, 1, 2});
  meta::MetaConfig cfg;  // MetaNAS defaults: softmax, prune 0.01, drop-path 0.2, Adam
  cfg.task.steps = 3;
  cfg.task.batch_size = 4;  // random support batches (drawn and uploaded once per task)
  REQUIRE(cfg.task.drop_path_prob > 0.f);
  nas::SearchNetwork net(tiny_search_config(2, 2), rng);
  meta::TaskLearner tl(net, meta::TaskLearnerOptions::for_training(cfg));

  for (bool warmup : {false, true}) {
    const uint64_t before = host_syncs(Device::CPU);
    const meta::AdaptResult r = tl.adapt(ep, rng, warmup);
    const uint64_t per_task = host_syncs(Device::CPU) - before;
    INFO("warm-up " << warmup << ": " << per_task << " host syncs in " << r.steps << " inner steps");
    // Search: architecture forward + weight forward per step; warm-up: weight forward only.
    CHECK(per_task == static_cast<uint64_t>(r.steps) * (warmup ? 1 : 2));
  }
}
