// The MetaNAS code's genotypes, kept in the text form of its genotypes.py so
// that each can be compared with the reference line by line.
#include "metanas/nas/builtin_genotypes.h"

#include <utility>

#include "metanas/engine/error.h"

namespace metanas::nas {

namespace {

const std::vector<std::pair<std::string, std::string>>& table() {
  static const std::vector<std::pair<std::string, std::string>> t = {
      {"metanas_og_v2",
       "Genotype(normal=[[('dil_conv_3x3', 0), ('sep_conv_3x3', 1)], [('avg_pool_3x3', 0), ('sep_conv_3x3', 1)], "
       "[('conv_1x5_5x1', 0), ('conv_3x3', 2)]], normal_concat=range(2, 5), "
       "reduce=[[('skip_connect', 0), ('sep_conv_3x3', 1)], [('conv_3x3', 0), ('dil_conv_3x3', 1)], "
       "[('dil_conv_3x3', 0), ('conv_1x5_5x1', 2)]], reduce_concat=range(2, 5))"},
      {"metanas_in_v2",
       "Genotype(normal=[[('conv_1x5_5x1', 0), ('conv_3x3', 1)], [('conv_3x3', 0), ('sep_conv_3x3', 2)], "
       "[('dil_conv_3x3', 1), ('conv_1x5_5x1', 3)]], normal_concat=range(2, 5), "
       "reduce=[[('sep_conv_3x3', 0), ('conv_3x3', 1)], [('conv_3x3', 0), ('sep_conv_3x3', 2)], "
       "[('conv_3x3', 0), ('dil_conv_3x3', 1)]], reduce_concat=range(2, 5))"},
      {"metanas_v1",
       "Genotype(normal=[[('conv_3x3', 0), ('conv_3x3', 1)], [('conv_1x5_5x1', 0), ('dil_conv_3x3', 2)], "
       "[('conv_1x5_5x1', 0), ('max_pool_3x3', 3)]], normal_concat=range(2, 5), "
       "reduce=[[('dil_conv_3x3', 0), ('sep_conv_3x3', 1)], [('conv_3x3', 0), ('max_pool_3x3', 1)], "
       "[('dil_conv_3x3', 2), ('conv_1x5_5x1', 3)]], reduce_concat=range(2, 5))"},
      // MetaNAS's note: Auto-Meta's figures concatenate range(0, 7), which
      // its implementation does not support; it uses range(2, 7) as here.
      {"auto_meta",
       "Genotype(normal=[[('conv_3x3', 1), ('max_pool_3x3', 1)], [('conv_1x5_5x1', 2), ('max_pool_3x3', 2)], "
       "[('conv_3x3', 2), ('conv_1x5_5x1', 3)], [('conv_3x3', 3), ('conv_3x3', 3)], "
       "[('conv_1x5_5x1', 3), ('conv_3x3', 2)]], normal_concat=range(2, 7), "
       "reduce=[[('conv_3x3', 1), ('max_pool_3x3', 1)], [('conv_1x5_5x1', 2), ('max_pool_3x3', 2)], "
       "[('conv_3x3', 2), ('conv_1x5_5x1', 3)], [('conv_3x3', 3), ('conv_3x3', 3)], "
       "[('conv_1x5_5x1', 3), ('conv_3x3', 2)]], reduce_concat=range(2, 7))"},
  };
  return t;
}

}  // namespace

const std::vector<std::string>& builtin_genotype_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& [name, text] : table()) n.push_back(name);
    return n;
  }();
  return names;
}

bool is_builtin_genotype(const std::string& name) {
  for (const auto& [n, text] : table())
    if (n == name) return true;
  return false;
}

Genotype builtin_genotype(const std::string& name) {
  for (const auto& [n, text] : table())
    if (n == name) return Genotype::from_text(text);
  std::string valid;
  for (const auto& n : builtin_genotype_names()) valid += (valid.empty() ? "" : ", ") + n;
  MN_THROW("unknown built-in genotype '", name, "' (valid: ", valid, ")");
}

}  // namespace metanas::nas
