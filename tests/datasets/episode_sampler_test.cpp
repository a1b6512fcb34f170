// EpisodeSampler: exact class balance, labels <-> pixels, distinct images,
// reproducibility from the seed and from a saved Rng state, rough
// uniformity; support mini-batches with and without replacement; errors.
#include <catch2/catch.hpp>
#include <set>

#include "metanas/datasets/episode.h"
#include "metanas/datasets/synthetic.h"
#include "metanas/engine/error.h"

using namespace metanas;
using namespace metanas::data;

namespace {
Dataset small_synthetic(int alphabets = 4, int classes = 5, int drawers = 20) {
  SyntheticOptions o;
  o.num_alphabets = alphabets;
  o.classes_per_alphabet = classes;
  o.drawers = drawers;
  o.seed = 11;
  return make_synthetic(o);
}
bool same(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  return a.dtype() == DType::F32 ? a.to_vector() == b.to_vector() : a.to_int_vector() == b.to_int_vector();
}
bool same(const Episode& a, const Episode& b) {
  return a.classes == b.classes && same(a.support_x, b.support_x) && same(a.support_y, b.support_y) &&
         same(a.query_x, b.query_x) && same(a.query_y, b.query_y);
}
}  // namespace

TEST_CASE("sampler: shapes, exact balance, labels match pixels, distinct images", "[sampler]") {
  const Dataset ds = small_synthetic();
  EpisodeSampler s(ds, 5, 3, 4, 42);
  for (int rep = 0; rep < 20; ++rep) {
    const Episode ep = s.sample();
    REQUIRE(ep.support_x.shape() == Shape{15, 1, 28, 28});
    REQUIRE(ep.query_x.shape() == Shape{20, 1, 28, 28});
    REQUIRE(ep.support_y.dtype() == DType::I32);
    REQUIRE(ep.support_y.shape() == Shape{15});
    REQUIRE(ep.query_y.shape() == Shape{20});
    REQUIRE(std::set<int>(ep.classes.begin(), ep.classes.end()).size() == 5);
    const auto sy = ep.support_y.to_int_vector(), qy = ep.query_y.to_int_vector();
    std::vector<int> counts(5, 0), qcounts(5, 0);
    for (int v : sy) counts[size_t(v)]++;
    for (int v : qy) qcounts[size_t(v)]++;
    REQUIRE(counts == std::vector<int>(5, 3));
    REQUIRE(qcounts == std::vector<int>(5, 4));
    // Each row's pixels are the dataset image its ref names, of the labelled class.
    const auto sx = ep.support_x.to_vector(), qx = ep.query_x.to_vector();
    std::vector<float> img(784);
    std::set<std::pair<int, int>> used;
    for (int i = 0; i < 15; ++i) {
      const ImageRef r = ep.support_refs[size_t(i)];
      REQUIRE(r.cls == ep.classes[size_t(sy[size_t(i)])]);
      ds.read_image(r.cls, r.index, img.data());
      REQUIRE(std::equal(img.begin(), img.end(), sx.begin() + i * 784));
      REQUIRE(used.insert({r.cls, r.index}).second);
    }
    for (int i = 0; i < 20; ++i) {
      const ImageRef r = ep.query_refs[size_t(i)];
      REQUIRE(r.cls == ep.classes[size_t(qy[size_t(i)])]);
      ds.read_image(r.cls, r.index, img.data());
      REQUIRE(std::equal(img.begin(), img.end(), qx.begin() + i * 784));
      REQUIRE(used.insert({r.cls, r.index}).second);  // queries never repeat a support image
    }
    for (float v : sx) REQUIRE((v >= 0.f && v <= 1.f));
  }
}

TEST_CASE("sampler: reproducible from the seed and from a saved state", "[sampler]") {
  const Dataset ds = small_synthetic();
  EpisodeSampler a(ds, 5, 1, 5, 7), b(ds, 5, 1, 5, 7), c(ds, 5, 1, 5, 8);
  bool any_diff = false;
  for (int i = 0; i < 5; ++i) {
    const Episode ea = a.sample(), eb = b.sample(), ec = c.sample();
    REQUIRE(same(ea, eb));
    any_diff = any_diff || !same(ea, ec);
  }
  CHECK(any_diff);
  const std::string saved = a.state();
  std::vector<Episode> next;
  for (int i = 0; i < 3; ++i) next.push_back(a.sample());
  EpisodeSampler resumed(ds, 5, 1, 5, 999);
  resumed.set_state(saved);
  for (int i = 0; i < 3; ++i) REQUIRE(same(resumed.sample(), next[size_t(i)]));
  REQUIRE_THROWS_AS(resumed.set_state("not a state"), metanas::Error);
}

