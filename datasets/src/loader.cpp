// load_dataset: dispatch by dataset name to the synthetic generator or a loader.
#include "metanas/datasets/loader.h"

#include "metanas/datasets/mini_imagenet.h"
#include "metanas/datasets/omniglot.h"
#include "metanas/datasets/splits.h"
#include "metanas/datasets/triple_mnist.h"
#include "metanas/engine/error.h"

namespace metanas::data {

std::vector<std::string> dataset_names() { return {"synthetic", "omniglot", "miniimagenet", "triplemnist"}; }

Dataset load_dataset(const std::string& name, const std::string& split_in, const LoadOptions& o) {
  const std::string split = canonical_split(split_in);
  MN_CHECK(o.image_size >= -1, "load_dataset: image_size must be -1 (default), 0 (stored) or a size, got ",
           o.image_size);
  if (name == "synthetic") {
    SyntheticOptions s = o.synthetic;
    if (o.image_size >= 1) s.size = o.image_size;
    s.invert = s.invert || o.invert;
    Dataset d = make_synthetic_split(s, split);
    const bool plain = o.rotations.size() == 1 && o.rotations[0] % 360 == 0;
    return plain ? d : d.with_rotations(o.rotations);
  }
  if (name == "omniglot") {
    OmniglotOptions g;
    g.root = o.root;
    g.split = split;
    if (!o.scheme.empty()) g.scheme = o.scheme;
    if (o.image_size >= 0) g.image_size = o.image_size;
    g.invert = o.invert;
    g.rotations = o.rotations;
    g.cache = o.cache;
    return load_omniglot(g);
  }
  if (name == "miniimagenet" || name == "mini-imagenet" || name == "mini_imagenet") {
    MiniImageNetOptions m;
    m.root = o.root;
    m.split = split;
    m.layout = o.layout;
    if (o.image_size >= 0) m.image_size = o.image_size;
    m.invert = o.invert;
    m.cache = o.cache;
    Dataset d = load_mini_imagenet(m);
    const bool plain = o.rotations.size() == 1 && o.rotations[0] % 360 == 0;
    return plain ? d : d.with_rotations(o.rotations);
  }
  if (name == "triplemnist" || name == "triple-mnist" || name == "triple_mnist") {
    TripleMnistOptions t;
    t.root = o.root;
    t.split = split;
    if (!o.scheme.empty()) t.scheme = o.scheme;
    if (o.image_size >= 0) t.image_size = o.image_size;
    t.invert = o.invert;
    t.cache = o.cache;
    Dataset d = load_triple_mnist(t);
    const bool plain = o.rotations.size() == 1 && o.rotations[0] % 360 == 0;
    return plain ? d : d.with_rotations(o.rotations);
  }
  MN_THROW("unknown dataset '", name, "' (expected synthetic, omniglot, miniimagenet or triplemnist)");
}

}  // namespace metanas::data
