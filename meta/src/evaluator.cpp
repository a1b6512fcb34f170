// Evaluator (meta-testing: A architecture+weight steps, B weight steps, query
// accuracy) and the report statistics (mean, 95% CI, sparse parameter
// counts, genotype counts, one-shot runs).
#include "metanas/meta/evaluator.h"
#include "metanas/meta/rl/meta_rl.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/meta/dist/task_slots.h"
#include "metanas/engine/ops.h"
#include "metanas/nas/search_network.h"

namespace metanas::meta {

using nlohmann::json;

// ---- statistics ----

EvalReport summarize(std::vector<TaskEvaluation> tasks, int top_genotypes) {
  EvalReport r;
  r.tasks = std::move(tasks);
  const size_t n = r.tasks.size();
  if (n == 0) return r;
  double sum = 0, sum_loss = 0, sum_sparse = 0;
  r.sparse_min = r.sparse_max = r.tasks[0].sparse_params;
  for (const auto& t : r.tasks) {
    sum += t.accuracy;
    sum_loss += t.loss;
    sum_sparse += static_cast<double>(t.sparse_params);
    r.sparse_min = std::min(r.sparse_min, t.sparse_params);
    r.sparse_max = std::max(r.sparse_max, t.sparse_params);
  }
  r.mean_accuracy = sum / n;
  r.mean_loss = sum_loss / n;
  r.sparse_mean = sum_sparse / n;
  double var = 0;
  for (const auto& t : r.tasks) var += (t.accuracy - r.mean_accuracy) * (t.accuracy - r.mean_accuracy);
  r.std_accuracy = std::sqrt(var / n);
  r.ci95 = 1.96 * r.std_accuracy / std::sqrt(static_cast<double>(n));

  // Genotype counts, most common first; ties keep first-seen order.
  std::map<std::string, std::pair<int, size_t>> counts;  // text -> (count, first index)
  for (size_t i = 0; i < n; ++i) {
    const std::string& g = r.tasks[i].genotype;
    if (g.empty()) continue;
    auto it = counts.find(g);
    if (it == counts.end())
      counts.emplace(g, std::make_pair(1, i));
    else
      ++it->second.first;
  }
  std::vector<std::pair<std::string, std::pair<int, size_t>>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    if (a.second.first != b.second.first) return a.second.first > b.second.first;
    return a.second.second < b.second.second;
  });
  r.distinct_genotypes = static_cast<int>(sorted.size());
  for (size_t i = 0; i < sorted.size() && static_cast<int>(i) < top_genotypes; ++i)
    r.genotype_counts.emplace_back(sorted[i].first, sorted[i].second.first);
  return r;
}

std::vector<std::pair<int64_t, int>> EvalReport::sparse_histogram(int bins) const {
  std::vector<std::pair<int64_t, int>> h;
  if (tasks.empty() || bins < 1) return h;
  const int64_t span = sparse_max - sparse_min;
  if (span == 0) {
    h.emplace_back(sparse_min, static_cast<int>(tasks.size()));
    return h;
  }
  bins = static_cast<int>(std::min<int64_t>(bins, span + 1));
  for (int b = 0; b < bins; ++b) h.emplace_back(sparse_min + span * b / bins, 0);
  for (const auto& t : tasks) {
    // Bin b holds [min + span b / bins, min + span (b + 1) / bins); the last also holds max.
    const int b = static_cast<int>(static_cast<double>(t.sparse_params - sparse_min) * bins / span);
    h[std::min(b, bins - 1)].second++;
  }
  return h;
}

