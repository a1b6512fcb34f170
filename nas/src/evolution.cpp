// AT-NAS evolutionary search (see evolution.h): elitist top-k, mutation and
// uniform crossover of elite parents, duplicates skipped.
#include "metanas/nas/evolution.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "metanas/engine/error.h"

namespace metanas::nas {

void EvolutionOptions::validate() const {
  MN_CHECK(population >= 1, "population must be >= 1, got ", population);
  MN_CHECK(top_k >= 1, "top_k must be >= 1, got ", top_k);
  MN_CHECK(mutants >= 0 && crossovers >= 0 && mutants + crossovers >= 1,
           "mutants and crossovers must be >= 0 with a positive sum, got ", mutants, " and ",
           crossovers);
  MN_CHECK(generations >= 0, "generations must be >= 0, got ", generations);
  MN_CHECK(mutation_prob >= 0.f && mutation_prob <= 1.f, "mutation_prob must be in [0, 1], got ",
           mutation_prob);
  MN_CHECK(max_attempts_factor >= 1, "max_attempts_factor must be >= 1, got ", max_attempts_factor);
}

Evolution::Evolution(EncodingSpace space, EvolutionOptions opt) : space_(std::move(space)), opt_(opt) {
  try {
    opt_.validate();
  } catch (const Error& e) {
    MN_THROW("Evolution: ", e.what());
  }
}

bool Evolution::seen(const Encoding& e) const {
  for (const Candidate& c : gen_)
    if (c.encoding == e) return true;
  for (const Candidate& c : elite_)
    if (c.encoding == e) return true;
  return opt_.skip_all_seen && seen_.count(e) > 0;
}

void Evolution::start(Rng& rng, const std::vector<Encoding>& seeds) {
  gen_.clear();
  elite_.clear();
  seen_.clear();
  generation_ = 0;
  evaluations_ = 0;
  for (const Encoding& s : seeds) {
    if (static_cast<int>(gen_.size()) >= opt_.population) break;
    space_.validate(s);
    if (!seen(s)) gen_.push_back({s});
  }
  const int64_t attempts = static_cast<int64_t>(opt_.max_attempts_factor) * opt_.population;
  for (int64_t a = 0; a < attempts && static_cast<int>(gen_.size()) < opt_.population; ++a) {
    Encoding e = space_.random(rng);
    if (!seen(e)) gen_.push_back({e});
  }
  for (const Candidate& c : gen_) seen_.insert(c.encoding);
  started_ = true;
}

int Evolution::next_unscored() const {
  for (size_t i = 0; i < gen_.size(); ++i)
    if (!gen_[i].scored) return static_cast<int>(i);
  return -1;
}

void Evolution::set_fitness(int index, double fitness) {
  MN_CHECK(index >= 0 && index < static_cast<int>(gen_.size()), "Evolution::set_fitness: index ", index,
           " outside the generation of ", gen_.size());
  gen_[index].fitness = fitness;
  gen_[index].scored = true;
  ++evaluations_;
}

const Candidate& Evolution::best() const {
  MN_CHECK(!elite_.empty(), "Evolution::best: nothing scored yet");
  return elite_.front();
}

void Evolution::merge_elite() {
  // The elite first, so a tie keeps the incumbent (stable sort).
  std::vector<Candidate> all = elite_;
  for (const Candidate& c : gen_)
    if (c.scored) all.push_back(c);
  std::stable_sort(all.begin(), all.end(),
                   [](const Candidate& a, const Candidate& b) { return a.fitness > b.fitness; });
  elite_.clear();
  for (const Candidate& c : all) {
    if (static_cast<int>(elite_.size()) >= opt_.top_k) break;
    bool dup = false;
    for (const Candidate& e : elite_) dup = dup || e.encoding == c.encoding;
    if (!dup) elite_.push_back(c);
  }
}

bool Evolution::advance(Rng& rng) {
  MN_CHECK(started_, "Evolution::advance: start() first");
  MN_CHECK(next_unscored() < 0, "Evolution::advance: candidate ", next_unscored(), " of generation ",
           generation_, " is not scored");
  merge_elite();
  gen_.clear();
  ++generation_;
  const int k = static_cast<int>(elite_.size());
  for (int kind = 0; kind < 2; ++kind) {
    const int want = kind == 0 ? opt_.mutants : opt_.crossovers;
    int made = 0;
    const int64_t attempts = static_cast<int64_t>(opt_.max_attempts_factor) * want;
    for (int64_t a = 0; a < attempts && made < want; ++a) {
      const Encoding& p1 = elite_[rng.below(k)].encoding;
      Encoding child = kind == 0 ? space_.mutate(p1, opt_.mutation_prob, rng)
                                 : space_.crossover(p1, elite_[rng.below(k)].encoding, rng);
      if (seen(child)) continue;
      gen_.push_back({child});
      ++made;
    }
  }
  for (const Candidate& c : gen_) seen_.insert(c.encoding);
  return !gen_.empty();
}

std::string Evolution::to_json() const {
  auto list = [](const std::vector<Candidate>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const Candidate& c : v)
      a.push_back({{"encoding", c.encoding.to_text()}, {"fitness", c.fitness}, {"scored", c.scored}});
    return a;
  };
  nlohmann::json j;
  j["started"] = started_;
  j["generation_index"] = generation_;
  j["evaluations"] = evaluations_;
  j["generation"] = list(gen_);
  j["elite"] = list(elite_);
  nlohmann::json s = nlohmann::json::array();
  for (const Encoding& e : seen_) s.push_back(e.to_text());
  j["seen"] = s;
  return j.dump();
}

void Evolution::load_json(const std::string& text) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    auto list = [&](const nlohmann::json& a) {
      std::vector<Candidate> v;
      for (const auto& c : a) {
        Candidate x{Encoding::from_text(c.at("encoding").get<std::string>()), c.at("fitness").get<double>(),
                    c.at("scored").get<bool>()};
        space_.validate(x.encoding);
        v.push_back(x);
      }
      return v;
    };
    started_ = j.at("started").get<bool>();
    generation_ = j.at("generation_index").get<int>();
    evaluations_ = j.at("evaluations").get<int64_t>();
    gen_ = list(j.at("generation"));
    elite_ = list(j.at("elite"));
    seen_.clear();
    for (const auto& s : j.at("seen")) seen_.insert(Encoding::from_text(s.get<std::string>()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("evolution state: malformed JSON: ") + e.what());
  }
}

Evolution evolve(const EncodingSpace& space, const EvolutionOptions& opt, const BatchFitness& fitness,
                 Rng& rng, const std::vector<Encoding>& seeds, const GenerationCallback& on_generation) {
  Evolution ev(space, opt);
  ev.start(rng, seeds);
  for (int g = 0;; ++g) {
    std::vector<Encoding> batch;
    for (const Candidate& c : ev.generation()) batch.push_back(c.encoding);
    const std::vector<double> f = fitness(batch);
    MN_CHECK(f.size() == batch.size(), "evolve: the fitness function returned ", f.size(), " values for ",
             batch.size(), " encodings");
    for (size_t i = 0; i < f.size(); ++i) ev.set_fitness(static_cast<int>(i), f[i]);
    const bool last = g >= opt.generations;
    if (!ev.advance(rng) || last) {
      if (on_generation) on_generation(g, ev);
      break;
    }
    if (on_generation) on_generation(g, ev);
  }
  return ev;
}

}  // namespace metanas::nas
