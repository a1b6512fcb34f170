// Split names, the Omniglot alphabet table, the Vinyals split rule and
// split-file parsing (JSON object / JSON array / one name per line).
#include "metanas/datasets/splits.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "metanas/engine/error.h"

namespace metanas::data {

std::string canonical_split(const std::string& s) {
  if (s == "train" || s == "training") return "train";
  if (s == "val" || s == "valid" || s == "validation") return "val";
  if (s == "test" || s == "testing") return "test";
  MN_THROW("unknown split '", s, "' (expected train, val or test)");
}

const std::vector<OmniglotAlphabet>& omniglot_alphabets() {
  // Character counts of the official images_background.zip (30 alphabets,
  // 964 characters) and images_evaluation.zip (20 alphabets, 659).
  static const std::vector<OmniglotAlphabet> table = {
      {"Alphabet_of_the_Magi", 20, true},
      {"Anglo-Saxon_Futhorc", 29, true},
      {"Arcadian", 26, true},
      {"Armenian", 41, true},
      {"Asomtavruli_(Georgian)", 40, true},
      {"Balinese", 24, true},
      {"Bengali", 46, true},
      {"Blackfoot_(Canadian_Aboriginal_Syllabics)", 14, true},
      {"Braille", 26, true},
      {"Burmese_(Myanmar)", 34, true},
      {"Cyrillic", 33, true},
      {"Early_Aramaic", 22, true},
      {"Futurama", 26, true},
      {"Grantha", 43, true},
      {"Greek", 24, true},
      {"Gujarati", 48, true},
      {"Hebrew", 22, true},
      {"Inuktitut_(Canadian_Aboriginal_Syllabics)", 16, true},
      {"Japanese_(hiragana)", 52, true},
      {"Japanese_(katakana)", 47, true},
      {"Korean", 40, true},
      {"Latin", 26, true},
      {"Malay_(Jawi_-_Arabic)", 40, true},
      {"Mkhedruli_(Georgian)", 41, true},
      {"N_Ko", 33, true},
      {"Ojibwe_(Canadian_Aboriginal_Syllabics)", 14, true},
      {"Sanskrit", 42, true},
      {"Syriac_(Estrangelo)", 23, true},
      {"Tagalog", 17, true},
      {"Tifinagh", 55, true},
      {"Angelic", 20, false},
      {"Atemayar_Qelisayer", 26, false},
      {"Atlantean", 26, false},
      {"Aurek-Besh", 26, false},
      {"Avesta", 26, false},
      {"Ge_ez", 26, false},
      {"Glagolitic", 45, false},
      {"Gurmukhi", 45, false},
      {"Kannada", 41, false},
      {"Keble", 26, false},
      {"Malayalam", 47, false},
      {"Manipuri", 40, false},
      {"Mongolian", 30, false},
      {"Old_Church_Slavonic_(Cyrillic)", 45, false},
      {"Oriya", 46, false},
      {"Sylheti", 28, false},
      {"Syriac_(Serto)", 23, false},
      {"Tengwar", 25, false},
      {"Tibetan", 42, false},
      {"ULOG", 26, false},
  };
  return table;
}

const std::vector<std::string>& omniglot_vinyals_val_alphabets() {
  static const std::vector<std::string> v = {"Armenian", "Bengali", "Early_Aramaic", "Hebrew",
                                             "Mkhedruli_(Georgian)"};
  return v;
}

namespace {
std::string character_name(const std::string& alphabet, int k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "character%02d", k);
  return alphabet + "/" + buf;
}

// Sorted "Alphabet/characterNN" names of one image set.
std::vector<std::string> list_set(bool background) {
  std::vector<const OmniglotAlphabet*> as;
  for (const auto& a : omniglot_alphabets())
    if (a.background == background) as.push_back(&a);
  std::sort(as.begin(), as.end(),
            [](auto* x, auto* y) { return std::string(x->name) < std::string(y->name); });
  std::vector<std::string> out;
  for (const auto* a : as)
    for (int k = 1; k <= a->characters; ++k) out.push_back(character_name(a->name, k));
  return out;
}

bool in_val(const std::string& name) {
  const std::string alphabet = name.substr(0, name.find('/'));
  const auto& v = omniglot_vinyals_val_alphabets();
  return std::find(v.begin(), v.end(), alphabet) != v.end();
}
}  // namespace

std::vector<std::string> omniglot_vinyals_split(const std::string& split_in) {
  constexpr size_t kTest = 423;
  const std::string split = canonical_split(split_in);
  const std::vector<std::string> bg = list_set(true), ev = list_set(false);
  std::vector<std::string> out;
  if (split == "test") return std::vector<std::string>(ev.end() - kTest, ev.end());
  for (const auto& n : bg)
    if (in_val(n) == (split == "val")) out.push_back(n);
  if (split == "train") out.insert(out.end(), ev.begin(), ev.end() - kTest);
  return out;
}

std::vector<std::string> read_split_file(const std::string& path, const std::string& split_in) {
  const std::string split = canonical_split(split_in);
  std::ifstream in(path);
  MN_CHECK(in.good(), "cannot open split file '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const size_t first = text.find_first_not_of(" \t\r\n");
  std::vector<std::string> out;
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      MN_THROW("split file '", path, "': invalid JSON: ", e.what());
    }
    const nlohmann::json* list = &j;
    if (j.is_object()) {
      auto it = j.find(split);
      if (it == j.end() && split == "val") it = j.find("validation");
      MN_CHECK(it != j.end(), "split file '", path, "' has no \"", split, "\" list");
      list = &*it;
    }
    MN_CHECK(list->is_array(), "split file '", path, "': the \"", split,
             "\" entry must be an array of class names");
    for (const auto& e : *list) {
      MN_CHECK(e.is_string(), "split file '", path, "': entries must be strings, found ", e.dump());
      out.push_back(e.get<std::string>());
    }
  } else {
    std::istringstream ls(text);
    std::string line;
    while (std::getline(ls, line)) {
      const size_t hash = line.find('#');
      if (hash != std::string::npos) line.erase(hash);
      line.erase(0, line.find_first_not_of(" \t\r"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (!line.empty()) out.push_back(line);
    }
  }
  MN_CHECK(!out.empty(), "split file '", path, "' lists no classes for split '", split, "'");
  return out;
}

}  // namespace metanas::data
