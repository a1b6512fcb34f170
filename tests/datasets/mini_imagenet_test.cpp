// MiniImageNet loader on csv-layout and folder-layout fixtures (JPEGs of
// several sizes resized to 84x84 RGB), and its bad-input errors.
#include <catch2/catch.hpp>

#include "fixtures.h"
#include "metanas/datasets/mini_imagenet.h"
#include "metanas/engine/error.h"

using namespace metanas;
using namespace metanas::data;
using fixtures::TempDir;

namespace {
// Class colours (distinct per wnid) and the image sizes used (not 84x84).
struct Colour {
  uint8_t r, g, b;
};
const Colour kColours[] = {{220, 20, 60}, {30, 144, 255}, {50, 205, 50}};
const std::pair<int, int> kSizes[] = {{100, 90}, {84, 84}, {61, 70}};

void write_csv_layout(const TempDir& root) {
  std::string train = "filename,label\n", val = "filename,label\r\n";
  const char* wnids[] = {"n02074367", "n01532829", "n03017168"};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 3; ++i) {
      const std::string file = std::string(wnids[c]) + "0000000" + std::to_string(i + 1) + ".jpg";
      const auto [w, h] = kSizes[i];
      fixtures::write_jpg(root / ("images/" + file), fixtures::solid(w, h, kColours[c].r, kColours[c].g, kColours[c].b), w, h);
      (c < 2 ? train : val) += file + "," + wnids[c] + (c < 2 ? "\n" : "\r\n");
    }
  fixtures::write_text(root / "train.csv", train);
  fixtures::write_text(root / "val.csv", val);
}

void check_colour(const Dataset& d, int cls, Colour col) {
  std::vector<uint8_t> img(size_t(d.image_numel()));
  for (int i = 0; i < d.class_size(cls); ++i) {
    d.read_image(cls, i, img.data());
    const size_t plane = 84 * 84;
    for (size_t p = 0; p < plane; p += 97) {  // planar RGB
      REQUIRE(std::abs(img[p] - col.r) <= 3);
      REQUIRE(std::abs(img[plane + p] - col.g) <= 3);
      REQUIRE(std::abs(img[2 * plane + p] - col.b) <= 3);
    }
  }
}
}  // namespace

TEST_CASE("miniimagenet: csv layout (Ravi & Larochelle)", "[miniimagenet]") {
  TempDir root;
  write_csv_layout(root);
  MiniImageNetOptions o;
  o.root = root.str();
  o.cache.enabled = false;
  const Dataset train = load_mini_imagenet(o);
  REQUIRE(train.num_classes() == 2);
  CHECK(train.channels() == 3);
  CHECK(train.height() == 84);
  CHECK(train.width() == 84);
  CHECK(train.num_images() == 6);
  // Classes sorted by wnid.
  CHECK(train.class_name(0) == "n01532829");
  CHECK(train.class_name(1) == "n02074367");
  check_colour(train, 0, kColours[1]);
  check_colour(train, 1, kColours[0]);
  o.split = "val";  // CRLF line endings
  const Dataset val = load_mini_imagenet(o);
  REQUIRE(val.num_classes() == 1);
  CHECK(val.class_name(0) == "n03017168");
  check_colour(val, 0, kColours[2]);
  o.image_size = 32;
  CHECK(load_mini_imagenet(o).height() == 32);
}

TEST_CASE("miniimagenet: folder layout", "[miniimagenet]") {
  TempDir root;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 2 + c; ++i) {
      const auto [w, h] = kSizes[i % 3];
      fixtures::write_jpg(root / ("test/n0" + std::to_string(c) + "/img" + std::to_string(i) + ".jpg"),
                          fixtures::solid(w, h, kColours[c].r, kColours[c].g, kColours[c].b), w, h);
    }
  MiniImageNetOptions o;
  o.root = root.str();
  o.split = "test";
  o.cache.enabled = false;
  const Dataset d = load_mini_imagenet(o);
  REQUIRE(d.num_classes() == 3);
  CHECK(d.class_size(0) == 2);
  CHECK(d.class_size(2) == 4);
  CHECK(d.class_name(1) == "n01");
  for (int c = 0; c < 3; ++c) check_colour(d, c, kColours[c]);
  // Float tensors are in [0, 1].
  const auto t = d.images({{0, 0}}).to_vector();
  CHECK(t[0] == Approx(kColours[0].r / 255.0).margin(0.015));
}

TEST_CASE("miniimagenet: bad input gives clear errors", "[miniimagenet][errors]") {
  TempDir root;
  MiniImageNetOptions o;
  o.root = root / "absent";
  o.cache.enabled = false;
  REQUIRE_THROWS_WITH(load_mini_imagenet(o), Catch::Contains("absent") && Catch::Contains("does not exist"));
  o.root = root.str();
  REQUIRE_THROWS_WITH(load_mini_imagenet(o), Catch::Contains("train.csv") && Catch::Contains("neither"));

  write_csv_layout(root);
  // A row naming an image that is not there: the csv line and the path.
  fixtures::write_text(root / "train.csv", "filename,label\nn0153282900000001.jpg,n01532829\n"
                                           "n0153282900000099.jpg,n01532829\n");
  REQUIRE_THROWS_WITH(load_mini_imagenet(o), Catch::Contains("train.csv' line 3") &&
                                                 Catch::Contains("n0153282900000099.jpg") &&
                                                 Catch::Contains("does not exist"));
  fixtures::write_text(root / "train.csv", "file,class\nx.jpg,n1\n");
  REQUIRE_THROWS_WITH(load_mini_imagenet(o), Catch::Contains("filename,label"));
  fixtures::write_text(root / "train.csv", "filename,label\nonly-one-field\n");
  REQUIRE_THROWS_WITH(load_mini_imagenet(o), Catch::Contains("line 2"));
  fixtures::write_text(root / "train.csv", "filename,label\n");
  REQUIRE_THROWS_WITH(load_mini_imagenet(o), Catch::Contains("lists no images"));
  // A corrupt JPEG listed in the csv.
  fixtures::write_text(root / "images/broken.jpg", std::string("\xFF\xD8\xFF\xE0 truncated", 14));
  fixtures::write_text(root / "train.csv", "filename,label\nbroken.jpg,n01532829\n");
  REQUIRE_THROWS_WITH(load_mini_imagenet(o), Catch::Contains("broken.jpg"));
  // Folder layout with an empty class folder.
  fixtures::fs::create_directories(root / "test/n09999999");
  o.split = "test";
  REQUIRE_THROWS_WITH(load_mini_imagenet(o), Catch::Contains("n09999999") && Catch::Contains("no images"));
  o.layout = "zip";
  REQUIRE_THROWS_WITH(load_mini_imagenet(o), Catch::Contains("zip"));
}
