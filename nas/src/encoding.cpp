// AT-NAS architecture encodings: genes <-> genotypes, random draws, SPOS
// mutation and uniform crossover, and writing a subnet into a search
// network's architecture parameters.
#include "metanas/nas/encoding.h"

#include <cmath>
#include <sstream>

#include "metanas/engine/error.h"
#include "metanas/nas/search_network.h"

namespace metanas::nas {

namespace {
int num_pairs(int inputs) { return inputs * (inputs - 1) / 2; }
}  // namespace

std::string Encoding::to_text() const {
  std::ostringstream os;
  for (size_t g = 0; g < genes.size(); ++g) {
    if (g) os << (g % 3 == 0 ? '|' : '.');
    os << genes[g];
  }
  return os.str();
}

Encoding Encoding::from_text(const std::string& s) {
  Encoding e;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    MN_CHECK(j > i && j - i < 9, "Encoding::from_text: expected a gene at position ", i, " of '", s, "'");
    e.genes.push_back(std::stoi(s.substr(i, j - i)));
    if (j == s.size()) break;
    MN_CHECK(s[j] == '.' || s[j] == '|', "Encoding::from_text: unexpected '", s[j], "' in '", s, "'");
    i = j + 1;
    MN_CHECK(i < s.size(), "Encoding::from_text: trailing separator in '", s, "'");
  }
  return e;
}

EncodingSpace::EncodingSpace(SearchSpace space, int nodes) : space_(space), nodes_(nodes) {
  MN_CHECK(nodes >= 1, "EncodingSpace: nodes must be >= 1, got ", nodes);
  for (Primitive p : space_primitives(space))
    if (p != Primitive::None) ops_.push_back(p);
}

int EncodingSpace::cardinality(int g) const {
  MN_CHECK(g >= 0 && g < num_genes(), "EncodingSpace: gene ", g, " out of range [0, ", num_genes(), ")");
  const int node = (g / 3) % nodes_;
  return g % 3 == 0 ? num_pairs(node + 2) : static_cast<int>(ops_.size());
}

double EncodingSpace::size() const {
  double n = 1;
  for (int g = 0; g < num_genes(); ++g) n *= cardinality(g);
  return n;
}

void EncodingSpace::validate(const Encoding& e) const {
  MN_CHECK(static_cast<int>(e.genes.size()) == num_genes(), "encoding: expected ", num_genes(),
           " genes (", nodes_, " nodes), got ", e.genes.size());
  for (int g = 0; g < num_genes(); ++g)
    MN_CHECK(e.genes[g] >= 0 && e.genes[g] < cardinality(g), "encoding: gene ", g, " = ", e.genes[g],
             " outside [0, ", cardinality(g), ")");
}

Encoding EncodingSpace::random(Rng& rng) const {
  Encoding e;
  for (int g = 0; g < num_genes(); ++g) e.genes.push_back(static_cast<int>(rng.below(cardinality(g))));
  return e;
}

Genotype EncodingSpace::decode(const Encoding& e) const {
  validate(e);
  Genotype gt;
  for (int c = 0; c < 2; ++c) {
    auto& cell = c == 0 ? gt.normal : gt.reduce;
    for (int i = 0; i < nodes_; ++i) {
      const int* gene = &e.genes[3 * (c * nodes_ + i)];
      const auto pair = SearchNetwork::input_pairs(i + 2)[gene[0]];
      cell.push_back({GenotypeEdge{ops_[gene[1]], pair.first}, GenotypeEdge{ops_[gene[2]], pair.second}});
    }
    auto& concat = c == 0 ? gt.normal_concat : gt.reduce_concat;
    for (int i = 0; i < nodes_; ++i) concat.push_back(i + 2);
  }
  return gt;
}

