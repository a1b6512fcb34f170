// The Vinyals Omniglot split (sizes, disjointness, coverage, boundaries), the
// shipped split files, split names and split-file parsing.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "fixtures.h"
#include "metanas/datasets/splits.h"
#include "metanas/engine/error.h"

using namespace metanas;
using namespace metanas::data;

TEST_CASE("splits: Omniglot alphabet table", "[splits]") {
  int bg = 0, ev = 0, nbg = 0, nev = 0;
  for (const auto& a : omniglot_alphabets()) {
    if (a.background) {
      bg += a.characters;
      ++nbg;
    } else {
      ev += a.characters;
      ++nev;
    }
  }
  CHECK(nbg == 30);
  CHECK(nev == 20);
  CHECK(bg == 964);
  CHECK(ev == 659);
}

TEST_CASE("splits: Vinyals split is 1028 / 172 / 423, disjoint, covering all 1623", "[splits]") {
  const auto train = omniglot_vinyals_split("train"), val = omniglot_vinyals_split("val"),
             test = omniglot_vinyals_split("test");
  CHECK(train.size() == 1028);
  CHECK(val.size() == 172);
  CHECK(test.size() == 423);
  std::set<std::string> all(train.begin(), train.end());
  all.insert(val.begin(), val.end());
  all.insert(test.begin(), test.end());
  CHECK(all.size() == 1623);
  // Boundaries of the rule: Gurmukhi is cut between characters 41 and 42.
  CHECK(std::count(train.begin(), train.end(), "Gurmukhi/character41") == 1);
  CHECK(test.front() == "Gurmukhi/character42");
  CHECK(test.back() == "ULOG/character26");
  std::set<std::string> val_alphabets;
  for (const auto& n : val) val_alphabets.insert(n.substr(0, n.find('/')));
  CHECK(val_alphabets == std::set<std::string>{"Armenian", "Bengali", "Early_Aramaic", "Hebrew",
                                               "Mkhedruli_(Georgian)"});
  // Test alphabets are evaluation alphabets only.
  std::set<std::string> bg;
  for (const auto& a : omniglot_alphabets())
    if (a.background) bg.insert(a.name);
  for (const auto& n : test) REQUIRE(bg.count(n.substr(0, n.find('/'))) == 0);
}

TEST_CASE("splits: shipped split files equal the built-in rule", "[splits]") {
  for (const std::string split : {"train", "val", "test"}) {
    const std::string path = std::string(METANAS_SOURCE_DIR) + "/datasets/splits/omniglot-vinyals/" + split + ".txt";
    INFO(path);
    CHECK(read_split_file(path, split) == omniglot_vinyals_split(split));
  }
}

TEST_CASE("splits: names and split files", "[splits][errors]") {
  CHECK(canonical_split("validation") == "val");
  CHECK(canonical_split("training") == "train");
  REQUIRE_THROWS_WITH(canonical_split("dev"), Catch::Contains("dev"));
  fixtures::TempDir tmp;
  fixtures::write_text(tmp / "a.json", R"({"train": ["a/b"], "validation": ["c/d"]})");
  CHECK(read_split_file(tmp / "a.json", "val") == std::vector<std::string>{"c/d"});
  REQUIRE_THROWS_WITH(read_split_file(tmp / "a.json", "test"), Catch::Contains("a.json") && Catch::Contains("test"));
  fixtures::write_text(tmp / "b.json", R"({"train": [1, 2]})");
  REQUIRE_THROWS_WITH(read_split_file(tmp / "b.json", "train"), Catch::Contains("strings"));
  REQUIRE_THROWS_WITH(read_split_file(tmp / "none.json", "train"), Catch::Contains("none.json"));
  fixtures::write_text(tmp / "empty.txt", "# nothing\n\n");
  REQUIRE_THROWS_WITH(read_split_file(tmp / "empty.txt", "train"), Catch::Contains("no classes"));
}
