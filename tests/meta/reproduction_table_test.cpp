// docs/reproduction.md against configs/: every preset has a section, and every
// row's value is what the preset resolves to (so a preset edit cannot drift
// from its documented reference setting silently). The checker is also run on
// planted drifts to show that it can fail.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bin/common/config.h"

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  REQUIRE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// `x` -> x; anything else -> "" (not a checked cell).
std::string unquote(const std::string& cell) {
  const std::string t = trim(cell);
  if (t.size() < 2 || t.front() != '`' || t.back() != '`') return "";
  return t.substr(1, t.size() - 2);
}

bool same_value(const json& doc, const json& cfg) {
  if (doc.is_number() && cfg.is_number()) {
    const double a = doc.get<double>(), b = cfg.get<double>();
    return std::abs(a - b) <= 1e-6 * std::max(1.0, std::abs(b));
  }
  if (doc.is_array() && cfg.is_array()) {
    if (doc.size() != cfg.size()) return false;
    for (size_t i = 0; i < doc.size(); ++i)
      if (!same_value(doc[i], cfg[i])) return false;
    return true;
  }
  return doc == cfg;
}

// Every problem found: sections naming a missing preset, presets without a
// section, empty sections, unknown keys, unparsable or differing values.
std::vector<std::string> check_tables(const std::string& doc, const fs::path& configs) {
  std::vector<std::string> problems;
  std::map<std::string, int> rows_per_preset;
  std::string preset;
  std::map<std::string, json> keys;
  std::istringstream in(doc);
  std::string line;
  const std::string head = "## `configs/";
  while (std::getline(in, line)) {
    if (line.rfind(head, 0) == 0) {
      const auto end = line.find('`', head.size());
      preset = line.substr(head.size(), end - head.size());
      keys.clear();
      rows_per_preset[preset] += 0;
      const fs::path p = configs / preset;
      if (!fs::exists(p)) {
        problems.push_back("section for a missing preset configs/" + preset);
        preset.clear();
        continue;
      }
      try {
        for (auto& [k, v] : metanas::cli::all_keys(metanas::cli::ProgramConfig::from_file(p.string())))
          keys[k] = v;
      } catch (const std::exception& e) {
        problems.push_back(preset + ": does not resolve: " + e.what());
        preset.clear();
      }
      continue;
    }
    if (line.rfind("## ", 0) == 0) preset.clear();
    if (preset.empty() || line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream row(line);
    std::string cell;
    while (std::getline(row, cell, '|')) cells.push_back(cell);
    if (cells.size() < 3) continue;
    const std::string key = unquote(cells[1]), value = unquote(cells[2]);
    if (key.empty() || value.empty()) continue;
    ++rows_per_preset[preset];
    const auto it = keys.find(key);
    if (it == keys.end()) {
      problems.push_back(preset + ": unknown key '" + key + "'");
      continue;
    }
    json v;
    try {
      v = json::parse(value);
    } catch (const std::exception&) {
      problems.push_back(preset + ": '" + key + "': value `" + value + "` is not JSON");
      continue;
    }
    if (!same_value(v, it->second))
      problems.push_back(preset + ": '" + key + "' is " + it->second.dump() + " in the preset but " +
                         v.dump() + " in docs/reproduction.md");
  }
  for (const auto& e : fs::directory_iterator(configs)) {
    if (e.path().extension() != ".json") continue;
    const std::string name = e.path().filename().string();
    if (!rows_per_preset.count(name))
      problems.push_back("configs/" + name + " has no section in docs/reproduction.md");
    else if (rows_per_preset[name] == 0)
      problems.push_back("configs/" + name + ": its section has no checked rows");
  }
  return problems;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

const fs::path kSource = METANAS_SOURCE_DIR;

}  // namespace

TEST_CASE("docs/reproduction.md: every preset matches its settings table", "[meta][presets]") {
  const std::string doc = read_text(kSource / "docs/reproduction.md");
  const auto problems = check_tables(doc, kSource / "configs");
  INFO(joined(problems));
  CHECK(problems.empty());
}

TEST_CASE("docs/reproduction.md checker: planted drifts are caught", "[meta][presets]") {
  const std::string doc = read_text(kSource / "docs/reproduction.md");
  // A changed value in the REPTILE table (train_shots 10 -> 1, the old preset).
  const std::string row = "| `episodes.train_shots` | `10` |";
  const auto at = doc.find(row);
  REQUIRE(at != std::string::npos);
  std::string drifted = doc;
  drifted.replace(at, row.size(), "| `episodes.train_shots` | `1` |");
  auto problems = check_tables(drifted, kSource / "configs");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("reptile-4conv-omniglot.json: 'episodes.train_shots' is 10") != std::string::npos);

  // A key that does not exist, and a preset whose section is gone.
  std::string typo = doc;
  typo.replace(at, row.size(), "| `episodes.train_shot` | `10` |");
  problems = check_tables(typo, kSource / "configs");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("unknown key 'episodes.train_shot'") != std::string::npos);

  std::string missing = doc;
  const std::string head = "## `configs/tnas-omniglot.json`";
  missing.replace(missing.find(head), head.size(), "## `configs/tnas-omniglot-renamed.json`");
  problems = check_tables(missing, kSource / "configs");
  INFO(joined(problems));
  CHECK(problems.size() == 2);  // the section names no preset; the preset has no section
}
