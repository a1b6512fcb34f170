// AT-NAS meta-test: a per-task evolutionary search of subnets of the
// meta-trained supernet, scored on held-out support images (see atnas.h).
#include <chrono>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <sstream>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/meta/atnas.h"

namespace metanas::meta {

data::Episode holdout_split(const data::Episode& ep, int holdout_shots) {
  MN_CHECK(holdout_shots >= 1, "holdout_split: holdout_shots must be >= 1, got ", holdout_shots);
  if (ep.shots <= holdout_shots) {
    data::Episode s = ep;
    s.query_x = ep.support_x;
    s.query_y = ep.support_y;
    s.queries = ep.shots;
    s.query_refs = ep.support_refs;
    return s;
  }
  const std::vector<float> x = ep.support_x.to_vector();
  const std::vector<int32_t> y = ep.support_y.to_int_vector();
  const int64_t per = ep.support_x.numel() / ep.support_x.dim(0);
  const int train = ep.shots - holdout_shots;
  data::Episode s;
  s.ways = ep.ways;
  s.shots = train;
  s.queries = holdout_shots;
  s.classes = ep.classes;
  std::vector<float> sx, qx;
  std::vector<int32_t> sy, qy;
  for (int c = 0; c < ep.ways; ++c)
    for (int k = 0; k < ep.shots; ++k) {
      const int64_t row = static_cast<int64_t>(c) * ep.shots + k;
      const bool tr = k < train;
      auto& dx = tr ? sx : qx;
      dx.insert(dx.end(), x.begin() + row * per, x.begin() + (row + 1) * per);
      (tr ? sy : qy).push_back(y[row]);
      if (!ep.support_refs.empty()) (tr ? s.support_refs : s.query_refs).push_back(ep.support_refs[row]);
    }
  Shape sh = ep.support_x.shape();
  const Device d = ep.support_x.device();
  sh[0] = static_cast<int64_t>(sy.size());
  s.support_x = Tensor::from_vector(sx, sh, d);
  s.support_y = Tensor::from_ints(sy, Shape{static_cast<int64_t>(sy.size())}, d);
  sh[0] = static_cast<int64_t>(qy.size());
  s.query_x = Tensor::from_vector(qx, sh, d);
  s.query_y = Tensor::from_ints(qy, Shape{static_cast<int64_t>(qy.size())}, d);
  if (d != Device::CPU) {
    s.support_host = sx;
    s.support_y_host = sy;
  }
  return s;
}

struct AtnasSearcher::Impl {
  const nas::SearchNetwork* supernet;
  MetaConfig cfg;
  Rng rng;
  // The batches' generator of the fitness adaptations of the current task:
  // each candidate starts from a copy, so all see the same support batches
  // (common random numbers, and the stem cache hits).
  Rng fit_rng;
  std::vector<nas::Encoding> seeds;
  std::unique_ptr<nas::Model> scratch;  // supernet weights + the subnet being scored
  std::unique_ptr<TaskLearner> fit, test;
  bool shared_stem = false;
  nas::SearchNetwork& net() { return static_cast<nas::SearchNetwork&>(*scratch); }
  nas::SearchNetwork& fit_net() { return static_cast<nas::SearchNetwork&>(fit->model()); }
};

AtnasSearcher::AtnasSearcher(const nas::SearchNetwork& supernet, const MetaConfig& cfg, uint64_t seed,
                             std::vector<nas::Encoding> seeds)
    : impl_(std::make_unique<Impl>()) {
  MN_CHECK(cfg.algorithm == Algorithm::Atnas, "AtnasSearcher: the configuration's algorithm is '",
           algorithm_name(cfg.algorithm), "'");
  cfg.validate();
  Impl& m = *impl_;
  m.supernet = &supernet;
  m.cfg = cfg;
  m.rng = Rng(seed);
  m.seeds = std::move(seeds);
  m.scratch = supernet.clone();
  TaskLearnerOptions fo = TaskLearnerOptions::for_evaluation(cfg);
  fo.arch_steps = cfg.atnas.fitness_steps;
  fo.weight_steps = 0;
  m.fit = std::make_unique<TaskLearner>(*m.scratch, fo);
  m.test = std::make_unique<TaskLearner>(*m.scratch, TaskLearnerOptions::for_evaluation(cfg));
  m.shared_stem = cfg.atnas.fitness_stem == "shared";
  if (m.shared_stem) {
    // The frozen stem gets no gradient, so plain SGD leaves it at the
    // supernet's weights, and its outputs can be cached.
    for (int i : m.fit_net().stem_param_indices()) m.fit_net().weights()[i].set_requires_grad(false);
    m.fit_net().set_stem_cache(true);
  }
}

void AtnasSearcher::set_stem_cache(bool on) {
  MN_CHECK(!on || impl_->shared_stem, "AtnasSearcher::set_stem_cache: the stem cache needs atnas.fitness_stem 'shared'");
  impl_->fit_net().set_stem_cache(on);
}

int64_t AtnasSearcher::stem_cache_hits() const { return impl_->fit_net().stem_cache_hits(); }

AtnasSearcher::~AtnasSearcher() = default;

double AtnasSearcher::fitness(const nas::Encoding& e, const data::Episode& split) {
  Impl& m = *impl_;
  nas::apply_encoding(m.net(), e);
  Rng r = m.fit_rng;
  m.fit->adapt(split, r, true);
  NoGradGuard ng;
  QueryResult q = m.fit->evaluate_query(split, false);
  return m.cfg.atnas.fitness == "loss" ? -static_cast<double>(q.loss.item()) : static_cast<double>(q.acc.item());
}

AtnasTaskResult AtnasSearcher::evaluate_task(const data::Episode& ep,
                                             const std::function<void(int, const nas::Evolution&)>& progress) {
  Impl& m = *impl_;
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  m.scratch->weights().copy_from(m.supernet->weights());
  m.fit_rng = m.rng.split();
  const int64_t hits0 = stem_cache_hits();
  const nas::EncodingSpace sp = nas::encoding_space(m.net());
  AtnasTaskResult r;
  nas::Encoding best;
  if (m.cfg.atnas.test_search) {
    const data::Episode split = holdout_split(ep, m.cfg.atnas.holdout_shots);
    nas::Evolution ev = nas::evolve(
        sp, atnas_evolution_options(m.cfg.atnas, false),
        [&](const std::vector<nas::Encoding>& batch) {
          std::vector<double> f;
          for (const nas::Encoding& e : batch) f.push_back(fitness(e, split));
          return f;
        },
        m.rng, m.seeds, progress);
    best = ev.best().encoding;
    r.best_fitness = ev.best().fitness;
    r.generations = ev.generation_index();
    r.evaluations = ev.evaluations();
  } else {
    MN_CHECK(!m.seeds.empty(), "AtnasSearcher: atnas.test_search is off and there is no meta-trained elite");
    best = m.seeds.front();
  }
  nas::apply_encoding(m.net(), best);
  m.test->adapt(ep, m.rng, true);
  NoGradGuard ng;
  QueryResult q = m.test->evaluate_query(ep, m.cfg.eval.non_transductive_bn);
  r.best = best;
  r.eval.accuracy = q.acc.item();
  r.eval.loss = q.loss.item();
  r.eval.total = static_cast<int>(ep.query_x.dim(0));
  r.eval.correct = static_cast<int>(std::lround(r.eval.accuracy * r.eval.total));
  r.eval.sparse_params = m.test->model().sparse_param_count(m.test->final_context());
  r.eval.genotype = sp.decode(best).to_text();
  r.search_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.search_cpu_seconds = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  r.stem_cache_hits = stem_cache_hits() - hits0;
  return r;
}

AtnasReport AtnasSearcher::evaluate(const std::vector<data::Episode>& tasks,
                                    const std::function<void(int, const AtnasTaskResult&)>& done,
                                    const std::function<void(int, const nas::Evolution&)>& progress) {
  AtnasReport rep;
  std::vector<TaskEvaluation> evals;
  for (size_t i = 0; i < tasks.size(); ++i) {
    rep.tasks.push_back(evaluate_task(tasks[i], progress));
    evals.push_back(rep.tasks.back().eval);
    rep.mean_search_seconds += rep.tasks.back().search_seconds;
    rep.mean_search_cpu_seconds += rep.tasks.back().search_cpu_seconds;
    if (done) done(static_cast<int>(i) + 1, rep.tasks.back());
  }
  if (!tasks.empty()) {
    rep.mean_search_seconds /= static_cast<double>(tasks.size());
    rep.mean_search_cpu_seconds /= static_cast<double>(tasks.size());
  }
  double dist = 0;
  int64_t pairs = 0;
  for (size_t a = 0; a < rep.tasks.size(); ++a)
    for (size_t b = a + 1; b < rep.tasks.size(); ++b, ++pairs)
      for (size_t g = 0; g < rep.tasks[a].best.genes.size(); ++g)
        dist += rep.tasks[a].best.genes[g] != rep.tasks[b].best.genes[g];
  rep.mean_gene_distance = pairs ? dist / static_cast<double>(pairs) : 0.0;
  rep.summary = summarize(std::move(evals), impl_->cfg.eval.top_genotypes);
  return rep;
}

std::string AtnasReport::to_json() const {
  nlohmann::json j = nlohmann::json::parse(summary.to_json());
  nlohmann::json t = nlohmann::json::array();
  for (const AtnasTaskResult& r : tasks)
    t.push_back({{"encoding", r.best.to_text()},
                 {"genotype", r.eval.genotype},
                 {"accuracy", r.eval.accuracy},
                 {"params", r.eval.sparse_params},
                 {"best_fitness", r.best_fitness},
                 {"search_seconds", r.search_seconds},
                 {"search_cpu_seconds", r.search_cpu_seconds},
                 {"stem_cache_hits", r.stem_cache_hits},
                 {"generations", r.generations},
                 {"evaluations", r.evaluations}});
  j["atnas"] = {{"tasks", t},
                {"mean_search_seconds", mean_search_seconds},
                {"mean_search_cpu_seconds", mean_search_cpu_seconds},
                {"mean_gene_distance", mean_gene_distance},
                {"distinct_genotypes", summary.distinct_genotypes}};
  return j.dump(2);
}

std::string AtnasReport::summary_text() const {
  std::ostringstream os;
  os << summary.summary() << "\n";
  os << "atnas: mean search time per task " << mean_search_seconds << " s (" << mean_search_cpu_seconds
     << " s CPU), " << summary.distinct_genotypes
     << " distinct genotypes over " << tasks.size() << " tasks, mean pairwise gene distance "
     << mean_gene_distance << "\n";
  return os.str();
}

}  // namespace metanas::meta
