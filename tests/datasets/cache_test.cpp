// Packed cache: round trip (bit-identical to decoding), memory-mapped second
// load, invalidation when a source file or a setting changes, recovery from a
// corrupt cache file, write_pack/read_pack on a rotated view, bad files.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>

#include "fixtures.h"
#include "metanas/datasets/cache.h"
#include "metanas/datasets/omniglot.h"
#include "metanas/datasets/synthetic.h"
#include "metanas/engine/error.h"

using namespace metanas;
using namespace metanas::data;
using fixtures::TempDir;

namespace {
std::vector<uint8_t> all_pixels(const Dataset& d) {
  std::vector<uint8_t> out, img(size_t(d.image_numel()));
  for (int c = 0; c < d.num_classes(); ++c)
    for (int i = 0; i < d.class_size(c); ++i) {
      d.read_image(c, i, img.data());
      out.insert(out.end(), img.begin(), img.end());
    }
  return out;
}
std::vector<std::string> cache_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fixtures::fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("cache: round trip, hit, invalidation on source and setting changes", "[cache]") {
  TempDir root, cache;
  fixtures::write_small_omniglot(root.str(), 40);
  OmniglotOptions o;
  o.root = root.str();
  o.cache.dir = cache.str();

  OmniglotOptions nocache = o;
  nocache.cache.enabled = false;
  const Dataset reference = load_omniglot(nocache);
  CHECK_THAT(reference.provenance(), Catch::Contains("cache disabled"));

  const Dataset first = load_omniglot(o);
  CHECK_THAT(first.provenance(), Catch::Contains("wrote cache"));
  REQUIRE(cache_files(cache.str()).size() == 1);
  const Dataset second = load_omniglot(o);
  CHECK_THAT(second.provenance(), Catch::Contains("memory-mapped cache"));
  REQUIRE(second.num_classes() == reference.num_classes());
  for (int c = 0; c < reference.num_classes(); ++c) {
    CHECK(second.class_name(c) == reference.class_name(c));
    CHECK(second.class_size(c) == reference.class_size(c));
  }
  CHECK(all_pixels(second) == all_pixels(reference));
  CHECK(all_pixels(first) == all_pixels(reference));

  // Rotations are views over the cached characters: still a cache hit.
  o.rotations = {0, 90};
  const Dataset rot = load_omniglot(o);
  CHECK_THAT(rot.provenance(), Catch::Contains("memory-mapped cache"));
  CHECK(rot.num_classes() == 2 * reference.num_classes());
  o.rotations = {0};

  // A source image changes (new content, later mtime): rebuilt, new pixels.
  const std::string victim = root / "images_background/Latin/character02/0006_03.png";
  fixtures::write_png(victim, fixtures::pattern(200, 3, 40, 40), 40, 40);
  fixtures::fs::last_write_time(victim, fixtures::fs::last_write_time(victim) + std::chrono::seconds(5));
  const Dataset third = load_omniglot(o);
  CHECK_THAT(third.provenance(), Catch::Contains("decoded") && Catch::Contains("wrote cache"));
  const Dataset fresh = load_omniglot(nocache);
  CHECK(all_pixels(third) == all_pixels(fresh));
  CHECK(all_pixels(third) != all_pixels(reference));
  CHECK_THAT(load_omniglot(o).provenance(), Catch::Contains("memory-mapped"));
  CHECK(cache_files(cache.str()).size() == 1);  // same settings: the file was replaced

  // A file added to a class: rebuilt.
  fixtures::write_png(root / "images_background/Latin/character02/0006_05.png",
                      fixtures::pattern(6, 5, 40, 40), 40, 40);
  const Dataset added = load_omniglot(o);
  CHECK_THAT(added.provenance(), Catch::Contains("wrote cache"));
  CHECK(added.class_size(5) == 5);

  // Different resize settings: a separate cache file.
  o.image_size = 20;
  const Dataset small = load_omniglot(o);
  CHECK_THAT(small.provenance(), Catch::Contains("wrote cache"));
  CHECK(small.height() == 20);
  CHECK(cache_files(cache.str()).size() == 2);
  o.invert = true;
  CHECK_THAT(load_omniglot(o).provenance(), Catch::Contains("wrote cache"));
  CHECK(cache_files(cache.str()).size() == 3);
}

TEST_CASE("cache: a corrupt or truncated cache file is rebuilt, not trusted", "[cache]") {
  TempDir root, cache;
  fixtures::write_small_omniglot(root.str());
  OmniglotOptions o;
  o.root = root.str();
  o.cache.dir = cache.str();
  const Dataset good = load_omniglot(o);
  const std::string file = cache / cache_files(cache.str()).at(0);
  const auto size = fixtures::fs::file_size(file);
  fixtures::fs::resize_file(file, size - 100);
  const Dataset rebuilt = load_omniglot(o);
  CHECK_THAT(rebuilt.provenance(), Catch::Contains("rebuilt") && Catch::Contains("truncated"));
  CHECK(all_pixels(rebuilt) == all_pixels(good));
  CHECK(fixtures::fs::file_size(file) == size);
  fixtures::write_text(file, "MNPACK01 but then nonsense");
  CHECK_THAT(load_omniglot(o).provenance(), Catch::Contains("rebuilt"));
  CHECK_THAT(load_omniglot(o).provenance(), Catch::Contains("memory-mapped"));
}

TEST_CASE("cache: write_pack / read_pack round trip and errors", "[cache]") {
  TempDir tmp;
  SyntheticOptions so;
  so.num_alphabets = 3;
  so.classes_per_alphabet = 4;
  so.drawers = 5;
  const Dataset base = make_synthetic(so);
  const Dataset view = base.select_classes({3, 7, 1}).with_rotations({0, 270});
  write_pack(tmp / "v.mnpack", view, "k123", {}, "test", "");
  CHECK(read_pack_key(tmp / "v.mnpack") == "k123");
  const Dataset back = read_pack(tmp / "v.mnpack", "k123");
  REQUIRE(back.num_classes() == 6);
  CHECK(back.class_name(1) == view.class_name(1));
  CHECK(back.entry(1).rotation == 0);  // stored already rotated
  CHECK(all_pixels(back) == all_pixels(view));
  REQUIRE_THROWS_WITH(read_pack(tmp / "v.mnpack", "other"), Catch::Contains("stale"));
  REQUIRE_THROWS_WITH(read_pack(tmp / "absent.mnpack"), Catch::Contains("absent.mnpack"));
  fixtures::write_text(tmp / "junk.mnpack", "definitely not a pack file");
  REQUIRE_THROWS_WITH(read_pack(tmp / "junk.mnpack"), Catch::Contains("junk.mnpack") && Catch::Contains("magic"));
  CHECK(read_pack_key(tmp / "junk.mnpack").empty());
  // The mapping outlives the Dataset handles that share it.
  Dataset keep;
  {
    const Dataset tmpd = read_pack(tmp / "v.mnpack");
    keep = tmpd.select_classes({5});
  }
  CHECK(all_pixels(keep) == all_pixels(view.select_classes({5})));
  // An unwritable cache folder is not fatal for loaders.
  TempDir root;
  fixtures::write_small_omniglot(root.str());
  fixtures::write_text(tmp / "afile", "x");
  OmniglotOptions o;
  o.root = root.str();
  o.cache.dir = tmp / "afile/sub";  // a path below a regular file
  const Dataset d = load_omniglot(o);
  CHECK(d.num_classes() == 7);
  CHECK_THAT(d.provenance(), Catch::Contains("cache not written"));
}
