// Lake et al.'s one-shot runs on a fixture: each run becomes a 20-way 1-shot
// episode whose query rows carry the ground truth of class_labels.txt.
#include <catch2/catch.hpp>

#include "fixtures.h"
#include "metanas/datasets/oneshot_runs.h"
#include "metanas/engine/error.h"

using namespace metanas;
using namespace metanas::data;
using fixtures::TempDir;

namespace {
// run r: training/classKK.png (K = 1..20), test/itemMM.png is an exact copy
// of class perm(M); returns the truth (1-based class per item).
std::vector<int> write_run(const TempDir& root, int r) {
  char run[16];
  std::snprintf(run, sizeof run, "run%02d", r);
  std::vector<int> truth;
  std::string labels;
  for (int k = 1; k <= 20; ++k)
    fixtures::write_png(root / (std::string(run) + "/training/class" + (k < 10 ? "0" : "") + std::to_string(k) + ".png"),
                        fixtures::pattern(100 * r + k, 0, 28, 28), 28, 28);
  for (int m = 1; m <= 20; ++m) {
    const int k = (m * 7 + r) % 20 + 1;  // a permutation of 1..20
    truth.push_back(k);
    const std::string item = std::string(run) + "/test/item" + (m < 10 ? "0" : "") + std::to_string(m) + ".png";
    const std::string cls = std::string(run) + "/training/class" + (k < 10 ? "0" : "") + std::to_string(k) + ".png";
    fixtures::write_png(root / item, fixtures::pattern(100 * r + k, 0, 28, 28), 28, 28);
    labels += item + " " + cls + "\n";
  }
  fixtures::write_text(root / (std::string(run) + "/class_labels.txt"), labels);
  return truth;
}
}  // namespace

TEST_CASE("oneshot runs: 20-way 1-shot episodes with ground truth", "[oneshot]") {
  TempDir root;
  write_run(root, 1);
  write_run(root, 2);
  OneShotOptions o;
  o.root = root.str();
  const auto runs = load_oneshot_runs(o);
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].name == "run01");
  for (const auto& r : runs) {
    const Episode& ep = r.episode;
    CHECK(ep.ways == 20);
    CHECK(ep.shots == 1);
    CHECK(ep.queries == 1);
    REQUIRE(ep.support_x.shape() == Shape{20, 1, 28, 28});
    REQUIRE(ep.query_x.shape() == Shape{20, 1, 28, 28});
    const auto sy = ep.support_y.to_int_vector(), qy = ep.query_y.to_int_vector();
    for (int i = 0; i < 20; ++i) CHECK(sy[size_t(i)] == i);
    // Every query image equals the support image of its labelled class.
    const auto sx = ep.support_x.to_vector(), qx = ep.query_x.to_vector();
    for (int q = 0; q < 20; ++q) {
      const int l = qy[size_t(q)];
      REQUIRE(std::equal(qx.begin() + q * 784, qx.begin() + (q + 1) * 784, sx.begin() + l * 784));
      // ... and the file names agree with class_labels.txt
      CHECK_THAT(r.support_files[size_t(l)], Catch::EndsWith(std::string("class") + (l + 1 < 10 ? "0" : "") +
                                                             std::to_string(l + 1) + ".png"));
    }
    // Class-major: query q has label q (one query per class).
    for (int q = 0; q < 20; ++q) CHECK(qy[size_t(q)] == q);
  }
  // The test item of class 5 (label 4) in run 1 is item m with (7m+1)%20+1 == 5: m = 9.
  CHECK_THAT(runs[0].query_files[4], Catch::EndsWith("run01/test/item09.png"));
}

TEST_CASE("oneshot runs: bad input gives clear errors", "[oneshot][errors]") {
  TempDir root;
  OneShotOptions o;
  o.root = root / "nowhere";
  REQUIRE_THROWS_WITH(load_oneshot_runs(o), Catch::Contains("nowhere"));
  o.root = root.str();
  REQUIRE_THROWS_WITH(load_oneshot_runs(o), Catch::Contains("no runNN"));
  write_run(root, 1);
  fixtures::fs::remove(root / "run01/test/item03.png");
  REQUIRE_THROWS_WITH(load_oneshot_runs(o), Catch::Contains("item03.png") && Catch::Contains("line 3"));
  write_run(root, 1);
  fixtures::write_text(root / "run01/class_labels.txt", "run01/test/item01.png run01/training/class33.png\n");
  REQUIRE_THROWS_WITH(load_oneshot_runs(o), Catch::Contains("class33.png"));
  fixtures::write_text(root / "run01/class_labels.txt", "run01/test/item01.png\n");
  REQUIRE_THROWS_WITH(load_oneshot_runs(o), Catch::Contains("class_labels.txt' line 1"));
  fixtures::fs::remove(root / "run01/class_labels.txt");
  REQUIRE_THROWS_WITH(load_oneshot_runs(o), Catch::Contains("class_labels.txt"));
}
