// Loads the dataset splits a ProgramConfig's "data" section names, and checks
// that the configured model accepts their images.
#pragma once
#include <string>

#include "args.h"
#include "config.h"
#include "metanas/datasets/loader.h"
#include "metanas/datasets/omniglot.h"
#include "metanas/datasets/splits.h"
#include "metanas/datasets/synthetic.h"
#include "metanas/engine/error.h"

namespace metanas::cli {

// `split` is train | val | test. The training split gets data.train_rotations,
// the others data.eval_rotations.
inline data::Dataset load_split(const DataSection& d, const std::string& split_in) {
  const std::string split = data::canonical_split(split_in);
  const std::vector<int>& rotations = split == "train" ? d.train_rotations : d.eval_rotations;
  data::CacheOptions cache;
  cache.enabled = d.cache;
  cache.dir = d.cache_dir;
  if (d.dataset == "synthetic") {
    data::LoadOptions o;
    o.image_size = d.image_size;
    o.invert = d.invert;
    o.rotations = rotations;
    o.synthetic.num_alphabets = d.synthetic_alphabets;
    o.synthetic.classes_per_alphabet = d.synthetic_classes_per_alphabet;
    o.synthetic.drawers = d.synthetic_drawers;
    o.synthetic.seed = d.synthetic_seed;
    return data::load_dataset("synthetic", split, o);
  }
  MN_USAGE_CHECK(!d.root.empty(), "dataset '", d.dataset,
                 "' needs its folder: give --data PATH (data.root); see docs/datasets.md");
  if (d.dataset == "omniglot") {
    data::OmniglotOptions o;
    o.root = d.root;
    o.split = split;
    o.scheme = d.scheme;
    if (d.image_size >= 0) o.image_size = d.image_size;
    o.invert = d.invert;
    o.rotations = rotations;
    o.background_dir = d.background_dir;
    o.evaluation_dir = d.evaluation_dir;
    o.cache = cache;
    return data::load_omniglot(o);
  }
  data::LoadOptions o;
  o.root = d.root;
  // TripleMNIST reads the shared data.scheme; the Omniglot default means its own default.
  if (d.dataset == "triplemnist" && d.scheme != "background") o.scheme = d.scheme;
  o.image_size = d.image_size;
  o.invert = d.invert;
  o.rotations = rotations;
  o.layout = d.layout;
  o.cache = cache;
  return data::load_dataset(d.dataset, split, o);
}

// Input channels and size the configured model expects.
inline std::pair<int, int> model_input(const meta::MetaConfig& c) {
  switch (c.model.kind) {
    case meta::ModelKind::Search: return {c.model.search.in_channels, c.model.search.image_size};
    case meta::ModelKind::ConvNet4: return {c.model.convnet4.in_channels, c.model.convnet4.image_size};
    case meta::ModelKind::Discrete: return {c.model.discrete.in_channels, c.model.discrete.image_size};
    case meta::ModelKind::ConvNet4pp: return {c.model.convnet4pp.in_channels, c.model.convnet4pp.image_size};
  }
  return {0, 0};
}

// The model's input channels must match the images; the 4-conv network's
// classifier is sized for its image_size, so that must match too.
inline void check_model_fits(const meta::MetaConfig& c, const data::Dataset& ds, const std::string& what) {
  const auto [ch, size] = model_input(c);
  const std::string k = meta::model_kind_name(c.model.kind);
  MN_USAGE_CHECK(ch == ds.channels(), what, " has ", ds.channels(), "-channel images but model.", k,
                 ".in_channels is ", ch, " (set it, e.g. --model.", k, ".in_channels ", ds.channels(), ")");
  if (c.model.kind == meta::ModelKind::ConvNet4 || c.model.kind == meta::ModelKind::ConvNet4pp)
    MN_USAGE_CHECK(size == ds.height() && size == ds.width(), what, " has ", ds.height(), "x", ds.width(),
                   " images but model.", k, ".image_size is ", size, " (set it with --model.", k, ".image_size ",
                   ds.height(), " or data.image_size)");
}

}  // namespace metanas::cli
