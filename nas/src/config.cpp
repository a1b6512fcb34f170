// Model configurations: validation and JSON round trips.
#include "metanas/nas/config.h"

#include <type_traits>

#include "blocks.h"
#include "json_fields.h"
#include "metanas/engine/error.h"

namespace metanas::nas {

namespace {

// The JSON fields of the three configurations, listed once (to_json, from_json
// and the unknown-key check walk this list; from_json reads in this order).
struct ConfigFields {
  template <typename Cfg, typename F>
  void operator()(Cfg& c, F&& f) const {
    using T = std::remove_const_t<Cfg>;
    f("in_channels", c.in_channels);
    f("image_size", c.image_size);
    f("num_classes", c.num_classes);
    if constexpr (std::is_same_v<T, ConvNet4Config>) {
      f("channels", c.channels);
    } else {
      f("C", c.C);
      f("layers", c.layers);
      if constexpr (std::is_same_v<T, SearchConfig>) f("nodes", c.nodes);
      f("stem_multiplier", c.stem_multiplier);
      if constexpr (std::is_same_v<T, SearchConfig>) {
        f("space", c.space);
        f("mixed_op", c.mixed_op);
        f("aux_skip", c.aux_skip);
        f("partial_channels", c.partial_channels);
        f("edge_normalization", c.edge_normalization);
      }
      if constexpr (std::is_same_v<T, DiscreteConfig>) f("channel_scale", c.channel_scale);
      f("reduction_layers", c.reduction_layers);
      if constexpr (std::is_same_v<T, DiscreteConfig>) f("pool_bn", c.pool_bn);
      if constexpr (std::is_same_v<T, SearchConfig>) {
        f("node_inputs", c.node_inputs);
        f("channel_scale", c.channel_scale);
      }
      f("stem", c.stem);
      f("reduce_pad_odd", c.reduce_pad_odd);
    }
  }
};

void check_positive(int v, const char* field, const char* what) {
  MN_CHECK(v > 0, what, ": ", field, " must be positive, got ", v);
}

// The checks every configuration starts with: input and number of classes.
template <typename Cfg>
void check_input(const Cfg& c, const char* what) {
  check_positive(c.in_channels, "in_channels", what);
  check_positive(c.image_size, "image_size", what);
  MN_CHECK(c.num_classes >= 2, what, ": num_classes must be >= 2, got ", c.num_classes);
}

// Width and depth of the cell networks (search and discrete).
template <typename Cfg>
void check_cells(const Cfg& c, const char* what) {
  check_positive(c.C, "C", what);
  MN_CHECK(c.C % 2 == 0, what, ": C must be even (factorized reduce splits it in halves), got ", c.C);
  check_positive(c.layers, "layers", what);
}

void check_stem(const std::string& stem, int64_t stem_channels, const char* what) {
  MN_CHECK(stem == "conv" || stem == "pooled", what, ": unknown stem '", stem, "' (valid: conv, pooled)");
  MN_CHECK(stem != "pooled" || stem_channels % 2 == 0, what, ": the pooled stem halves stem_multiplier * C = ",
           stem_channels, ", which must be even");
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
  check_input(*this, w);
  check_cells(*this, w);
  check_positive(nodes, "nodes", w);
  check_positive(stem_multiplier, "stem_multiplier", w);
  check_reductions(reduction_layers, layers, w);
  try {
    parse_search_space(space);
  } catch (const Error& e) {
    MN_THROW(w, ": space: ", e.what());
  }
  MN_CHECK(mixed_op == "scalar" || mixed_op == "max_w", w, ": unknown mixed_op '", mixed_op,
           "' (valid: scalar, max_w)");
  MN_CHECK(partial_channels >= 1 && C % partial_channels == 0 && (C / partial_channels) % 2 == 0, w,
           ": partial_channels must be >= 1 and divide C into an even channel count (C ", C, ", K ",
           partial_channels, ")");
  MN_CHECK(node_inputs == "pairs" || node_inputs == "all", w, ": unknown node_inputs '", node_inputs,
           "' (valid: pairs, all)");
  MN_CHECK(node_inputs == "pairs" || !edge_normalization, w,
           ": edge_normalization weights the inputs of pair-weighted nodes; it needs node_inputs 'pairs'");
  check_positive(channel_scale, "channel_scale", w);
  MN_CHECK(channel_scale == 1 || partial_channels == 1, w, ": partial_channels needs channel_scale 1");
  check_stem(stem, static_cast<int64_t>(stem_multiplier) * C, w);
}

std::string SearchConfig::to_json() const { return detail::fields_to_json(*this, ConfigFields{}); }

SearchConfig SearchConfig::from_json(const std::string& text) {
  return detail::fields_from_json<SearchConfig>(text, "SearchConfig", ConfigFields{});
}

bool SearchConfig::operator==(const SearchConfig& o) const {
  return in_channels == o.in_channels && image_size == o.image_size && num_classes == o.num_classes &&
         C == o.C && layers == o.layers && nodes == o.nodes && stem_multiplier == o.stem_multiplier &&
         space == o.space && mixed_op == o.mixed_op && aux_skip == o.aux_skip &&
         partial_channels == o.partial_channels && edge_normalization == o.edge_normalization &&
         resolved_reductions() == o.resolved_reductions() && node_inputs == o.node_inputs &&
         channel_scale == o.channel_scale && stem == o.stem && reduce_pad_odd == o.reduce_pad_odd;
}

// ---- DiscreteConfig ----

std::vector<int> DiscreteConfig::resolved_reductions() const {
  return detail::resolve_reductions(layers, reduction_layers);
}

void DiscreteConfig::validate() const {
  const char* w = "DiscreteConfig";
  check_input(*this, w);
  check_cells(*this, w);
  check_positive(stem_multiplier, "stem_multiplier", w);
  check_positive(channel_scale, "channel_scale", w);
  check_reductions(reduction_layers, layers, w);
  check_stem(stem, static_cast<int64_t>(stem_multiplier) * C, w);
}

std::string DiscreteConfig::to_json() const { return detail::fields_to_json(*this, ConfigFields{}); }

DiscreteConfig DiscreteConfig::from_json(const std::string& text) {
  return detail::fields_from_json<DiscreteConfig>(text, "DiscreteConfig", ConfigFields{});
}

bool DiscreteConfig::operator==(const DiscreteConfig& o) const {
  return in_channels == o.in_channels && image_size == o.image_size && num_classes == o.num_classes &&
         C == o.C && layers == o.layers && stem_multiplier == o.stem_multiplier &&
         channel_scale == o.channel_scale && resolved_reductions() == o.resolved_reductions() && stem == o.stem &&
         reduce_pad_odd == o.reduce_pad_odd && pool_bn == o.pool_bn;
}

// ---- ConvNet4Config ----

int ConvNet4Config::final_size() const {
  int s = image_size;
  for (int i = 0; i < 4; ++i) s /= 2;  // max pool 2x2 stride 2, floor
  return s;
}

void ConvNet4Config::validate() const {
  const char* w = "ConvNet4Config";
  check_input(*this, w);
  check_positive(channels, "channels", w);
  MN_CHECK(final_size() >= 1, w, ": image_size ", image_size,
           " is too small for four 2x2 poolings (needs >= 16)");
}

std::string ConvNet4Config::to_json() const { return detail::fields_to_json(*this, ConfigFields{}); }

ConvNet4Config ConvNet4Config::from_json(const std::string& text) {
  return detail::fields_from_json<ConvNet4Config>(text, "ConvNet4Config", ConfigFields{});
}

bool ConvNet4Config::operator==(const ConvNet4Config& o) const {
  return in_channels == o.in_channels && image_size == o.image_size && num_classes == o.num_classes &&
         channels == o.channels;
}

}  // namespace metanas::nas
