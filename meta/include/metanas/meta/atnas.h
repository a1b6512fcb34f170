// AT-NAS (Rong et al., arXiv 2110.05842; docs/algorithms.md "AT-NAS"): the
// search network's weights are a supernet shared by all subnets. One meta-step:
//   for each task: pick a subnet e (population: the evolution's next unscored
//     candidate; uniform: a random encoding), write it into the architecture
//     parameters (nas::apply_encoding: only its ops are computed), adapt the
//     weights with the SGD inner loop, score the query set; the score is e's
//     fitness (population sampling), and the evolution breeds its next
//     generation once all candidates are scored (carried across meta-batches)
//   reptile: W <- W + lr * mean_i (W_i - W);  fomaml: W <- W - lr * mean_i
//     grad of the query loss at W_i.
// Unchosen ops get no gradient and the inner loop is plain SGD, so only the
// sampled paths' weights move. The evolution is saved in the checkpoint
// metadata ("atnas"), so resuming is bitwise.
//
// Meta-test (AtnasSearcher): per task, evolve from the meta-trained elite with
// fitness = score on held-out support images after fitness_steps adaptation
// steps from the supernet weights, take the best subnet, adapt it for the
// test steps on the whole support set and score the query set.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/meta/evaluator.h"
#include "metanas/meta/learner.h"
#include "metanas/nas/encoding.h"
#include "metanas/nas/evolution.h"
#include "metanas/nas/search_network.h"

namespace metanas::meta {

// The evolution options of a configuration (duplicates checked against all
// seen encodings only at meta-test, where the supernet is fixed).
nas::EvolutionOptions atnas_evolution_options(const AtnasSection& a, bool meta_training);

class Atnas : public MetaLearner {
 public:
  Atnas(const MetaConfig& cfg, std::unique_ptr<nas::Model> meta_model);
  MetaStepStats meta_step(const std::vector<data::Episode>& tasks) override;
  Algorithm algorithm() const override { return Algorithm::Atnas; }
  void save_state(Checkpoint& ck) const override;
  void load_state(const Checkpoint& ck) override;

  nas::SearchNetwork& supernet();
  const nas::EncodingSpace& space() const { return space_; }
  const nas::Evolution& evolution() const { return evo_; }
  // The encodings the last meta_step trained, one per task.
  const std::vector<nas::Encoding>& last_encodings() const { return last_; }
  // Called whenever every candidate of the meta-training evolution's current
  // generation is scored (before the elite merges it).
  void on_generation(std::function<void(const nas::Evolution&)> f) { on_generation_ = std::move(f); }

 private:
  nas::Encoding next_encoding();
  nas::EncodingSpace space_;
  nas::Evolution evo_;
  std::vector<nas::Encoding> last_;
  ParamSet w_sum_;
  std::function<void(const nas::Evolution&)> on_generation_;
};

struct AtnasTaskResult {
  TaskEvaluation eval;         // query accuracy, loss, params of the subnet, genotype text
  nas::Encoding best;          // the chosen subnet
  double best_fitness = 0.0;   // its held-out fitness
  double search_seconds = 0.0; // evolution + final adaptation wall time
  double search_cpu_seconds = 0.0;  // the same, process CPU time
  int64_t stem_cache_hits = 0;      // forwards that reused a cached stem output
  int generations = 0;         // generations scored
  int64_t evaluations = 0;     // fitness evaluations (distinct subnets)
};

struct AtnasReport {
  EvalReport summary;  // accuracy +- ci95, parameter counts, genotype counts (diversity)
  std::vector<AtnasTaskResult> tasks;
  double mean_search_seconds = 0.0;
  double mean_search_cpu_seconds = 0.0;
  // Mean pairwise Hamming distance between the tasks' encodings (genes).
  double mean_gene_distance = 0.0;
  std::string to_json() const;
  std::string summary_text() const;
};

class AtnasSearcher {
 public:
  // supernet: the meta-trained search network (must outlive the searcher);
  // seeds: the meta-training elite (generation 0 starts from them).
  AtnasSearcher(const nas::SearchNetwork& supernet, const MetaConfig& cfg, uint64_t seed,
                std::vector<nas::Encoding> seeds = {});
  ~AtnasSearcher();

  // progress(generation, evolution) after each scored generation.
  AtnasTaskResult evaluate_task(const data::Episode& ep,
                                const std::function<void(int, const nas::Evolution&)>& progress = {});
  AtnasReport evaluate(const std::vector<data::Episode>& tasks,
                       const std::function<void(int, const AtnasTaskResult&)>& done = {},
                       const std::function<void(int, const nas::Evolution&)>& progress = {});
  // The fitness of one subnet on a split episode (train on its support,
  // score its query) after `steps` SGD steps from the supernet weights, on
  // the current task's batches (every candidate of a task sees the same).
  double fitness(const nas::Encoding& e, const data::Episode& split);
  // With atnas.fitness_stem 'shared' the stem is frozen during the fitness
  // steps and its outputs are cached (on by default); off recomputes the
  // same frozen stem for every candidate (the unbatched reference: the same
  // fitness values, bit for bit, more compute).
  void set_stem_cache(bool on);
  int64_t stem_cache_hits() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The episode's support set split per class: the first shots - h images
// train (support), the last h score (query); h = holdout_shots. With
// shots <= h both are the whole support set.
data::Episode holdout_split(const data::Episode& ep, int holdout_shots);

}  // namespace metanas::meta
