// TripleMNIST: split schemes -> class folders -> packed cache.
#include "metanas/datasets/triple_mnist.h"

#include <algorithm>
#include <cstdio>

#include "fs_util.h"
#include "metanas/datasets/numpy_random.h"
#include "metanas/datasets/splits.h"
#include "metanas/engine/error.h"

namespace metanas::data {

using detail::join;

std::vector<std::string> triple_mnist_classes() {
  std::vector<std::string> names;
  char buf[8];
  for (int c = 0; c < 1000; ++c) {
    std::snprintf(buf, sizeof buf, "%03d", c);
    names.push_back(buf);
  }
  return names;
}

std::vector<std::string> triple_mnist_split(const std::string& split_in, uint32_t seed) {
  const std::string split = canonical_split(split_in);
  std::vector<std::string> names = triple_mnist_classes();
  NumpyRandomState rs(seed);
  rs.shuffle(names);
  const size_t first = split == "train" ? 0 : split == "val" ? 640 : 800;
  const size_t count = split == "train" ? 640 : split == "val" ? 160 : 200;
  return {names.begin() + long(first), names.begin() + long(first + count)};
}

namespace {

ClassSource class_source(const std::string& dir, const std::string& name) {
  ClassSource c;
  c.name = name;
  for (const auto& f : detail::list_files(dir)) c.files.push_back(join(dir, f));
  MN_CHECK(!c.files.empty(), "TripleMNIST: class folder '", dir, "' has no images");
  return c;
}

}  // namespace

Dataset load_triple_mnist(const TripleMnistOptions& o) {
  MN_CHECK(!o.root.empty(), "TripleMNIST: no root folder given");
  detail::require_dir(o.root, "TripleMNIST root");
  MN_CHECK(o.image_size >= 0, "TripleMNIST: image_size must be >= 0, got ", o.image_size);
  const std::string split = canonical_split(o.split);
  const std::string root = detail::absolute(o.root);
  const std::string dir = join(root, split);

  std::vector<ClassSource> sources;
  std::string scheme_tag = o.scheme;
  if (o.scheme == "folders" || o.scheme == "torchmeta") {
    MN_CHECK(detail::is_dir(dir), "TripleMNIST: split folder '", dir, "' not found (expected ", root,
             "/{train,val,test}/<class>/*.png, the released layout)");
    if (o.scheme == "folders") {
      const auto classes = detail::list_dirs(dir);
      MN_CHECK(!classes.empty(), "TripleMNIST: split folder '", dir, "' holds no class folders");
      for (const auto& c : classes) sources.push_back(class_source(join(dir, c), c));
    } else {
      std::vector<std::string> names = triple_mnist_split(split);
      std::sort(names.begin(), names.end());  // torchmeta's json order
      for (const auto& c : names) {
        const std::string cdir = join(dir, c);
        MN_CHECK(detail::is_dir(cdir), "TripleMNIST: class '", c, "' of torchmeta's ", split,
                 " split has no folder '", cdir, "' (is this the released split?)");
        sources.push_back(class_source(cdir, c));
      }
    }
  } else {
    const std::vector<std::string> names = read_split_file(o.scheme, split);
    MN_CHECK(!names.empty(), "TripleMNIST: split file '", o.scheme, "' lists no classes for split '", split, "'");
    scheme_tag = "file-" + detail::absolute(o.scheme);
    for (const auto& c : names) {
      std::string found;
      for (const std::string& s : {split, std::string("train"), std::string("val"), std::string("test")})
        if (found.empty() && detail::is_dir(join(join(root, s), c))) found = join(join(root, s), c);
      MN_CHECK(!found.empty(), "TripleMNIST: class '", c, "' of split file '", o.scheme,
               "' has no folder under ", root, "/{train,val,test}/");
      sources.push_back(class_source(found, c));
    }
  }

  DecodeSpec spec;
  spec.channels = 1;
  spec.height = spec.width = o.image_size;
  spec.invert = o.invert;
  spec.filter = o.filter;
  return load_classes_cached(sources, spec, o.cache, "triplemnist-" + split + "-" + scheme_tag, root);
}

}  // namespace metanas::data
