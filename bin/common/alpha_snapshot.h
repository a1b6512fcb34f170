// The architecture weights of a search network as JSON, for metrics.jsonl
// (one snapshot per validation) and the HTML report's heatmaps: per cell type
// the softmax of each edge's op logits (pruned ops, logit -1e9, become 0),
// one row per edge "node i <- input j", columns in primitive order.
#pragma once
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "metanas/nas/primitives.h"
#include "metanas/nas/search_network.h"

namespace metanas::cli {

inline nlohmann::json alpha_snapshot(const nas::Model& model) {
  using nlohmann::json;
  const auto* net = dynamic_cast<const nas::SearchNetwork*>(&model);
  if (!net || !net->alphas()) return nullptr;
  const ParamSet& a = *net->alphas();
  const std::vector<float> v = a.values().to_vector();
  json ops = json::array();
  for (nas::Primitive p : nas::all_primitives()) ops.push_back(nas::primitive_name(p));
  json cells = json::object();
  for (const char* type : {"normal", "reduce"}) {
    json rows = json::array(), labels = json::array();
    const std::string prefix = std::string("alpha_") + type + ".";
    for (int i = 0; i < a.size(); ++i) {
      if (a.name(i).rfind(prefix, 0) != 0 || a.shape(i).ndim() != 2) continue;
      const int64_t r = a.shape(i)[0], c = a.shape(i)[1];
      const std::string node = a.name(i).substr(prefix.size());
      for (int64_t e = 0; e < r; ++e) {
        const float* x = v.data() + a.offset(i) + e * c;
        const float mx = *std::max_element(x, x + c);
        double sum = 0;
        std::vector<double> w(static_cast<size_t>(c));
        for (int64_t k = 0; k < c; ++k) sum += w[k] = std::exp(static_cast<double>(x[k]) - mx);
        json row = json::array();
        for (int64_t k = 0; k < c; ++k) row.push_back(std::round(w[k] / sum * 1e4) / 1e4);
        rows.push_back(row);
        labels.push_back("node " + node + " <- input " + std::to_string(e));
      }
    }
    cells[type] = {{"rows", labels}, {"weights", rows}};
  }
  return {{"ops", ops}, {"cells", cells}};
}

}  // namespace metanas::cli
