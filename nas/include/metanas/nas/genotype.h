// Genotype: a discrete cell architecture (one normal and one reduction cell).
// Each intermediate node lists its incoming edges as (op, input state); state
// 0 and 1 are the cell inputs (outputs of cells k-2 and k-1), state 2 + i is
// node i. The cell output concatenates the states in *_concat.
//
// Text form (the metanas/DARTS Python repr, parsed back by from_text):
//   Genotype(normal=[[('conv_3x3', 0), ('conv_3x3', 1)], ...], normal_concat=range(2, 5),
//            reduce=[...], reduce_concat=range(2, 5))
// JSON form:
//   {"normal": [[{"op": "conv_3x3", "input": 0}, {"op": "conv_3x3", "input": 1}], ...],
//    "normal_concat": [2, 3, 4], "reduce": [...], "reduce_concat": [2, 3, 4]}
#pragma once
#include <string>
#include <vector>

#include "metanas/nas/primitives.h"

namespace metanas::nas {

struct GenotypeEdge {
  Primitive op = Primitive::SkipConnect;
  int input = 0;  // state index
  bool operator==(const GenotypeEdge& o) const { return op == o.op && input == o.input; }
  bool operator!=(const GenotypeEdge& o) const { return !(*this == o); }
};

// Node i's incoming edges (two for genotypes derived from a search network).
using GenotypeNode = std::vector<GenotypeEdge>;

// Result of Genotype::render.
struct RenderResult {
  std::string dot_file;             // always written
  std::vector<std::string> files;   // rendered images (empty when dot is missing)
  bool rendered = false;
  std::string message;              // what happened, for logs
};

struct Genotype {
  std::vector<GenotypeNode> normal, reduce;
  std::vector<int> normal_concat, reduce_concat;

  // Throws metanas::Error when a node is empty, an edge reads a state that
  // does not exist yet (input >= 2 + node index), or a concat index is out of
  // range.
  void validate() const;

  std::string to_text() const;
  static Genotype from_text(const std::string& text);
  std::string to_json() const;
  static Genotype from_json(const std::string& text);

  // Graphviz DOT of both cells (two clusters) in one graph.
  std::string to_dot() const;
  // Writes <stem>.dot, then runs Graphviz `dot` for each format ("svg",
  // "png") when `dot` is on PATH. A missing `dot` is not an error: the result
  // says so (install Debian's graphviz). A failing `dot` throws.
  RenderResult render(const std::string& stem,
                      const std::vector<std::string>& formats = {"svg", "png"}) const;

  bool operator==(const Genotype& o) const;
  bool operator!=(const Genotype& o) const { return !(*this == o); }
};

}  // namespace metanas::nas
