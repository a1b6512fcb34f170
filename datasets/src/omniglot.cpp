// Omniglot: resolves a split scheme to character folders, loads them through
// the packed cache, then applies rotation classes.
#include "metanas/datasets/omniglot.h"

#include <algorithm>
#include <map>
#include <set>

#include "fs_util.h"
#include "metanas/datasets/splits.h"
#include "metanas/engine/error.h"

namespace metanas::data {

using detail::join;

namespace {

ClassSource character_source(const std::string& dir, const std::string& name) {
  ClassSource c;
  c.name = name;
  for (const auto& f : detail::list_files(dir)) c.files.push_back(join(dir, f));
  MN_CHECK(!c.files.empty(), "Omniglot: character folder '", dir, "' has no images");
  return c;
}

// "Alphabet/characterNN[/rotDDD]" -> character name and quarter turns (-1: none given).
std::pair<std::string, int> parse_entry(const std::string& e, const std::string& file) {
  const size_t slash = e.rfind('/');
  if (slash != std::string::npos && e.compare(slash + 1, 3, "rot") == 0 &&
      std::count(e.begin(), e.end(), '/') == 2) {
    const std::string deg = e.substr(slash + 4);
    MN_CHECK(deg == "000" || deg == "090" || deg == "180" || deg == "270", "split file '", file,
             "': entry '", e, "' has rotation '", deg, "' (expected rot000, rot090, rot180, rot270)");
    return {e.substr(0, slash), std::stoi(deg) / 90};
  }
  MN_CHECK(std::count(e.begin(), e.end(), '/') == 1, "split file '", file, "': entry '", e,
           "' is not of the form Alphabet/character");
  return {e, -1};
}

bool is_val_alphabet(const std::string& alphabet) {
  const auto& v = omniglot_vinyals_val_alphabets();
  return std::find(v.begin(), v.end(), alphabet) != v.end();
}

}  // namespace

std::vector<ClassSource> list_omniglot_folder(const std::string& dir) {
  detail::require_dir(dir, "Omniglot");
  std::vector<ClassSource> out;
  const auto alphabets = detail::list_dirs(dir);
  MN_CHECK(!alphabets.empty(), "Omniglot: folder '", dir, "' holds no alphabet folders");
  for (const auto& a : alphabets) {
    const std::string adir = join(dir, a);
    const auto chars = detail::list_dirs(adir);
    MN_CHECK(!chars.empty(), "Omniglot: alphabet folder '", adir, "' holds no character folders");
    for (const auto& c : chars) out.push_back(character_source(join(adir, c), a + "/" + c));
  }
  return out;
}

Dataset load_omniglot(const OmniglotOptions& o) {
  MN_CHECK(!o.root.empty(), "Omniglot: no root folder given");
  detail::require_dir(o.root, "Omniglot root");
  const std::string split = canonical_split(o.split);
  const std::string root = detail::absolute(o.root);
  const std::string bg = join(root, o.background_dir), ev = join(root, o.evaluation_dir);
  MN_CHECK(o.image_size >= 0, "Omniglot: image_size must be >= 0, got ", o.image_size);

  std::vector<ClassSource> sources;
  std::vector<std::vector<int>> per_class_turns;  // from a split file's /rotDDD entries
  std::string scheme_tag = o.scheme;
  auto need_set = [&](const std::string& dir, const std::string& zip) {
    MN_CHECK(detail::is_dir(dir), "Omniglot: folder '", dir, "' not found (unzip ", zip,
             " into ", root, ", or set the background/evaluation folder names)");
  };
  if (o.scheme == "background" || o.scheme == "background-holdout") {
    const bool holdout = o.scheme == "background-holdout";
    if (split == "test") {
      need_set(ev, "images_evaluation.zip");
      sources = list_omniglot_folder(ev);
    } else {
      need_set(bg, "images_background.zip");
      for (auto& c : list_omniglot_folder(bg)) {
        const bool val_alpha = is_val_alphabet(c.name.substr(0, c.name.find('/')));
        if (split == "val" ? val_alpha : (!holdout || !val_alpha)) sources.push_back(std::move(c));
      }
      MN_CHECK(!sources.empty(), "Omniglot: '", bg, "' holds none of the validation alphabets (",
               "Armenian, Bengali, Early_Aramaic, Hebrew, Mkhedruli_(Georgian)) for split '", split, "'");
    }
  } else {
    std::vector<std::string> names;
    std::string file;
    if (o.scheme == "vinyals") {
      names = omniglot_vinyals_split(split);
    } else {
      file = o.scheme;
      names = read_split_file(file, split);
      scheme_tag = "file-" + detail::absolute(file);
    }
    std::map<std::string, size_t> index;  // character -> position in sources
    for (const auto& e : names) {
      auto [name, turn] = o.scheme == "vinyals" ? std::make_pair(e, -1) : parse_entry(e, file);
      auto it = index.find(name);
      if (it == index.end()) {
        std::string dir = join(bg, name);
        if (!detail::is_dir(dir)) {
          const std::string other = join(ev, name);
          MN_CHECK(detail::is_dir(other), "Omniglot: character '", name, "' of split '", split,
                   "' not found (looked for '", dir, "' and '", other, "')");
          dir = other;
        }
        it = index.emplace(name, sources.size()).first;
        sources.push_back(character_source(dir, name));
        per_class_turns.emplace_back();
      }
      if (turn >= 0) per_class_turns[it->second].push_back(turn);
    }
  }

  DecodeSpec spec;
  spec.channels = 1;
  spec.height = spec.width = o.image_size;
  spec.invert = o.invert;
  spec.filter = o.filter;
  Dataset base =
      load_classes_cached(sources, spec, o.cache, "omniglot-" + split + "-" + scheme_tag, root);

  const bool file_rotations = std::any_of(per_class_turns.begin(), per_class_turns.end(),
                                          [](const auto& v) { return !v.empty(); });
  if (file_rotations) {
    std::vector<ClassEntry> entries;
    for (int c = 0; c < base.num_classes(); ++c) {
      std::vector<int> turns = per_class_turns[c];
      if (turns.empty()) turns.push_back(0);
      for (int t : turns) {
        ClassEntry e = base.entry(c);
        e.rotation = t;
        if (t) e.name += t == 1 ? "/rot090" : t == 2 ? "/rot180" : "/rot270";
        entries.push_back(std::move(e));
      }
    }
    Dataset d(base.channels(), base.height(), base.width(), base.buffer(), std::move(entries));
    d.set_provenance(base.provenance());
    return d;
  }
  const bool only_zero = std::all_of(o.rotations.begin(), o.rotations.end(),
                                     [](int d) { return d % 360 == 0; });
  if (o.rotations.size() == 1 && only_zero) return base;
  return base.with_rotations(o.rotations);
}

}  // namespace metanas::data
