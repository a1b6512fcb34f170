// AT-NAS meta-testing split across ranks (meta.task_parallel,
// docs/distributed.md): every test task searches with its own AtnasSearcher,
// seeded from `seed` in task order, so a task's subnet and score do not
// depend on which rank runs it or what ran before; the ranks search their
// dist::TaskSlots blocks and one small gather gives every rank the whole
// report, the same for any number of ranks. (The sequential
// AtnasSearcher::evaluate carries one generator from task to task.)
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/meta/atnas.h"
#include "metanas/meta/dist/communicator.h"

namespace metanas::meta {

// n tasks drawn from `sampler` (every rank draws every task, building only
// its own); done(k, result) after each of this rank's tasks, progress as
// AtnasSearcher::evaluate_task's.
AtnasReport atnas_evaluate_split(const nas::SearchNetwork& supernet, const MetaConfig& cfg, uint64_t seed,
                                 const std::vector<nas::Encoding>& seeds, data::EpisodeSampler& sampler, int n,
                                 dist::Communicator& comm,
                                 const std::function<void(int, const AtnasTaskResult&)>& done = {},
                                 const std::function<void(int, const nas::Evolution&)>& progress = {});

}  // namespace metanas::meta
