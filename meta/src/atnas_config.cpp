// AT-NAS configuration checks and its evolution options.
#include "metanas/engine/error.h"
#include "metanas/meta/atnas.h"
#include "metanas/meta/config.h"

namespace metanas::meta {

nas::EvolutionOptions atnas_evolution_options(const AtnasSection& a, bool meta_training) {
  nas::EvolutionOptions o;
  o.population = a.population;
  o.top_k = a.top_k;
  o.mutants = a.mutants;
  o.crossovers = a.crossovers;
  o.generations = a.generations;
  o.mutation_prob = a.mutation_prob;
  o.skip_all_seen = !meta_training;
  return o;
}

void validate_atnas(const MetaConfig& c) {
  const char* w = "MetaConfig";
  const AtnasSection& a = c.atnas;
  MN_CHECK(c.model.kind == ModelKind::Search, w,
           ": atnas trains subnets of a supernet and needs model.kind 'search', got '",
           model_kind_name(c.model.kind), "'");
  MN_CHECK(c.task.optimizer == InnerOptimizer::Sgd, w,
           ": atnas needs task.optimizer 'sgd' (an Adam state carried across tasks would move the "
           "weights of ops a task did not choose)");
  MN_CHECK(c.task.normalizer == nas::Normalizer::Softmax, w,
           ": atnas needs task.normalizer 'softmax' (a subnet is one-hot logits under softmax)");
  MN_CHECK(c.task.prune_threshold >= 0.f && c.eval.prune_threshold >= 0.f, w,
           ": atnas needs task.prune_threshold and eval.prune_threshold >= 0 (unchosen ops are skipped "
           "as exact zeros)");
  MN_CHECK(a.meta_update == "reptile" || a.meta_update == "fomaml", w,
           ": atnas.meta_update must be 'reptile' or 'fomaml', got '", a.meta_update, "'");
  MN_CHECK(a.sampling == "population" || a.sampling == "uniform", w,
           ": atnas.sampling must be 'population' or 'uniform', got '", a.sampling, "'");
  MN_CHECK(a.fitness == "accuracy" || a.fitness == "loss", w,
           ": atnas.fitness must be 'accuracy' or 'loss', got '", a.fitness, "'");
  // meta.task_parallel: meta-test only (a seeded searcher per task, atnas_split.h); meta-training
  // refuses it (Atnas::meta_step).
  MN_CHECK(a.fitness_stem == "shared" || a.fitness_stem == "adapted", w,
           ": atnas.fitness_stem must be 'shared' or 'adapted', got '", a.fitness_stem, "'");
  MN_CHECK(a.fitness_steps >= 1, w, ": atnas.fitness_steps must be >= 1, got ", a.fitness_steps);
  MN_CHECK(a.holdout_shots >= 1, w, ": atnas.holdout_shots must be >= 1, got ", a.holdout_shots);
  try {
    atnas_evolution_options(a, false).validate();
  } catch (const Error& e) {
    MN_THROW(w, ": atnas.", e.what());
  }
}

}  // namespace metanas::meta
