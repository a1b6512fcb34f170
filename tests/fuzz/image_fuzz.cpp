// The image decoder wrapper (stb: PNG, JPEG, ...) with the loader's size
// limits, as 1 and 3 channels, followed by the resize the loaders apply.
#include "fuzz_support.h"
#include "metanas/datasets/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (int channels : {1, 3}) {
    fuzz::expect_clean([&] {
      const metanas::data::Image img = metanas::data::decode_image_memory(data, size, channels, "fuzz");
      if (img.width * img.height <= 512 * 512) (void)metanas::data::resize_image(img, 28, 28);
    });
  }
  return 0;
}
