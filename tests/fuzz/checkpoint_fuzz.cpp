// The checkpoint reader (docs/formats.md): any bytes must load or throw
// metanas::Error; what loads must answer its lookups.
#include "fuzz_support.h"
#include "metanas/engine/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("ck.mnck", data, size);
  fuzz::expect_clean([&] {
    const metanas::Checkpoint ck = metanas::Checkpoint::load(path);
    for (const auto& n : ck.names()) (void)ck.get(n).numel();
    (void)ck.metadata_json().size();
  });
  return 0;
}
