// MiniImageNet: csv (Ravi & Larochelle) and per-class folder layouts ->
// class sources -> packed cache.
#include "metanas/datasets/mini_imagenet.h"

#include <fstream>
#include <map>

#include "fs_util.h"
#include "metanas/datasets/splits.h"
#include "metanas/engine/error.h"

namespace metanas::data {

using detail::join;

namespace {

std::string unquote(std::string s) {
  s = detail::trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::vector<ClassSource> from_csv(const std::string& root, const std::string& csv) {
  std::ifstream in(csv);
  MN_CHECK(in.good(), "MiniImageNet: cannot open '", csv, "'");
  const std::string images = join(root, "images");
  detail::require_dir(images, "MiniImageNet (csv layout)");
  std::string line;
  MN_CHECK(static_cast<bool>(std::getline(in, line)), "MiniImageNet: '", csv, "' is empty");
  if (line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 BOM
  {
    const std::string h = detail::trim(line);
    const size_t comma = h.find(',');
    MN_CHECK(comma != std::string::npos && unquote(h.substr(0, comma)) == "filename" &&
                 unquote(h.substr(comma + 1)) == "label",
             "MiniImageNet: '", csv, "' line 1: expected the header 'filename,label', found '", h, "'");
  }
  std::map<std::string, ClassSource> classes;  // sorted by wnid
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string row = detail::trim(line);
    if (row.empty()) continue;
    const size_t comma = row.find(',');
    MN_CHECK(comma != std::string::npos && row.find(',', comma + 1) == std::string::npos,
             "MiniImageNet: '", csv, "' line ", lineno, ": expected 'filename,label', found '", row, "'");
    const std::string file = unquote(row.substr(0, comma)), label = unquote(row.substr(comma + 1));
    MN_CHECK(!file.empty() && !label.empty(), "MiniImageNet: '", csv, "' line ", lineno,
             ": empty filename or label in '", row, "'");
    const std::string path = join(images, file);
    MN_CHECK(detail::is_file(path), "MiniImageNet: '", csv, "' line ", lineno, " names image '",
             path, "', which does not exist");
    ClassSource& c = classes[label];
    c.name = label;
    c.files.push_back(path);
  }
  MN_CHECK(!classes.empty(), "MiniImageNet: '", csv, "' lists no images");
  std::vector<ClassSource> out;
  for (auto& kv : classes) out.push_back(std::move(kv.second));
  return out;
}

std::vector<ClassSource> from_folders(const std::string& dir) {
  detail::require_dir(dir, "MiniImageNet (folder layout)");
  const auto wnids = detail::list_dirs(dir);
  MN_CHECK(!wnids.empty(), "MiniImageNet: folder '", dir, "' holds no class folders");
  std::vector<ClassSource> out;
  for (const auto& w : wnids) {
    ClassSource c;
    c.name = w;
    const std::string cdir = join(dir, w);
    for (const auto& f : detail::list_files(cdir)) c.files.push_back(join(cdir, f));
    MN_CHECK(!c.files.empty(), "MiniImageNet: class folder '", cdir, "' has no images");
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

Dataset load_mini_imagenet(const MiniImageNetOptions& o) {
  MN_CHECK(!o.root.empty(), "MiniImageNet: no root folder given");
  detail::require_dir(o.root, "MiniImageNet root");
  MN_CHECK(o.image_size >= 0, "MiniImageNet: image_size must be >= 0, got ", o.image_size);
  const std::string split = canonical_split(o.split);
  const std::string root = detail::absolute(o.root);
  const std::string csv = join(root, split + ".csv"), dir = join(root, split);
  std::string layout = o.layout;
  if (layout == "auto") {
    if (detail::is_file(csv)) layout = "csv";
    else if (detail::is_dir(dir)) layout = "folders";
    else MN_THROW("MiniImageNet: found neither '", csv, "' (csv layout) nor folder '", dir,
                  "' (folder layout) for split '", split, "'");
  }
  std::vector<ClassSource> sources;
  if (layout == "csv") sources = from_csv(root, csv);
  else if (layout == "folders") sources = from_folders(dir);
  else MN_THROW("MiniImageNet: unknown layout '", o.layout, "' (expected auto, csv or folders)");

  DecodeSpec spec;
  spec.channels = 3;
  spec.height = spec.width = o.image_size;
  spec.invert = o.invert;
  spec.filter = o.filter;
  return load_classes_cached(sources, spec, o.cache, "miniimagenet-" + split + "-" + layout, root);
}

}  // namespace metanas::data
