// P-DARTS op dropping and the skip-connection limit.
#include "metanas/nas/pdarts.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "metanas/engine/error.h"

namespace metanas::nas {

namespace {

int column_of(const SearchNetwork& net, Primitive p) {
  const auto& ops = space_primitives(parse_search_space(net.config().space));
  for (size_t k = 0; k < ops.size(); ++k)
    if (ops[k] == p) return static_cast<int>(k);
  return -1;
}

// Columns of `row` (n entries) to keep: the `keep` largest alive ones.
std::vector<char> keep_mask(const float* row, int n, int keep) {
  std::vector<int> idx;
  for (int k = 0; k < n; ++k)
    if (row[k] > 0.5f * kPrunedLogit) idx.push_back(k);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return row[a] > row[b]; });
  std::vector<char> m(static_cast<size_t>(n), 0);
  for (size_t r = 0; r < idx.size() && static_cast<int>(r) < keep; ++r) m[static_cast<size_t>(idx[r])] = 1;
  return m;
}

}  // namespace

DroppedOps pdarts_drop_ops(SearchNetwork& net, int keep, bool released) {
  MN_CHECK(keep >= 1, "pdarts_drop_ops: keep must be >= 1, got ", keep);
  ParamSet& A = *net.alphas();
  std::vector<float> a = A.values().to_vector();
  const int P = static_cast<int>(space_primitives(parse_search_space(net.config().space)).size());
  DroppedOps d;
  for (int i = 0; i < net.config().nodes; ++i) {
    const int64_t red = A.offset(net.alpha_index(CellType::Reduce, i));
    for (CellType t : {CellType::Normal, CellType::Reduce}) {
      const int64_t off = A.offset(net.alpha_index(t, i));
      const int64_t rank_off = released ? red : off;  // the released code ranks by the reduce cell
      std::vector<char> kept(static_cast<size_t>((i + 2) * P));
      for (int j = 0; j < i + 2; ++j) {
        std::vector<char> m = keep_mask(a.data() + rank_off + j * P, P, keep);
        std::copy(m.begin(), m.end(), kept.begin() + j * P);
      }
      float fill = kPrunedLogit;
      if (released) {
        float mn = 0.f;  // min over the masked matrix (dropped entries count as 0)
        for (int e = 0; e < (i + 2) * P; ++e) mn = std::min(mn, kept[static_cast<size_t>(e)] ? a[off + e] : 0.f);
        fill = mn - 1e-4f;
      }
      for (int e = 0; e < (i + 2) * P; ++e) {
        if (kept[static_cast<size_t>(e)] || a[off + e] <= 0.5f * kPrunedLogit) continue;
        d.entries.push_back({off + e, a[off + e]});
        a[off + e] = fill;
      }
    }
  }
  A.values().copy_(Tensor::from_vector(a, A.values().shape(), A.values().device()));
  if (released) d.entries.clear();  // the released drop is permanent
  return d;
}

namespace {
void write_entries(SearchNetwork& net, const DroppedOps& d, bool original) {
  if (d.entries.empty()) return;
  ParamSet& A = *net.alphas();
  std::vector<float> a = A.values().to_vector();
  for (const auto& [off, v] : d.entries) a[static_cast<size_t>(off)] = original ? v : kPrunedLogit;
  A.values().copy_(Tensor::from_vector(a, A.values().shape(), A.values().device()));
}
}  // namespace

void restore_dropped(SearchNetwork& net, const DroppedOps& d) { write_entries(net, d, true); }
void reapply_dropped(SearchNetwork& net, const DroppedOps& d) { write_entries(net, d, false); }