Encoding EncodingSpace::encode(const Genotype& gt) const {
  gt.validate();
  Encoding e;
  for (int c = 0; c < 2; ++c) {
    const char* cn = c == 0 ? "normal" : "reduce";
    const auto& cell = c == 0 ? gt.normal : gt.reduce;
    const auto& concat = c == 0 ? gt.normal_concat : gt.reduce_concat;
    MN_CHECK(static_cast<int>(cell.size()) == nodes_, "encode: the ", cn, " cell has ", cell.size(),
             " nodes, the space ", nodes_);
    std::vector<int> all;
    for (int i = 0; i < nodes_; ++i) all.push_back(i + 2);
    MN_CHECK(concat == all, "encode: the ", cn, " cell must concatenate all its nodes");
    for (int i = 0; i < nodes_; ++i) {
      const GenotypeNode& node = cell[i];
      MN_CHECK(node.size() == 2, "encode: ", cn, " node ", i, " has ", node.size(), " edges, a subnet has 2");
      GenotypeEdge a = node[0], b = node[1];
      if (b.input < a.input) std::swap(a, b);
      MN_CHECK(a.input != b.input, "encode: ", cn, " node ", i, " reads input ", a.input, " twice");
      const auto pairs = SearchNetwork::input_pairs(i + 2);
      int pi = 0;
      while (pairs[pi] != std::make_pair(a.input, b.input)) ++pi;
      e.genes.push_back(pi);
      for (const GenotypeEdge* ed : {&a, &b}) {
        int k = 0;
        while (k < static_cast<int>(ops_.size()) && ops_[k] != ed->op) ++k;
        MN_CHECK(k < static_cast<int>(ops_.size()), "encode: op ", primitive_name(ed->op), " of ", cn,
                 " node ", i, " is not a candidate of the ", search_space_name(space_), " space");
        e.genes.push_back(k);
      }
    }
  }
  return e;
}

Encoding EncodingSpace::mutate(const Encoding& parent, float p, Rng& rng) const {
  validate(parent);
  MN_CHECK(p >= 0.f && p <= 1.f, "mutate: probability must be in [0, 1], got ", p);
  Encoding e = parent;
  for (int g = 0; g < num_genes(); ++g)
    if (rng.uniform() < p) e.genes[g] = static_cast<int>(rng.below(cardinality(g)));
  return e;
}

Encoding EncodingSpace::crossover(const Encoding& a, const Encoding& b, Rng& rng) const {
  validate(a);
  validate(b);
  Encoding e = a;
  for (int g = 0; g < num_genes(); ++g)
    if (rng.uniform() < 0.5f) e.genes[g] = b.genes[g];
  return e;
}

EncodingSpace encoding_space(const SearchNetwork& net) {
  return EncodingSpace(parse_search_space(net.config().space), net.config().nodes);
}

void apply_encoding(SearchNetwork& net, const Encoding& e) {
  const EncodingSpace sp = encoding_space(net);
  sp.validate(e);
  ParamSet& A = *net.alphas();
  std::vector<float> v(static_cast<size_t>(A.numel()), kPrunedLogit);
  const auto& cols = space_primitives(sp.space());
  auto col_of = [&](Primitive p) {
    int k = 0;
    while (cols[k] != p) ++k;
    return k;
  };
  const int n_cols = static_cast<int>(cols.size());
  for (int c = 0; c < 2; ++c) {
    const CellType type = c == 0 ? CellType::Normal : CellType::Reduce;
    for (int i = 0; i < sp.nodes(); ++i) {
      const int* gene = &e.genes[3 * (c * sp.nodes() + i)];
      const auto pair = SearchNetwork::input_pairs(i + 2)[gene[0]];
      const int64_t a_off = A.offset(net.alpha_index(type, i));
      v[a_off + pair.first * n_cols + col_of(sp.ops()[gene[1]])] = 0.f;
      v[a_off + pair.second * n_cols + col_of(sp.ops()[gene[2]])] = 0.f;
      v[A.offset(net.pair_index(type, i)) + gene[0]] = 0.f;
    }
  }
  A.values().copy_(Tensor::from_vector(v, Shape{A.numel()}, A.device()));
}

}  // namespace metanas::nas
