// Ensemble meta-testing: averaged class probabilities over several adapted models.
#include "metanas/meta/ensemble.h"

#include <algorithm>
#include <cmath>

#include "metanas/engine/error.h"

namespace metanas::meta {

EnsemblePrediction average_predictions(const std::vector<std::vector<float>>& members, int64_t queries,
                                       int64_t classes, const std::vector<int32_t>& labels) {
  MN_CHECK(!members.empty(), "average_predictions: no ensemble members");
  MN_CHECK(static_cast<int64_t>(labels.size()) == queries, "average_predictions: ", labels.size(),
           " labels for ", queries, " query images");
  const size_t n = static_cast<size_t>(queries * classes);
  EnsemblePrediction out;
  std::vector<double> sum(n, 0.0);
  for (const auto& m : members) {
    MN_CHECK(m.size() == n, "average_predictions: a member gave ", m.size(), " probabilities, expected ", n);
    for (size_t i = 0; i < n; ++i) sum[i] += m[i];
  }
  out.probs.resize(n);
  for (size_t i = 0; i < n; ++i) out.probs[i] = static_cast<float>(sum[i] / members.size());
  double loss = 0;
  for (int64_t q = 0; q < queries; ++q) {
    const double* row = sum.data() + q * classes;
    const int best = static_cast<int>(std::max_element(row, row + classes) - row);
    out.predicted.push_back(best);
    const int32_t y = labels[q];
    MN_CHECK(y >= 0 && y < classes, "average_predictions: label ", y, " outside [0, ", classes, ")");
    if (best == y) ++out.correct;
    loss -= std::log(std::max(row[y] / members.size(), 1e-30));
  }
  out.loss = queries ? loss / queries : 0.0;
  return out;
}

EnsembleEvaluator::EnsembleEvaluator(std::vector<Evaluator*> members)
    : members_(std::move(members)), member_acc_(members_.size()) {
  MN_CHECK(!members_.empty(), "EnsembleEvaluator: no members");
}

TaskEvaluation EnsembleEvaluator::evaluate_task(const data::Episode& ep) {
  const int64_t Q = ep.query_x.dim(0);
  std::vector<std::vector<float>> probs;
  int64_t K = 0;
  for (size_t i = 0; i < members_.size(); ++i) {
    Tensor p = members_[i]->query_probabilities(ep);
    K = p.dim(1);
    probs.push_back(p.to_vector());
  }
  const std::vector<int32_t> labels = ep.query_y.to_int_vector();
  for (size_t i = 0; i < members_.size(); ++i) {
    const EnsemblePrediction own = average_predictions({probs[i]}, Q, K, labels);
    member_acc_[i].push_back(static_cast<double>(own.correct) / Q);
  }
  const EnsemblePrediction e = average_predictions(probs, Q, K, labels);
  TaskEvaluation te;
  te.total = static_cast<int>(Q);
  te.correct = e.correct;
  te.accuracy = static_cast<double>(e.correct) / Q;
  te.loss = e.loss;
  return te;
}

EvalReport EnsembleEvaluator::evaluate(data::EpisodeSampler& sampler, int n,
                                       const std::function<void(int, const TaskEvaluation&)>& progress) {
  std::vector<TaskEvaluation> out;
  for (int i = 0; i < n; ++i) {
    data::Episode ep = sampler.sample();
    out.push_back(evaluate_task(ep));
    if (progress) progress(i + 1, out.back());
  }
  return summarize(std::move(out), 0);
}

}  // namespace metanas::meta