namespace {

json report_json(const EvalReport& r) {
  json j;
  j["tasks"] = r.tasks.size();
  j["mean_accuracy"] = r.mean_accuracy;
  j["std_accuracy"] = r.std_accuracy;
  j["ci95"] = r.ci95;
  j["mean_loss"] = r.mean_loss;
  j["sparse_params"] = {{"min", r.sparse_min}, {"max", r.sparse_max}, {"mean", r.sparse_mean}};
  json hist = json::array();
  for (const auto& [lo, c] : r.sparse_histogram(10)) hist.push_back({{"from", lo}, {"count", c}});
  j["sparse_params"]["histogram"] = hist;
  json g = json::array();
  for (const auto& [text, c] : r.genotype_counts) g.push_back({{"genotype", text}, {"count", c}});
  j["genotypes"] = g;
  j["distinct_genotypes"] = r.distinct_genotypes;
  json per = json::array();
  for (const auto& t : r.tasks)
    per.push_back({{"accuracy", t.accuracy}, {"loss", t.loss}, {"correct", t.correct}, {"total", t.total},
                   {"sparse_params", t.sparse_params}, {"genotype", t.genotype}});
  j["per_task"] = per;
  return j;
}

std::string percent(double v, int prec = 2) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << 100.0 * v << "%";
  return os.str();
}

}  // namespace

std::string EvalReport::to_json() const { return report_json(*this).dump(2); }

std::string EvalReport::summary() const {
  std::ostringstream os;
  os << "accuracy " << percent(mean_accuracy) << " +- " << percent(ci95) << " (95% CI over " << tasks.size()
     << " tasks; std " << percent(std_accuracy) << "), query loss " << std::setprecision(4) << mean_loss << "\n";
  os << "sparse parameters: mean " << std::fixed << std::setprecision(0) << sparse_mean << ", min "
     << sparse_min << ", max " << sparse_max << "\n";
  if (!genotype_counts.empty()) {
    os << "most common genotypes (" << distinct_genotypes << " distinct):\n";
    for (const auto& [g, c] : genotype_counts) os << "  " << c << " x " << g << "\n";
  }
  return os.str();
}

std::string RunsReport::to_json() const {
  json j;
  json runs_j = json::array();
  for (const auto& r : runs)
    runs_j.push_back({{"name", r.name}, {"error", r.error}, {"correct", r.correct}, {"total", r.total}});
  j["runs"] = runs_j;
  j["mean_error"] = mean_error;
  j["overall_error"] = overall_error;
  j["detail"] = report_json(detail);
  return j.dump(2);
}

std::string RunsReport::summary() const {
  std::ostringstream os;
  for (const auto& r : runs)
    os << r.name << ": error " << percent(r.error, 1) << " (" << r.total - r.correct << "/" << r.total << ")\n";
  os << "mean error over " << runs.size() << " runs " << percent(mean_error) << ", overall " << percent(overall_error)
     << "\n";
  return os.str();
}

// ---- Evaluator ----

Evaluator::Evaluator(const nas::Model& meta_model, const MetaConfig& cfg, uint64_t seed)
    : cfg_(cfg), rng_(seed) {
  cfg_.validate();
  task_ = std::make_unique<TaskLearner>(meta_model, TaskLearnerOptions::for_evaluation(cfg_));
  if (auto pre = rl::make_meta_rl(cfg_, false)) task_->set_pre_optimizer(pre);
}

void Evaluator::set_pre_optimizer_state(const Checkpoint& ck, const std::string& prefix) {
  TaskPreOptimizer* pre = task_->pre_optimizer();
  if (!pre) return;
  auto copy = std::make_unique<Checkpoint>();
  for (const auto& name : ck.names())
    if (name.compare(0, prefix.size(), prefix) == 0) copy->put(name, ck.get(name));
  pre->load_state(*copy, prefix);
  pre_state_ = std::move(copy);
  pre_prefix_ = prefix;
}

Evaluator::~Evaluator() = default;

void Evaluator::set_task_optimizer_state(const Checkpoint& ck, const std::string& prefix) {
  // Keep only the task-optimizer entries, validated once now.
  auto copy = std::make_unique<Checkpoint>();
  for (const auto& name : ck.names())
    if (name.compare(0, prefix.size(), prefix) == 0) copy->put(name, ck.get(name));
  task_->load_state(*copy, prefix);
  task_opt_state_ = std::move(copy);
  task_opt_prefix_ = prefix;
}

