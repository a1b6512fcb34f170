// Dataset::split_images: the per-class image split of the T-NAS code's
// Auto-MAML search (train_portion): disjoint parts, every class in both, the
// rotation kept, and a part that would leave a class empty is an error.
#include <catch2/catch.hpp>

#include <vector>

#include "metanas/datasets/dataset.h"
#include "metanas/engine/error.h"

using namespace metanas;
using Catch::Matchers::Contains;

TEST_CASE("split_images keeps each class's first and second part of its images", "[datasets][split]") {
  data::Dataset ds(1, 2, 2);
  for (int c = 0; c < 3; ++c) {
    std::vector<uint8_t> px;
    const int n = 4 + c;  // 4, 5, 6 images
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < 4; ++k) px.push_back(static_cast<uint8_t>(10 * c + i));
    ds.add_class("c" + std::to_string(c), px.data(), n);
  }
  const data::Dataset rot = ds.with_rotations({0, 90});
  const data::Dataset a = rot.split_images(0.0, 0.5), b = rot.split_images(0.5, 1.0);
  REQUIRE(a.num_classes() == 6);
  REQUIRE(b.num_classes() == 6);
  for (int c = 0; c < 6; ++c) {
    const int n = rot.class_size(c);
    CHECK(a.class_size(c) == n / 2);
    CHECK(a.class_size(c) + b.class_size(c) == n);
    CHECK(a.class_name(c) == rot.class_name(c));
    CHECK(b.entry(c).rotation == rot.entry(c).rotation);
    // The first part is images 0.. of the class, the second the rest.
    CHECK(*a.stored_image(c, 0) == *rot.stored_image(c, 0));
    CHECK(*b.stored_image(c, 0) == *rot.stored_image(c, n / 2));
    CHECK(*b.stored_image(c, b.class_size(c) - 1) == *rot.stored_image(c, n - 1));
  }
  CHECK_THROWS_WITH(ds.split_images(0.5, 0.5), Contains("0 <= from < to <= 1"));
  CHECK_THROWS_WITH(ds.split_images(0.0, 0.1), Contains("keeps no image"));
}
