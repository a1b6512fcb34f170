// AT-NAS meta-training (see atnas.h): per task a subnet of the supernet,
// adapted by the SGD inner loop through its ops only; REPTILE or FOMAML
// meta-update of the shared weights; the evolution of subnets carried from
// meta-batch to meta-batch and saved in checkpoints.
#include "metanas/meta/atnas.h"

#include <nlohmann/json.hpp>

#include "metanas/engine/autograd.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/error.h"

namespace metanas::meta {

using json = nlohmann::json;

namespace {
nas::SearchNetwork& as_supernet(nas::Model& m, const char* who) {
  auto* s = dynamic_cast<nas::SearchNetwork*>(&m);
  MN_CHECK(s, who, ": atnas needs a search network (the supernet), got a '", m.kind(), "' model");
  return *s;
}
const nas::Model& check_model(const std::unique_ptr<nas::Model>& m) {
  MN_CHECK(m, "Atnas: no meta model");
  return *m;
}
}  // namespace

Atnas::Atnas(const MetaConfig& cfg, std::unique_ptr<nas::Model> meta_model)
    : MetaLearner(cfg, std::move(meta_model), TaskLearnerOptions::for_training(cfg)),
      space_(nas::encoding_space(as_supernet(*model_, "Atnas"))),
      evo_(space_, atnas_evolution_options(cfg.atnas, true)) {
  MN_CHECK(cfg.algorithm == Algorithm::Atnas, "Atnas: the configuration's algorithm is '",
           algorithm_name(cfg.algorithm), "'");
  (void)check_model;
  make_meta_optimizers();
  w_sum_ = model_->weights().clone();
}

nas::SearchNetwork& Atnas::supernet() { return as_supernet(*model_, "Atnas"); }

nas::Encoding Atnas::next_encoding() {
  if (cfg_.atnas.sampling == "uniform") return space_.random(rng_);
  if (!evo_.started()) evo_.start(rng_);
  if (evo_.next_unscored() < 0) {
    if (!evo_.advance(rng_)) evo_.start(rng_);  // exhausted: start over
  }
  return evo_.generation()[evo_.next_unscored()].encoding;
}

MetaStepStats Atnas::meta_step(const std::vector<data::Episode>& tasks) {
  MN_CHECK(!cfg_.meta.task_parallel,
           "Atnas::meta_step: atnas meta-trains its meta-batch's tasks in order (the population's candidates are "
           "scored one after another); meta.task_parallel (and so distributed meta-training) is not supported "
           "(it is for atnas meta-testing only)");
  MetaStepStats st = begin_step(tasks, "Atnas::meta_step");
  nas::SearchNetwork& net = supernet();
  ParamSet& W = model_->weights();
  const bool fomaml = cfg_.atnas.meta_update == "fomaml";
  const float inv = 1.f / static_cast<float>(st.tasks);
  if (fomaml)
    W.zero_grad();
  else
    w_sum_.values().zero_();
  last_.clear();

  StepSums sums;
  nas::Model& tm = task_->model();
  for (const data::Episode& ep : tasks) {
    const bool population = cfg_.atnas.sampling == "population";
    const nas::Encoding enc = next_encoding();
    const int cand = population ? evo_.next_unscored() : -1;
    last_.push_back(enc);
    nas::apply_encoding(net, enc);
    // warmup = true: no architecture steps (the subnet is fixed; alphas are
    // not adapted anyway) and a constant temperature.
    AdaptResult r = task_->adapt(ep, rng_, true);
    QueryResult q;
    if (fomaml) {
      tm.weights().zero_grad();
      q = task_->evaluate_query(ep, false);
      q.loss.backward();
      W.grads().add_(tm.weights().grads(), inv);
    } else {
      w_sum_.axpy_(tm.weights(), 1.f);
      if (cfg_.meta.query_eval || population) {
        NoGradGuard ng;
        q = task_->evaluate_query(ep, false);
      }
    }
    NoGradGuard ng;
    sums.add_support(r);
    if (q.loss.defined()) sums.add_query(q.loss.detach(), q.acc);
    if (population) {
      const double f = cfg_.atnas.fitness == "loss" ? -static_cast<double>(q.loss.item())
                                                    : static_cast<double>(q.acc.item());
      evo_.set_fitness(cand, f);
      if (evo_.next_unscored() < 0 && on_generation_) on_generation_(evo_);  // a generation is scored
    }
  }
  sums.mean_into(st);
  if (!fomaml) {
    // Meta-gradient g = W - mean_i W_i (REPTILE).
    W.grads().copy_(W.values());
    W.grads().add_(w_sum_.values(), -inv);
  }
  finish_step(st, false);
  return st;
}

void Atnas::save_state(Checkpoint& ck) const {
  MetaLearner::save_state(ck);
  json meta = json::parse(ck.metadata_json());
  meta["atnas"] = {{"evolution", json::parse(evo_.to_json())}};
  ck.set_metadata_json(meta.dump());
}

void Atnas::load_state(const Checkpoint& ck) {
  MetaLearner::load_state(ck);
  json meta = json::parse(ck.metadata_json());
  MN_CHECK(meta.contains("atnas") && meta["atnas"].is_object() && meta["atnas"].contains("evolution"),
           "Atnas::load_state: the checkpoint has no 'atnas.evolution' metadata (the population)");
  evo_.load_json(meta["atnas"]["evolution"].dump());
}

}  // namespace metanas::meta
