// load_dataset: dispatch by name for synthetic, omniglot and miniimagenet,
// default image sizes, rotations, and errors for unknown names and splits.
#include <catch2/catch.hpp>
#include <set>

#include "fixtures.h"
#include "metanas/datasets/loader.h"
#include "metanas/engine/error.h"

using namespace metanas;
using namespace metanas::data;

TEST_CASE("load_dataset: synthetic splits are disjoint", "[loader]") {
  LoadOptions o;
  o.synthetic.num_alphabets = 10;
  o.synthetic.classes_per_alphabet = 3;
  o.synthetic.drawers = 4;
  std::set<std::string> seen;
  int total = 0;
  for (const std::string split : {"train", "val", "test"}) {
    const Dataset d = load_dataset("synthetic", split, o);
    CHECK(d.height() == 28);
    total += d.num_classes();
    for (int c = 0; c < d.num_classes(); ++c) seen.insert(d.class_name(c));
  }
  CHECK(total == 30);
  CHECK(seen.size() == 30);
  o.image_size = 32;
  o.rotations = {0, 180};
  const Dataset r = load_dataset("synthetic", "test", o);
  CHECK(r.height() == 32);
  CHECK(r.num_classes() == 18);
}

TEST_CASE("load_dataset: omniglot and miniimagenet by name", "[loader]") {
  fixtures::TempDir root, mini;
  fixtures::write_small_omniglot(root.str(), 50);
  LoadOptions o;
  o.root = root.str();
  o.cache.enabled = false;
  const Dataset d = load_dataset("omniglot", "train", o);
  CHECK(d.num_classes() == 7);
  CHECK(d.height() == 28);  // the Omniglot default
  o.scheme = "background-holdout";
  o.rotations = {0, 90, 180, 270};
  CHECK(load_dataset("omniglot", "train", o).num_classes() == 20);

  fixtures::write_jpg(mini / "val/n01/a.jpg", fixtures::solid(50, 40, 1, 2, 3), 50, 40);
  LoadOptions m;
  m.root = mini.str();
  m.cache.enabled = false;
  const Dataset v = load_dataset("mini-imagenet", "validation", m);
  CHECK(v.height() == 84);  // the MiniImageNet default
  CHECK(v.channels() == 3);
  m.image_size = 0;
  CHECK(load_dataset("miniimagenet", "val", m).width() == 50);
}

TEST_CASE("load_dataset: unknown names, splits and missing roots", "[loader][errors]") {
  LoadOptions o;
  REQUIRE_THROWS_WITH(load_dataset("cifar", "train", o), Catch::Contains("cifar"));
  REQUIRE_THROWS_WITH(load_dataset("synthetic", "dev", o), Catch::Contains("dev"));
  REQUIRE_THROWS_WITH(load_dataset("omniglot", "train", o), Catch::Contains("no root"));
  o.root = "/definitely/not/here";
  REQUIRE_THROWS_WITH(load_dataset("omniglot", "train", o), Catch::Contains("/definitely/not/here"));
  REQUIRE_THROWS_WITH(load_dataset("miniimagenet", "test", o), Catch::Contains("/definitely/not/here"));
  CHECK(dataset_names() == std::vector<std::string>{"synthetic", "omniglot", "miniimagenet", "triplemnist"});
}
