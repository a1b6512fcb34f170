// The one-shot runs reader: the input is run01/class_labels.txt of a runs
// folder whose training/ and test/ folders hold small valid PNGs.
#include "fuzz_support.h"
#include "metanas/datasets/image.h"
#include "metanas/datasets/oneshot_runs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool ready = [] {
    const uint8_t px[4 * 4] = {0, 255, 0, 255, 255, 0, 255, 0, 0, 255, 0, 255, 255, 0, 255, 0};
    for (const char* sub : {"training", "test"}) {
      std::filesystem::create_directories(fuzz::scratch() / "runs" / "run01" / sub);
      for (const char* f : {"class01.png", "class02.png", "item01.png", "item02.png"})
        metanas::data::write_png((fuzz::scratch() / "runs" / "run01" / sub / f).string(), 4, 4, 1, px);
    }
    return true;
  }();
  (void)ready;
  fuzz::write_file("runs/run01/class_labels.txt", data, size);
  fuzz::expect_clean([&] {
    metanas::data::OneShotOptions o;
    o.root = (fuzz::scratch() / "runs").string();
    o.image_size = 8;
    (void)metanas::data::load_oneshot_runs(o);
  });
  return 0;
}
