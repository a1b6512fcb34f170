// Synthetic handwriting: counts and names, determinism, subsets equal the
// full set, splits partition the alphabets, images look like ink on paper,
// drawers of a class resemble each other more than other classes, options.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "metanas/datasets/synthetic.h"
#include "metanas/engine/error.h"

using namespace metanas;
using namespace metanas::data;

namespace {
SyntheticOptions opts(int alphabets, int classes, int drawers, uint64_t seed = 0) {
  SyntheticOptions o;
  o.num_alphabets = alphabets;
  o.classes_per_alphabet = classes;
  o.drawers = drawers;
  o.seed = seed;
  return o;
}
std::vector<uint8_t> bytes_of(const Dataset& d) {
  return std::vector<uint8_t>(d.buffer()->data(), d.buffer()->data() + d.buffer()->size());
}
double dist2(const Dataset& d, ImageRef a, ImageRef b) {
  std::vector<float> x(size_t(d.image_numel())), y(x.size());
  d.read_image(a.cls, a.index, x.data());
  d.read_image(b.cls, b.index, y.data());
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += (x[i] - y[i]) * (x[i] - y[i]);
  return s;
}
// Blur-free distance is harsh for thin strokes; compare 4x4-pooled images.
double pooled_dist2(const Dataset& d, ImageRef a, ImageRef b) {
  const int n = d.height(), p = n / 4;
  std::vector<float> x(size_t(d.image_numel())), y(x.size());
  d.read_image(a.cls, a.index, x.data());
  d.read_image(b.cls, b.index, y.data());
  double s = 0;
  for (int by = 0; by < p; ++by)
    for (int bx = 0; bx < p; ++bx) {
      double dx = 0;
      for (int yy = 0; yy < 4; ++yy)
        for (int xx = 0; xx < 4; ++xx) {
          const size_t i = size_t((by * 4 + yy) * n + bx * 4 + xx);
          dx += x[i] - y[i];
        }
      s += dx * dx;
    }
  return s;
}
}  // namespace

TEST_CASE("synthetic: counts, names, shape", "[synthetic]") {
  const Dataset d = make_synthetic(opts(3, 4, 5));
  REQUIRE(d.num_classes() == 12);
  CHECK(d.num_images() == 60);
  CHECK(d.channels() == 1);
  CHECK(d.height() == 28);
  CHECK(d.class_name(0) == "Alphabet_01/character01");
  CHECK(d.class_name(11) == "Alphabet_03/character04");
  std::set<std::string> names;
  for (int c = 0; c < 12; ++c) names.insert(d.class_name(c));
  CHECK(names.size() == 12);
}

TEST_CASE("synthetic: deterministic, seed-dependent, subsets identical", "[synthetic]") {
  const auto o = opts(6, 7, 4, 123);
  const Dataset a = make_synthetic(o), b = make_synthetic(o);
  CHECK(bytes_of(a) == bytes_of(b));
  auto o2 = o;
  o2.seed = 124;
  CHECK(bytes_of(make_synthetic(o2)) != bytes_of(a));
  // Alphabets 2..4 alone give the same images as in the full set.
  const Dataset sub = make_synthetic(o, 2, 3);
  REQUIRE(sub.num_classes() == 21);
  CHECK(sub.class_name(0) == "Alphabet_03/character01");
  std::vector<uint8_t> x(784), y(784);
  for (int c = 0; c < 21; ++c)
    for (int i = 0; i < 4; ++i) {
      sub.read_image(c, i, x.data());
      a.read_image(14 + c, i, y.data());
      REQUIRE(x == y);
    }
  REQUIRE_THROWS_WITH(make_synthetic(o, 5, 2), Catch::Contains("6"));
}

TEST_CASE("synthetic: splits partition the alphabets (train 60%, val 10%, test 30%)", "[synthetic]") {
  const auto o = opts(50, 2, 2);
  CHECK(synthetic_split_alphabets(o, "train") == std::pair<int, int>{0, 30});
  CHECK(synthetic_split_alphabets(o, "val") == std::pair<int, int>{30, 5});
  CHECK(synthetic_split_alphabets(o, "test") == std::pair<int, int>{35, 15});
  const auto small = opts(3, 2, 2);
  CHECK(synthetic_split_alphabets(small, "train").second == 1);
  CHECK(synthetic_split_alphabets(small, "val").second == 1);
  CHECK(synthetic_split_alphabets(small, "test").second == 1);
  REQUIRE_THROWS_AS(synthetic_split_alphabets(opts(2, 2, 2), "train"), metanas::Error);
  const Dataset val = make_synthetic_split(o, "val");
  CHECK(val.num_classes() == 10);
  CHECK(val.class_name(0) == "Alphabet_31/character01");
}

TEST_CASE("synthetic: ink on paper, antialiased, drawers resemble their class", "[synthetic]") {
  const Dataset d = make_synthetic(opts(4, 10, 6, 5));
  std::vector<uint8_t> img(784);
  for (int c = 0; c < d.num_classes(); ++c)
    for (int i = 0; i < d.class_size(c); ++i) {
      d.read_image(c, i, img.data());
      int paper = 0, ink = 0, grey = 0;
      for (uint8_t v : img) (v == 255 ? paper : v < 64 ? ink : grey) += 1;
      REQUIRE(paper > 392);  // mostly white paper
      REQUIRE(ink + grey > 15);  // but something is written
      REQUIRE(grey > 0);    // with antialiased edges
    }
  // Nearest-neighbour check: a drawer's closest other image (pooled L2) is
  // usually of the same class.
  int correct = 0, total = 0;
  for (int c = 0; c < d.num_classes(); ++c) {
    const ImageRef q{c, 0};
    double best = 1e30;
    int best_cls = -1;
    for (int c2 = 0; c2 < d.num_classes(); ++c2)
      for (int i = 0; i < d.class_size(c2); ++i) {
        if (c2 == c && i == 0) continue;
        const double v = pooled_dist2(d, q, {c2, i});
        if (v < best) best = v, best_cls = c2;
      }
    correct += best_cls == c;
    ++total;
  }
  INFO(correct << " / " << total);
  CHECK(correct >= total * 3 / 4);
  // And drawers do differ from each other.
  CHECK(dist2(d, {0, 0}, {0, 1}) > 0);
}

TEST_CASE("synthetic: size and invert options, bad options", "[synthetic][errors]") {
  auto o = opts(3, 2, 3, 9);
  o.size = 64;
  const Dataset big = make_synthetic(o);
  CHECK(big.height() == 64);
  CHECK(big.width() == 64);
  o.size = 28;
  const Dataset plain = make_synthetic(o);
  o.invert = true;
  const Dataset inv = make_synthetic(o);
  const auto a = bytes_of(plain), b = bytes_of(inv);
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(int(b[i]) == 255 - a[i]);
  o.drawers = 0;
  REQUIRE_THROWS_WITH(make_synthetic(o), Catch::Contains("drawer"));
  o.drawers = 3;
  o.size = 2;
  REQUIRE_THROWS_WITH(make_synthetic(o), Catch::Contains("size"));
  // Contact sheet: rows x cols cells with borders.
  const Image sheet = contact_sheet(plain, 4, 3);
  CHECK(sheet.width == 3 * 30 + 2);
  CHECK(sheet.height == 4 * 30 + 2);
}
