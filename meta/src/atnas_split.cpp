// atnas_evaluate_split (atnas_split.h): AT-NAS meta-test searches split
// across ranks, one seeded searcher per task.
#include "metanas/meta/atnas_split.h"

#include <nlohmann/json.hpp>

#include "metanas/engine/error.h"
#include "metanas/engine/random.h"
#include "metanas/meta/dist/task_slots.h"

namespace metanas::meta {

using nlohmann::json;

AtnasReport atnas_evaluate_split(const nas::SearchNetwork& supernet, const MetaConfig& cfg, uint64_t seed,
                                 const std::vector<nas::Encoding>& seeds, data::EpisodeSampler& sampler, int n,
                                 dist::Communicator& comm, const std::function<void(int, const AtnasTaskResult&)>& done,
                                 const std::function<void(int, const nas::Evolution&)>& progress) {
  const dist::TaskSlots slots(n, comm.size());
  Rng root(seed);
  std::vector<TaskEvaluation> mine;
  json extra = json::array();  // what a TaskEvaluation does not hold, per task of this rank
  for (int i = 0; i < n; ++i) {
    const uint64_t task_seed = root.next_u64();  // every rank draws every task's seed
    if (!slots.owns(comm.rank(), i)) {
      sampler.skip();  // the same draws, no pixels
      continue;
    }
    const data::Episode ep = sampler.sample();
    AtnasSearcher searcher(supernet, cfg, task_seed, seeds);
    const AtnasTaskResult r = searcher.evaluate_task(ep, progress);
    mine.push_back(r.eval);
    extra.push_back({r.best.to_text(), r.best_fitness, r.generations, r.evaluations, r.search_seconds,
                     r.search_cpu_seconds, r.stem_cache_hits});
    if (done) done(static_cast<int>(mine.size()), r);
  }
  std::vector<TaskEvaluation> evals = gather_task_evaluations(comm, mine, n, "atnas_evaluate_split");
  AtnasReport rep;
  for (const std::string& part : comm.allgather_bytes(extra.dump()))
    for (const json& x : json::parse(part)) {
      AtnasTaskResult r;
      r.eval = evals.at(rep.tasks.size());
      r.best = nas::Encoding::from_text(x[0].get<std::string>());
      r.best_fitness = x[1].get<double>();
      r.generations = x[2].get<int>();
      r.evaluations = x[3].get<int64_t>();
      r.search_seconds = x[4].get<double>();
      r.search_cpu_seconds = x[5].get<double>();
      r.stem_cache_hits = x[6].get<int64_t>();
      rep.mean_search_seconds += r.search_seconds;
      rep.mean_search_cpu_seconds += r.search_cpu_seconds;
      rep.tasks.push_back(std::move(r));
    }
  MN_CHECK(static_cast<int>(rep.tasks.size()) == n, "atnas_evaluate_split: gathered ", rep.tasks.size(), " of ", n,
           " searches");
  // The aggregates as AtnasSearcher::evaluate computes them.
  if (n > 0) rep.mean_search_seconds /= static_cast<double>(n);
  if (n > 0) rep.mean_search_cpu_seconds /= static_cast<double>(n);
  double dist = 0;
  int64_t pairs = 0;
  for (size_t a = 0; a < rep.tasks.size(); ++a)
    for (size_t b = a + 1; b < rep.tasks.size(); ++b, ++pairs)
      for (size_t g = 0; g < rep.tasks[a].best.genes.size(); ++g)
        dist += rep.tasks[a].best.genes[g] != rep.tasks[b].best.genes[g];
  rep.mean_gene_distance = pairs ? dist / static_cast<double>(pairs) : 0.0;
  rep.summary = summarize(std::move(evals), cfg.eval.top_genotypes);
  return rep;
}

}  // namespace metanas::meta
