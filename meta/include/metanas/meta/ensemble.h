// Ensemble meta-testing (MAML++ reports an ensemble of its top-5 validation
// checkpoints): every member (an Evaluator over one meta model) adapts to
// the same episode; the ensemble's prediction for a query image is the
// arg-max of the members' class probabilities averaged; accuracy per task,
// mean and 95% interval over tasks as Evaluator::evaluate.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/meta/evaluator.h"

namespace metanas::meta {

// The averaged prediction of one task: probs [Q * K] (row-major, the mean of
// the members' rows), its arg-max per row (first maximum on ties), the
// number correct and the mean -log(averaged p of the label).
struct EnsemblePrediction {
  std::vector<float> probs;
  std::vector<int> predicted;
  int correct = 0;
  double loss = 0.0;
};
// members[m] holds Q * K probabilities; labels[q] in [0, K).
EnsemblePrediction average_predictions(const std::vector<std::vector<float>>& members, int64_t queries,
                                       int64_t classes, const std::vector<int32_t>& labels);

class EnsembleEvaluator {
 public:
  // The evaluators must outlive this object (at least one).
  explicit EnsembleEvaluator(std::vector<Evaluator*> members);

  TaskEvaluation evaluate_task(const data::Episode& ep);
  EvalReport evaluate(data::EpisodeSampler& sampler, int n,
                      const std::function<void(int, const TaskEvaluation&)>& progress = {});
  // Member i's own accuracies on the tasks evaluated so far (for comparison).
  const std::vector<std::vector<double>>& member_accuracies() const { return member_acc_; }

 private:
  std::vector<Evaluator*> members_;
  std::vector<std::vector<double>> member_acc_;
};

}  // namespace metanas::meta
