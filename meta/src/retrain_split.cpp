// RetrainEvaluator::evaluate_split (retrain_evaluator.h): decode and retrain
// with the tasks split across ranks; per-task generators and per-genotype
// meta-train streams make every task's scores independent of the split.
#include <set>

#include "metanas/engine/error.h"
#include "metanas/meta/dist/task_slots.h"
#include "metanas/meta/retrain_evaluator.h"

namespace metanas::meta {

RetrainReport RetrainEvaluator::evaluate_split(data::EpisodeSampler& sampler, int n, dist::Communicator& comm,
                                               const std::function<TaskSource(const std::string&)>& sources,
                                               const std::function<void(int, const RetrainTaskResult&)>& progress) {
  if (n <= 0) n = cfg_.eval.tasks;
  MN_CHECK(cfg_.eval.retrain.meta_iterations == 0 || sources,
           "RetrainEvaluator::evaluate_split: eval.retrain.meta_iterations is ", cfg_.eval.retrain.meta_iterations,
           " but no per-genotype meta-train tasks were given");
  const dist::TaskSlots slots(n, comm.size());
  std::vector<TaskEvaluation> mine;  // soft, retrained, per task of this rank
  for (int i = 0; i < n; ++i) {
    Rng task_rng = soft_.rng().split();  // every rank splits every task's generator
    if (!slots.owns(comm.rank(), i)) {
      sampler.skip();  // the same draws, no pixels
      continue;
    }
    const data::Episode ep = sampler.sample();
    Rng soft_rng = task_rng.split(), retrain_rng = task_rng.split();
    RetrainTaskResult r;
    r.soft = soft_.evaluate_task(ep, soft_rng);
    const auto g = soft_.task_learner().model().architecture();
    MN_CHECK(g.has_value(), "RetrainEvaluator: the adapted model has no architecture to decode");
    r.soft.genotype = g->to_text();
    // A cached network was trained on this genotype's stream too, so hits and
    // misses give the same network.
    if (cfg_.eval.retrain.meta_iterations > 0) train_tasks_ = sources(r.soft.genotype);
    Evaluator& e = network_evaluator(*g);
    r.retrained = e.evaluate_task(ep, retrain_rng);
    r.retrained.genotype = r.soft.genotype;
    last_ = &e.task_learner().model();
    mine.push_back(r.soft);
    mine.push_back(r.retrained);
    if (progress) progress(static_cast<int>(mine.size() / 2), r);
  }
  const std::vector<TaskEvaluation> all = gather_task_evaluations(comm, mine, 2 * n, "RetrainEvaluator::evaluate_split");
  std::vector<TaskEvaluation> soft, retrained;
  std::set<std::string> genotypes;
  for (int i = 0; i < n; ++i) {
    soft.push_back(all[2 * i]);
    retrained.push_back(all[2 * i + 1]);
    genotypes.insert(all[2 * i].genotype);
  }
  RetrainReport rep;
  rep.retrained = summarize(std::move(retrained), cfg_.eval.top_genotypes);
  rep.soft = summarize(std::move(soft), cfg_.eval.top_genotypes);
  rep.networks = static_cast<int>(genotypes.size());
  return rep;
}

}  // namespace metanas::meta
