// The genotypes that the MetaNAS code ships (metanas/utils/genotypes.py), by
// the names its --meta_model flag uses: "metanas_og_v2", "metanas_in_v2",
// "metanas_v1" (searched by MetaNAS) and "auto_meta" (Kim et al.'s Auto-Meta
// cell as MetaNAS transcribes it). The scaled-MetaNAS presets select them by
// name (model.genotype = "metanas_og_v2").
#pragma once
#include <string>
#include <vector>

#include "metanas/nas/genotype.h"

namespace metanas::nas {

// The names, in a fixed order.
const std::vector<std::string>& builtin_genotype_names();
bool is_builtin_genotype(const std::string& name);
// Throws metanas::Error listing the valid names for an unknown one.
Genotype builtin_genotype(const std::string& name);

}  // namespace metanas::nas
