// Model configurations: validation and JSON round trips.
#include "metanas/nas/config.h"

#include <nlohmann/json.hpp>
#include <set>

#include "blocks.h"
#include "metanas/engine/error.h"

namespace metanas::nas {

using nlohmann::json;

namespace {

json parse_object(const std::string& text, const char* what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    MN_THROW(what, ": invalid JSON: ", e.what());
  }
  MN_CHECK(j.is_object(), what, ": expected a JSON object, got ", j.type_name());
  return j;
}

// Rejects keys that the struct does not have.
void check_keys(const json& j, const std::set<std::string>& known, const char* what) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!known.count(it.key())) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      MN_THROW(what, ": unknown key '", it.key(), "' (known: ", list, ")");
    }
  }
}

template <typename T>
void read(const json& j, const char* key, T& out, const char* what) {
  if (!j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const std::exception& e) {
    MN_THROW(what, ": bad value for '", key, "': ", e.what());
  }
}

void check_positive(int v, const char* field, const char* what) {
  MN_CHECK(v > 0, what, ": ", field, " must be positive, got ", v);
}

void check_reductions(const std::vector<int>& r, int layers, const char* what) {
  for (int i : r)
    MN_CHECK(i >= 0 && i < layers, what, ": reduction layer ", i, " outside 0..", layers - 1);
}

}  // namespace

// ---- SearchConfig ----

std::vector<int> SearchConfig::resolved_reductions() const {
  return detail::resolve_reductions(layers, reduction_layers);
}

void SearchConfig::validate() const {
  const char* w = "SearchConfig";
  check_positive(in_channels, "in_channels", w);
  check_positive(image_size, "image_size", w);
  MN_CHECK(num_classes >= 2, w, ": num_classes must be >= 2, got ", num_classes);
  check_positive(C, "C", w);
  MN_CHECK(C % 2 == 0, w, ": C must be even (factorized reduce splits it in halves), got ", C);
  check_positive(layers, "layers", w);
  check_positive(nodes, "nodes", w);
  check_positive(stem_multiplier, "stem_multiplier", w);
  check_reductions(reduction_layers, layers, w);
}

std::string SearchConfig::to_json() const {
  json j = {{"in_channels", in_channels}, {"image_size", image_size},
            {"num_classes", num_classes}, {"C", C},
            {"layers", layers},           {"nodes", nodes},
            {"stem_multiplier", stem_multiplier}, {"reduction_layers", reduction_layers}};
  return j.dump();
}

SearchConfig SearchConfig::from_json(const std::string& text) {
  const char* w = "SearchConfig";
  json j = parse_object(text, w);
  check_keys(j, {"in_channels", "image_size", "num_classes", "C", "layers", "nodes",
                 "stem_multiplier", "reduction_layers"}, w);
  SearchConfig c;
  read(j, "in_channels", c.in_channels, w);
  read(j, "image_size", c.image_size, w);
  read(j, "num_classes", c.num_classes, w);
  read(j, "C", c.C, w);
  read(j, "layers", c.layers, w);
  read(j, "nodes", c.nodes, w);
  read(j, "stem_multiplier", c.stem_multiplier, w);
  read(j, "reduction_layers", c.reduction_layers, w);
  c.validate();
  return c;
}

bool SearchConfig::operator==(const SearchConfig& o) const {
  return in_channels == o.in_channels && image_size == o.image_size && num_classes == o.num_classes &&
         C == o.C && layers == o.layers && nodes == o.nodes && stem_multiplier == o.stem_multiplier &&
         resolved_reductions() == o.resolved_reductions();
}

// ---- DiscreteConfig ----

std::vector<int> DiscreteConfig::resolved_reductions() const {
  return detail::resolve_reductions(layers, reduction_layers);
}

void DiscreteConfig::validate() const {
  const char* w = "DiscreteConfig";
  check_positive(in_channels, "in_channels", w);
  check_positive(image_size, "image_size", w);
  MN_CHECK(num_classes >= 2, w, ": num_classes must be >= 2, got ", num_classes);
  check_positive(C, "C", w);
  MN_CHECK(C % 2 == 0, w, ": C must be even (factorized reduce splits it in halves), got ", C);
  check_positive(layers, "layers", w);
  check_positive(stem_multiplier, "stem_multiplier", w);
  check_positive(channel_scale, "channel_scale", w);
  check_reductions(reduction_layers, layers, w);
}

std::string DiscreteConfig::to_json() const {
  json j = {{"in_channels", in_channels}, {"image_size", image_size},
            {"num_classes", num_classes}, {"C", C},
            {"layers", layers},           {"stem_multiplier", stem_multiplier},
            {"channel_scale", channel_scale}, {"reduction_layers", reduction_layers}};
  return j.dump();
}

DiscreteConfig DiscreteConfig::from_json(const std::string& text) {
  const char* w = "DiscreteConfig";
  json j = parse_object(text, w);
  check_keys(j, {"in_channels", "image_size", "num_classes", "C", "layers", "stem_multiplier",
                 "channel_scale", "reduction_layers"}, w);
  DiscreteConfig c;
  read(j, "in_channels", c.in_channels, w);
  read(j, "image_size", c.image_size, w);
  read(j, "num_classes", c.num_classes, w);
  read(j, "C", c.C, w);
  read(j, "layers", c.layers, w);
  read(j, "stem_multiplier", c.stem_multiplier, w);
  read(j, "channel_scale", c.channel_scale, w);
  read(j, "reduction_layers", c.reduction_layers, w);
  c.validate();
  return c;
}

bool DiscreteConfig::operator==(const DiscreteConfig& o) const {
  return in_channels == o.in_channels && image_size == o.image_size && num_classes == o.num_classes &&
         C == o.C && layers == o.layers && stem_multiplier == o.stem_multiplier &&
         channel_scale == o.channel_scale && resolved_reductions() == o.resolved_reductions();
}

// ---- ConvNet4Config ----

int ConvNet4Config::final_size() const {
  int s = image_size;
  for (int i = 0; i < 4; ++i) s /= 2;  // max pool 2x2 stride 2, floor
  return s;
}

void ConvNet4Config::validate() const {
  const char* w = "ConvNet4Config";
  check_positive(in_channels, "in_channels", w);
  check_positive(image_size, "image_size", w);
  MN_CHECK(num_classes >= 2, w, ": num_classes must be >= 2, got ", num_classes);
  check_positive(channels, "channels", w);
  MN_CHECK(final_size() >= 1, w, ": image_size ", image_size,
           " is too small for four 2x2 poolings (needs >= 16)");
}

std::string ConvNet4Config::to_json() const {
  json j = {{"in_channels", in_channels}, {"image_size", image_size},
            {"num_classes", num_classes}, {"channels", channels}};
  return j.dump();
}

ConvNet4Config ConvNet4Config::from_json(const std::string& text) {
  const char* w = "ConvNet4Config";
  json j = parse_object(text, w);
  check_keys(j, {"in_channels", "image_size", "num_classes", "channels"}, w);
  ConvNet4Config c;
  read(j, "in_channels", c.in_channels, w);
  read(j, "image_size", c.image_size, w);
  read(j, "num_classes", c.num_classes, w);
  read(j, "channels", c.channels, w);
  c.validate();
  return c;
}

bool ConvNet4Config::operator==(const ConvNet4Config& o) const {
  return in_channels == o.in_channels && image_size == o.image_size && num_classes == o.num_classes &&
         channels == o.channels;
}

}  // namespace metanas::nas