void Evaluator::copy_inner_lrs(TaskLearner& from) {
  InnerLrs* src = from.inner_lrs();
  InnerLrs* dst = task_->inner_lrs();
  if (src && dst) dst->copy_from(*src);
}

void Evaluator::clear_task_optimizer_state() {
  task_opt_state_.reset();
  task_->reset_state();
}

TaskEvaluation Evaluator::evaluate_task(const data::Episode& ep) { return evaluate_task(ep, rng_); }

void Evaluator::begin_task() {
  // Every task starts from the same task-optimizer state (MetaNAS restores
  // it after each test task).
  if (cfg_.eval.restore_task_optimizer && task_opt_state_)
    task_->load_state(*task_opt_state_, task_opt_prefix_);
  else
    task_->reset_state();
  if (pre_state_) task_->pre_optimizer()->load_state(*pre_state_, pre_prefix_);
}

Tensor Evaluator::query_probabilities(const data::Episode& ep) {
  MN_CHECK(!cfg_.eval.non_transductive_bn,
           "Evaluator::query_probabilities: ensembles evaluate the query set as one batch; unset eval.non_transductive_bn");
  begin_task();
  task_->model().backup_running_stats();
  task_->adapt(ep, rng_, warmup_);
  NoGradGuard ng;
  nas::ForwardContext ctx = task_->final_context();
  ctx.rng = &rng_;
  Tensor p = softmax(task_->model().forward(ep.query_x, ctx), 1.f);
  task_->model().restore_running_stats();
  return p;
}

TaskEvaluation Evaluator::evaluate_task(const data::Episode& ep, Rng& rng) {
  begin_task();
  // MAML++ per-step BN: the running statistics a test task touches are put back.
  task_->model().backup_running_stats();
  task_->adapt(ep, rng, warmup_);
  NoGradGuard ng;
  QueryResult q = task_->evaluate_query(ep, cfg_.eval.non_transductive_bn);
  task_->model().restore_running_stats();
  TaskEvaluation te;
  te.accuracy = q.acc.item();
  te.loss = q.loss.item();
  te.total = static_cast<int>(ep.query_x.dim(0));
  te.correct = static_cast<int>(std::lround(te.accuracy * te.total));
  te.sparse_params = task_->model().sparse_param_count(task_->final_context());
  // Only adapted architectures are reported: a fixed one is the same for every task.
  if (task_->model().alphas())
    if (const auto g = task_->model().architecture()) te.genotype = g->to_text();
  return te;
}

EvalReport Evaluator::evaluate(data::EpisodeSampler& sampler, int n,
                               const std::function<void(int, const TaskEvaluation&)>& progress) {
  if (n <= 0) n = cfg_.eval.tasks;
  std::vector<TaskEvaluation> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    data::Episode ep = sampler.sample();
    out.push_back(evaluate_task(ep));
    if (progress) progress(i + 1, out.back());
  }
  return summarize(std::move(out), cfg_.eval.top_genotypes);
}

EvalReport Evaluator::evaluate(const std::vector<data::Episode>& tasks,
                               const std::function<void(int, const TaskEvaluation&)>& progress) {
  std::vector<TaskEvaluation> out;
  out.reserve(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    out.push_back(evaluate_task(tasks[i]));
    if (progress) progress(static_cast<int>(i + 1), out.back());
  }
  return summarize(std::move(out), cfg_.eval.top_genotypes);
}

std::vector<TaskEvaluation> gather_task_evaluations(dist::Communicator& comm, const std::vector<TaskEvaluation>& mine,
                                                    int n, const char* who) {
  json part = json::array();
  for (const TaskEvaluation& te : mine)
    part.push_back(json::array({te.accuracy, te.loss, te.correct, te.total, te.sparse_params, te.genotype}));
  std::vector<TaskEvaluation> out;
  out.reserve(n);
  for (const std::string& p : comm.allgather_bytes(part.dump()))
    for (const json& t : json::parse(p)) {
      TaskEvaluation te;
      te.accuracy = t[0].get<double>();
      te.loss = t[1].get<double>();
      te.correct = t[2].get<int>();
      te.total = t[3].get<int>();
      te.sparse_params = t[4].get<int64_t>();
      te.genotype = t[5].get<std::string>();
      out.push_back(std::move(te));
    }
  MN_CHECK(static_cast<int>(out.size()) == n, who, ": gathered ", out.size(), " of ", n, " tasks");
  return out;
}

