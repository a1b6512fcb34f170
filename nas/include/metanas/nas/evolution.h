// The evolutionary search of AT-NAS over Encodings (SPOS's evolution, the
// choices docs/algorithms.md "AT-NAS" lists): a generation of `population`
// candidates is scored; the elite (top-k, best fitness first) is the best k of
// the elite and the scored generation, so the best candidate is never lost;
// the next generation is `mutants` mutants of uniformly drawn elite parents
// (each gene resampled with mutation_prob) and `crossovers` uniform
// crossovers of two elite parents, skipping duplicates; generation 0 is the
// seeds then uniform random encodings.
//
// The object is incremental so that meta-training can score the candidates
// one task at a time across meta-batches (next_unscored / set_fitness;
// advance() once all are scored), and saveable (to_json / from_json) so that
// checkpoints carry it. search() runs a whole per-task search.
#pragma once
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "metanas/engine/random.h"
#include "metanas/nas/encoding.h"

namespace metanas::nas {

struct EvolutionOptions {
  int population = 50;   // candidates of generation 0
  int top_k = 10;        // elite size
  int mutants = 25;      // per later generation
  int crossovers = 25;   // per later generation
  int generations = 20;  // search(): generations after generation 0
  float mutation_prob = 0.1f;
  // Duplicates are skipped against every encoding ever scored in this search
  // (SPOS's vis_dict); false: only against the elite and the generation being
  // built (meta-training, where the supernet moves and old scores go stale).
  bool skip_all_seen = true;
  int max_attempts_factor = 20;  // at most factor * wanted draws per generation

  // Throws metanas::Error naming the bad field.
  void validate() const;
};

struct Candidate {
  Encoding encoding;
  double fitness = 0.0;
  bool scored = false;
};

class Evolution {
 public:
  Evolution(EncodingSpace space, EvolutionOptions opt);

  // Generation 0: the seeds (duplicates and invalid ones dropped, at most
  // `population`), filled up with random encodings.
  void start(Rng& rng, const std::vector<Encoding>& seeds = {});
  bool started() const { return started_; }

  // Index of the first unscored candidate of the generation, -1 when all are.
  int next_unscored() const;
  void set_fitness(int index, double fitness);
  // Updates the elite from the scored generation and breeds the next one.
  // Returns false (and leaves an empty generation) when no new candidate
  // could be bred (the space is exhausted).
  bool advance(Rng& rng);

  const std::vector<Candidate>& generation() const { return gen_; }
  const std::vector<Candidate>& elite() const { return elite_; }
  // The best scored candidate so far (elite front; throws when none).
  const Candidate& best() const;
  int generation_index() const { return generation_; }
  int64_t evaluations() const { return evaluations_; }
  const EncodingSpace& space() const { return space_; }
  const EvolutionOptions& options() const { return opt_; }

  std::string to_json() const;
  // Restores what to_json wrote (same space and options are the caller's).
  void load_json(const std::string& text);

 private:
  void merge_elite();
  bool seen(const Encoding& e) const;
  EncodingSpace space_;
  EvolutionOptions opt_;
  bool started_ = false;
  int generation_ = 0;
  int64_t evaluations_ = 0;
  std::vector<Candidate> gen_, elite_;
  std::set<Encoding> seen_;  // every encoding put into a generation (skip_all_seen)
};

// Scores a batch of encodings (one fitness each, higher is better).
using BatchFitness = std::function<std::vector<double>(const std::vector<Encoding>&)>;
// Called after each scored generation (generation index, the evolution).
using GenerationCallback = std::function<void(int, const Evolution&)>;

// A whole search: generation 0 + opt.generations generations, each scored
// with one call of `fitness`; returns the evolution (best() is the answer).
Evolution evolve(const EncodingSpace& space, const EvolutionOptions& opt, const BatchFitness& fitness,
                 Rng& rng, const std::vector<Encoding>& seeds = {},
                 const GenerationCallback& on_generation = {});

}  // namespace metanas::nas
