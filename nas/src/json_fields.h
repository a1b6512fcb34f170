// Internal JSON helpers for the NAS option structs (configurations, DARTS
// options): each struct lists its fields once, as a functor calling
// f(key, member) per field, and to_json / from_json / the unknown-key check
// all walk that one list.
#pragma once
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>

#include "metanas/engine/error.h"

namespace metanas::nas::detail {

// Parses `text`, which must hold a JSON object; errors start with `what`.
inline nlohmann::json parse_object(const std::string& text, const char* what) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    MN_THROW(what, ": invalid JSON: ", e.what());
  }
  MN_CHECK(j.is_object(), what, ": expected a JSON object, got ", j.type_name());
  return j;
}

// Rejects keys that the struct does not have (a typo must not silently fall
// back to a default).
inline void check_keys(const nlohmann::json& j, const std::set<std::string>& known, const char* what) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!known.count(it.key())) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      MN_THROW(what, ": unknown key '", it.key(), "' (known: ", list, ")");
    }
  }
}

// Reads j[key] into `out` when present (absent: `out` keeps its default).
template <typename T>
void read_field(const nlohmann::json& j, const char* key, T& out, const char* what) {
  if (!j.contains(key)) return;
  if constexpr (std::is_same_v<T, float>) {
    // A double beyond float's range would silently become inf.
    const nlohmann::json& v = j.at(key);
    MN_CHECK(!v.is_number() || std::fabs(v.get<double>()) <= std::numeric_limits<float>::max(), what,
             ": bad value for '", key, "': ", v.dump(), " is out of the float range (|x| <= 3.4e38)");
  }
  try {
    out = j.at(key).get<T>();
  } catch (const std::exception& e) {
    MN_THROW(what, ": bad value for '", key, "': ", e.what());
  }
}

// The JSON object of `s`'s fields (as listed by `fields`), dumped compactly.
template <typename S, typename Fields>
std::string fields_to_json(const S& s, Fields fields) {
  nlohmann::json j = nlohmann::json::object();
  fields(s, [&](const char* key, const auto& v) { j[key] = v; });
  return j.dump();
}

// Parses `text` into a default-constructed S: unknown keys rejected, absent
// keys left at their defaults, fields read in list order, then S::validate().
template <typename S, typename Fields>
S fields_from_json(const std::string& text, const char* what, Fields fields) {
  const nlohmann::json j = parse_object(text, what);
  S s;
  std::set<std::string> known;
  fields(s, [&](const char* key, const auto&) { known.insert(key); });
  check_keys(j, known, what);
  fields(s, [&](const char* key, auto& v) { read_field(j, key, v, what); });
  s.validate();
  return s;
}

}  // namespace metanas::nas::detail
