// The genotype parsers: the DARTS text form and the JSON form; what parses
// must survive a round trip through its own text.
#include "fuzz_support.h"
#include "metanas/nas/genotype.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clean([&] {
    const metanas::nas::Genotype g = metanas::nas::Genotype::from_text(s);
    if (!(metanas::nas::Genotype::from_text(g.to_text()) == g)) __builtin_trap();
  });
  fuzz::expect_clean([&] { (void)metanas::nas::Genotype::from_json(s); });
  return 0;
}
