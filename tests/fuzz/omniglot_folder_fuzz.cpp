// The Omniglot folder reader: each input line is a relative path created
// under a fresh root (".png" names get a small valid PNG, others the bytes
// after a '=' on the line, or nothing), then the folder is listed and loaded.
#include <sstream>

#include "fuzz_support.h"
#include "metanas/datasets/image.h"
#include "metanas/datasets/omniglot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  static const std::string png = [] {
    const uint8_t px[4 * 4] = {0, 255, 0, 255, 255, 0, 255, 0, 0, 255, 0, 255, 255, 0, 255, 0};
    const std::string p = (fuzz::scratch() / "seed.png").string();
    metanas::data::write_png(p, 4, 4, 1, px);
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }();
  const fs::path root = fuzz::scratch() / "og";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root / "images_background");
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::string line;
  int files = 0;
  while (std::getline(in, line) && files < 64) {
    std::string rel = line, body;
    const size_t eq = line.find('=');
    if (eq != std::string::npos) rel = line.substr(0, eq), body = line.substr(eq + 1);
    // Stay inside the root: no absolute paths, no "..", at most 4 levels.
    if (rel.empty() || rel[0] == '/' || rel.find("..") != std::string::npos || rel.find('\0') != std::string::npos)
      continue;
    int depth = 0;
    for (char c : rel) depth += c == '/';
    if (depth > 3 || rel.size() > 200) continue;
    const fs::path p = root / "images_background" / rel;
    fs::create_directories(p.parent_path(), ec);
    if (ec) continue;
    const bool is_png = rel.size() > 4 && rel.compare(rel.size() - 4, 4, ".png") == 0;
    std::ofstream(p, std::ios::binary) << (is_png && body.empty() ? png : body);
    ++files;
  }
  fuzz::expect_clean([&] { (void)metanas::data::list_omniglot_folder((root / "images_background").string()); });
  fuzz::expect_clean([&] {
    metanas::data::OmniglotOptions o;
    o.root = root.string();
    o.split = "train";
    o.image_size = 8;
    o.cache.enabled = false;
    (void)metanas::data::load_omniglot(o);
  });
  return 0;
}