EvalReport Evaluator::evaluate_split(data::EpisodeSampler& sampler, int n, dist::Communicator& comm,
                                     const std::function<void(int, const TaskEvaluation&)>& progress) {
  if (n <= 0) n = cfg_.eval.tasks;
  const dist::TaskSlots slots(n, comm.size());
  std::vector<TaskEvaluation> mine;
  for (int i = 0; i < n; ++i) {
    Rng task_rng = rng_.split();
    if (!slots.owns(comm.rank(), i)) {
      sampler.skip();  // the same draws, no pixels
      continue;
    }
    const data::Episode ep = sampler.sample();
    mine.push_back(evaluate_task(ep, task_rng));
    if (progress) progress(static_cast<int>(mine.size()), mine.back());
  }
  return summarize(gather_task_evaluations(comm, mine, n, "Evaluator::evaluate_split"), cfg_.eval.top_genotypes);
}

RunsReport Evaluator::evaluate_runs_split(const std::vector<data::Episode>& runs, const std::vector<std::string>& names,
                                          dist::Communicator& comm) {
  MN_CHECK(names.empty() || names.size() == runs.size(), "Evaluator::evaluate_runs_split: ", names.size(),
           " names for ", runs.size(), " runs");
  const int n = static_cast<int>(runs.size());
  const dist::TaskSlots slots(n, comm.size());
  std::vector<TaskEvaluation> mine;
  for (int i = 0; i < n; ++i) {
    Rng task_rng = rng_.split();  // every rank splits every run's generator
    if (slots.owns(comm.rank(), i)) mine.push_back(evaluate_task(runs[i], task_rng));
  }
  return runs_report(gather_task_evaluations(comm, mine, n, "Evaluator::evaluate_runs_split"), names);
}

RunsReport Evaluator::evaluate_runs(const std::vector<data::Episode>& runs, const std::vector<std::string>& names) {
  MN_CHECK(names.empty() || names.size() == runs.size(), "Evaluator::evaluate_runs: ", names.size(),
           " names for ", runs.size(), " runs");
  std::vector<TaskEvaluation> all;
  for (const data::Episode& ep : runs) all.push_back(evaluate_task(ep));
  return runs_report(std::move(all), names);
}

RunsReport Evaluator::runs_report(std::vector<TaskEvaluation> all, const std::vector<std::string>& names) const {
  RunsReport rep;
  int64_t correct = 0, total = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const TaskEvaluation& te = all[i];
    RunResult r;
    if (names.empty()) {
      std::ostringstream os;
      os << "run" << std::setw(2) << std::setfill('0') << i + 1;
      r.name = os.str();
    } else {
      r.name = names[i];
    }
    r.correct = te.correct;
    r.total = te.total;
    r.error = te.total ? 1.0 - static_cast<double>(te.correct) / te.total : 0.0;
    correct += te.correct;
    total += te.total;
    rep.runs.push_back(r);
  }
  if (!rep.runs.empty()) {
    double s = 0;
    for (const auto& r : rep.runs) s += r.error;
    rep.mean_error = s / rep.runs.size();
    rep.overall_error = total ? 1.0 - static_cast<double>(correct) / total : 0.0;
  }
  rep.detail = summarize(std::move(all), cfg_.eval.top_genotypes);
  return rep;
}

RunsReport Evaluator::evaluate_runs(const std::vector<data::OneShotRun>& runs) {
  std::vector<data::Episode> eps;
  std::vector<std::string> names;
  for (const auto& r : runs) {
    eps.push_back(r.episode);
    names.push_back(r.name);
  }
  return evaluate_runs(eps, names);
}

}  // namespace metanas::meta
