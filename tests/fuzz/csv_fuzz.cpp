// The MiniImageNet csv reader (and the Omniglot split-file reader): the input
// is the csv file of a dataset root whose images/ folder holds one valid PNG
// (a.png), so rows that name it reach the decoder.
#include "fuzz_support.h"
#include "metanas/datasets/image.h"
#include "metanas/datasets/mini_imagenet.h"
#include "metanas/datasets/splits.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool ready = [] {
    const uint8_t px[4 * 4] = {0, 50, 100, 150, 200, 250, 0, 50, 100, 150, 200, 250, 0, 50, 100, 150};
    std::filesystem::create_directories(fuzz::scratch() / "mini" / "images");
    metanas::data::write_png((fuzz::scratch() / "mini" / "images" / "a.png").string(), 4, 4, 1, px);
    return true;
  }();
  (void)ready;
  fuzz::write_file("mini/train.csv", data, size);
  fuzz::expect_clean([&] {
    metanas::data::MiniImageNetOptions o;
    o.root = (fuzz::scratch() / "mini").string();
    o.layout = "csv";
    o.image_size = 8;
    o.cache.enabled = false;
    (void)metanas::data::load_mini_imagenet(o);
  });
  const std::string split = fuzz::write_file("split.txt", data, size);
  for (const char* s : {"train", "val", "test"})
    fuzz::expect_clean([&] { (void)metanas::data::read_split_file(split, s); });
  return 0;
}
