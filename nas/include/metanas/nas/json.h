// nlohmann::json adapters for the NAS configurations and genotypes, so that
// they nest in larger JSON documents: `json j = cfg; auto c = j.get<SearchConfig>();`.
// Header-only on top of the text forms, so nlohmann stays out of the other headers.
#pragma once
#include <nlohmann/json.hpp>

#include "metanas/nas/config.h"
#include "metanas/nas/darts.h"
#include "metanas/nas/genotype.h"
#include "metanas/nas/mamlpp_convnet.h"

namespace metanas::nas {

inline void to_json(nlohmann::json& j, const SearchConfig& c) { j = nlohmann::json::parse(c.to_json()); }
inline void from_json(const nlohmann::json& j, SearchConfig& c) { c = SearchConfig::from_json(j.dump()); }
inline void to_json(nlohmann::json& j, const DiscreteConfig& c) { j = nlohmann::json::parse(c.to_json()); }
inline void from_json(const nlohmann::json& j, DiscreteConfig& c) { c = DiscreteConfig::from_json(j.dump()); }
inline void to_json(nlohmann::json& j, const ConvNet4Config& c) { j = nlohmann::json::parse(c.to_json()); }
inline void from_json(const nlohmann::json& j, ConvNet4Config& c) { c = ConvNet4Config::from_json(j.dump()); }
inline void to_json(nlohmann::json& j, const ConvNet4ppConfig& c) { j = nlohmann::json::parse(c.to_json()); }
inline void from_json(const nlohmann::json& j, ConvNet4ppConfig& c) { c = ConvNet4ppConfig::from_json(j.dump()); }
inline void to_json(nlohmann::json& j, const DartsOptions& o) { j = nlohmann::json::parse(o.to_json()); }
inline void from_json(const nlohmann::json& j, DartsOptions& o) { o = DartsOptions::from_json(j.dump()); }
inline void to_json(nlohmann::json& j, const Genotype& g) { j = nlohmann::json::parse(g.to_json()); }
inline void from_json(const nlohmann::json& j, Genotype& g) { g = Genotype::from_json(j.dump()); }

}  // namespace metanas::nas
