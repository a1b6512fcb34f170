// The JSON configuration reader: MetaConfig from JSON, then the input's
// second half (after a NUL byte, if any) applied as an override patch, as the
// programs do with --set.
#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "metanas/meta/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  const size_t cut = s.find('\0');
  const std::string base = s.substr(0, cut), patch = cut == std::string::npos ? "" : s.substr(cut + 1);
  fuzz::expect_clean([&] {
    metanas::meta::MetaConfig c = metanas::meta::MetaConfig::from_json(base);
    if (!patch.empty()) {
      nlohmann::json j = nlohmann::json::parse(c.to_json());
      nlohmann::json p;
      try {
        p = nlohmann::json::parse(patch);
      } catch (const nlohmann::json::exception&) {
        return;
      }
      if (!p.is_object()) return;
      j.merge_patch(p);
      c = metanas::meta::MetaConfig::from_json(j.dump());
    }
    (void)metanas::meta::MetaConfig::from_json(c.to_json());  // what validated must read back
  });
  return 0;
}
