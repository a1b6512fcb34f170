// Architecture encodings for AT-NAS (docs/algorithms.md, "AT-NAS"): a subnet
// of the search network as a vector of integer genes, valid by construction.
//
// Layout: for cell c in (normal, reduce), for node i in 0..nodes-1, three
// genes at 3 * (c * nodes + i):
//   +0  which two of the node's i + 2 inputs it reads: an index into
//       SearchNetwork::input_pairs(i + 2) (pairs (a, b), a < b)
//   +1  the op on input a, +2 the op on input b: indices into ops()
// Every gene value in [0, cardinality(g)) is a valid architecture, so random
// draws, mutation and uniform crossover never produce an invalid subnet.
// ops() is the space's primitives without `none` (a DARTS genotype never
// keeps it; a subnet edge computing zeros would be a pruned edge instead).
#pragma once
#include <string>
#include <vector>

#include "metanas/engine/random.h"
#include "metanas/nas/genotype.h"
#include "metanas/nas/primitives.h"

namespace metanas::nas {

class SearchNetwork;

struct Encoding {
  std::vector<int> genes;
  bool operator==(const Encoding& o) const { return genes == o.genes; }
  bool operator!=(const Encoding& o) const { return genes != o.genes; }
  bool operator<(const Encoding& o) const { return genes < o.genes; }
  // "3.0.4|1.2.2|..." (one group per node), for logs and checkpoints.
  std::string to_text() const;
  static Encoding from_text(const std::string& s);  // throws on malformed text
};

class EncodingSpace {
 public:
  // nodes >= 1 intermediate nodes per cell (as SearchConfig::nodes).
  EncodingSpace(SearchSpace space, int nodes);

  SearchSpace space() const { return space_; }
  int nodes() const { return nodes_; }
  // The candidate ops of an edge (the space's primitives without `none`).
  const std::vector<Primitive>& ops() const { return ops_; }
  int num_genes() const { return 6 * nodes_; }
  // Number of values gene g can take.
  int cardinality(int g) const;
  // Number of distinct subnets (as a double: it overflows quickly).
  double size() const;

  // Throws metanas::Error naming the gene when the length or a value is wrong.
  void validate(const Encoding& e) const;
  Encoding random(Rng& rng) const;
  // The genotype the encoding stands for (concat = all nodes, as the search
  // network's cell output).
  Genotype decode(const Encoding& e) const;
  // Inverse of decode; throws when the genotype is not a subnet of the space
  // (not two distinct inputs per node, an op outside ops(), other concat).
  Encoding encode(const Genotype& g) const;

  // SPOS mutation: each gene resampled uniformly over its values with
  // probability p (the draw may return the same value).
  Encoding mutate(const Encoding& parent, float p, Rng& rng) const;
  // Uniform crossover: each gene from a or b with probability 1/2.
  Encoding crossover(const Encoding& a, const Encoding& b, Rng& rng) const;

 private:
  SearchSpace space_;
  int nodes_;
  std::vector<Primitive> ops_;
};

// The encoding space of a search network (its space and node count).
EncodingSpace encoding_space(const SearchNetwork& net);

// Writes the subnet into the network's architecture parameters: chosen op and
// chosen pair logits 0, all others kPrunedLogit. With the softmax normalizer
// (any temperature) the chosen weights are exactly 1 and the others exactly
// 0, so a forward with prune_threshold >= 0 computes only the chosen ops and
// equals the discrete network of decode(e) with the same weights.
void apply_encoding(SearchNetwork& net, const Encoding& e);

}  // namespace metanas::nas