int limit_skip_connections(SearchNetwork& net, int max_skips) {
  MN_CHECK(max_skips >= 0, "limit_skip_connections: max_skips must be >= 0, got ", max_skips);
  const int sk = column_of(net, Primitive::SkipConnect);
  MN_CHECK(sk >= 0, "limit_skip_connections: the search space '", net.config().space, "' has no skip_connect");
  const int P = static_cast<int>(space_primitives(parse_search_space(net.config().space)).size());
  ParamSet& A = *net.alphas();
  int lowered = 0;
  for (int guard = 0; guard < 1000; ++guard) {
    const Genotype g = net.genotype();
    std::vector<float> a = A.values().to_vector();
    int count = 0;
    int64_t worst = -1;
    for (size_t i = 0; i < g.normal.size(); ++i)
      for (const auto& e : g.normal[i]) {
        if (e.op != Primitive::SkipConnect) continue;
        ++count;
        const int64_t off = A.offset(net.alpha_index(CellType::Normal, static_cast<int>(i))) + e.input * P + sk;
        if (worst < 0 || a[static_cast<size_t>(off)] < a[static_cast<size_t>(worst)]) worst = off;
      }
    if (count <= max_skips) return lowered;
    const int64_t row = worst - sk;
    const float mn = *std::min_element(a.begin() + row, a.begin() + row + P);
    float v = mn - 1e-4f;
    if (!(v < mn)) v = std::nextafter(mn, -std::numeric_limits<float>::infinity());  // absorbed at large |mn|
    a[static_cast<size_t>(worst)] = v;
    A.values().copy_(Tensor::from_vector(a, A.values().shape(), A.values().device()));
    ++lowered;
  }
  MN_THROW("limit_skip_connections: did not converge");
}

namespace {
int normal_skips(const SearchNetwork& net) {
  int n = 0;
  for (const auto& node : net.genotype().normal)
    for (const auto& e : node) n += e.op == Primitive::SkipConnect;
  return n;
}

void lower_below_row_min(std::vector<float>& a, int64_t row, int P, int col) {
  const float mn = *std::min_element(a.begin() + row, a.begin() + row + P);
  float v = mn - 1e-4f;
  if (!(v < mn)) v = std::nextafter(mn, -std::numeric_limits<float>::infinity());
  a[static_cast<size_t>(row + col)] = v;
}
}  // namespace

int limit_skip_connections_released(SearchNetwork& net, int max_skips) {
  MN_CHECK(max_skips >= 0, "limit_skip_connections_released: max_skips must be >= 0, got ", max_skips);
  const int sk = column_of(net, Primitive::SkipConnect);
  MN_CHECK(sk >= 1, "limit_skip_connections_released: the released rule ranks by the column left of skip_connect, "
           "but skip_connect is ", sk < 0 ? "absent from" : "the first op of", " the search space '",
           net.config().space, "'");
  if (normal_skips(net) < max_skips) return 0;
  const int P = static_cast<int>(space_primitives(parse_search_space(net.config().space)).size());
  ParamSet& A = *net.alphas();
  std::vector<int64_t> rows;  // the released concatenation of the normal alphas
  for (int i = 0; i < net.config().nodes; ++i)
    for (int j = 0; j < i + 2; ++j) rows.push_back(A.offset(net.alpha_index(CellType::Normal, i)) + j * P);
  std::vector<float> a = A.values().to_vector();
  std::vector<float> key(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) key[r] = a[static_cast<size_t>(rows[r] + sk - 1)];
  std::vector<char> seen(rows.size(), 0);
  int lowered = 0;
  for (size_t it = 0; it < rows.size(); ++it) {
    size_t r = rows.size();
    for (size_t q = 0; q < rows.size(); ++q)  // argmin, the first on ties (np.argmin)
      if (!seen[q] && (r == rows.size() || key[q] < key[r])) r = q;
    seen[r] = 1;
    lower_below_row_min(a, rows[r == 0 ? 0 : r - 1], P, sk);
    A.values().copy_(Tensor::from_vector(a, A.values().shape(), A.values().device()));
    ++lowered;
    if (normal_skips(net) < max_skips) break;
  }
  return lowered;
}

}  // namespace metanas::nas