TEST_CASE("sampler: classes and images are drawn about uniformly", "[sampler]") {
  const Dataset ds = small_synthetic(2, 5, 6);  // 10 classes of 6 images
  EpisodeSampler s(ds, 3, 1, 1, 3);
  std::vector<int> cls(10, 0), img(6, 0);
  std::vector<int> first_label_cls(10, 0);
  const int n = 3000;
  std::vector<int> classes;
  std::vector<ImageRef> sup, qry;
  for (int i = 0; i < n; ++i) {
    s.sample_refs(&classes, &sup, &qry);
    for (int c : classes) cls[size_t(c)]++;
    first_label_cls[size_t(classes[0])]++;
    img[size_t(sup[0].index)]++;
  }
  // Expected 900 per class (sd ~26), 300 per first label (sd ~16), 500 per image (sd ~20).
  for (int v : cls) CHECK(std::abs(v - 900) < 130);
  for (int v : first_label_cls) CHECK(std::abs(v - 300) < 80);
  for (int v : img) CHECK(std::abs(v - 500) < 100);
}

TEST_CASE("sampler: support mini-batches", "[sampler]") {
  const Dataset ds = small_synthetic();
  EpisodeSampler s(ds, 4, 5, 2, 1);
  const Episode ep = s.sample();
  Rng rng(5);
  const auto sx = ep.support_x.to_vector();
  std::set<int> seen;
  bool repeat_in_batch = false;
  for (int rep = 0; rep < 50; ++rep) {
    const Batch b = support_batch(ep, 8, rng);
    REQUIRE(b.x.shape() == Shape{8, 1, 28, 28});
    REQUIRE(b.y.shape() == Shape{8});
    const auto x = b.x.to_vector();
    const auto y = b.y.to_int_vector();
    for (int i = 0; i < 8; ++i) {
      const int r = b.rows[size_t(i)];
      REQUIRE((r >= 0 && r < 20));
      REQUIRE(y[size_t(i)] == r / 5);
      REQUIRE(std::equal(x.begin() + i * 784, x.begin() + (i + 1) * 784, sx.begin() + r * 784));
      seen.insert(r);
    }
    repeat_in_batch = repeat_in_batch || std::set<int>(b.rows.begin(), b.rows.end()).size() < 8;
  }
  CHECK(seen.size() == 20);
  CHECK(repeat_in_batch);  // with replacement, rows repeat sometimes
  for (int rep = 0; rep < 20; ++rep) {
    const Batch b = support_batch(ep, 20, rng, false);
    REQUIRE(std::set<int>(b.rows.begin(), b.rows.end()).size() == 20);
  }
  // Same Rng state -> same batch.
  Rng r1(9), r2(9);
  CHECK(support_batch(ep, 6, r1).rows == support_batch(ep, 6, r2).rows);
  REQUIRE_THROWS_WITH(support_batch(ep, 21, rng, false), Catch::Contains("21") && Catch::Contains("20"));
  REQUIRE_THROWS_AS(support_batch(ep, 0, rng), metanas::Error);
}

TEST_CASE("sampler: more ways or shots than the split holds", "[sampler][errors]") {
  const Dataset ds = small_synthetic(1, 4, 6);  // 4 classes of 6 images
  REQUIRE_THROWS_WITH(EpisodeSampler(ds, 5, 1, 1, 0), Catch::Contains("5-way") && Catch::Contains("only 4"));
  REQUIRE_THROWS_WITH(EpisodeSampler(ds, 2, 5, 2, 0),
                      Catch::Contains("need 7 images per class") && Catch::Contains("only 6") &&
                          Catch::Contains("Alphabet_01/character01"));
  REQUIRE_THROWS_AS(EpisodeSampler(ds, 2, 0, 1, 0), metanas::Error);
  REQUIRE_THROWS_AS(EpisodeSampler(Dataset(), 2, 1, 1, 0), metanas::Error);
  CHECK_NOTHROW(EpisodeSampler(ds, 4, 5, 1, 0).sample());
  // make_episode insists on class-major rows.
  REQUIRE_THROWS_WITH(make_episode(ds, {0, 1}, {{1, 0}, {0, 0}}, {}, 1, 0), Catch::Contains("class-major"));
}
