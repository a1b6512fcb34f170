// TripleMNIST generator: per-image seeded draws, composition, PNG output.
#include "metanas/datasets/triple_mnist_generator.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "metanas/datasets/image.h"
#include "metanas/datasets/triple_mnist.h"
#include "metanas/engine/error.h"
#include "metanas/engine/random.h"

namespace metanas::data {

namespace fs = std::filesystem;

std::array<std::vector<int64_t>, 10> digit_pools(const IdxDigits& digits) {
  std::array<std::vector<int64_t>, 10> pools;
  for (int64_t i = 0; i < digits.count(); ++i) pools[digits.labels[size_t(i)]].push_back(i);
  return pools;
}

TriplePlacement draw_triple(const std::array<std::vector<int64_t>, 10>& pools, const IdxDigits& digits,
                            int cls, int k, uint64_t seed) {
  MN_CHECK(cls >= 0 && cls < 1000, "TripleMNIST generator: class ", cls, " is not in 0..999");
  const int canvas = 3 * digits.cols;
  MN_CHECK(digits.rows <= canvas, "TripleMNIST generator: digits of ", digits.rows, "x", digits.cols,
           " do not fit a ", canvas, "x", canvas, " canvas");
  // One generator per image (seed, class, index), so the draw does not depend
  // on generation order or thread count.
  Rng rng(seed * 0x9E3779B97F4A7C15ull + uint64_t(cls) * 0x100000001B3ull + uint64_t(k));
  const int d[3] = {cls / 100, cls / 10 % 10, cls % 10};
  TriplePlacement p;
  for (int l = 0; l < 3; ++l) {
    const auto& pool = pools[d[l]];
    MN_CHECK(!pool.empty(), "TripleMNIST generator: class ", cls / 100, cls / 10 % 10, cls % 10,
             " needs digit ", d[l], ", but the IDX files hold no image of it");
    p.digit[l] = pool[rng.below(pool.size())];
  }
  // As generator.py: randint(canvas - rows), i.e. [0, canvas - rows); 0 when the digit fills the canvas.
  for (int l = 0; l < 3; ++l) p.y[l] = canvas > digits.rows ? int(rng.below(uint64_t(canvas - digits.rows))) : 0;
  return p;
}

void compose_triple(const IdxDigits& digits, const TriplePlacement& p, uint8_t* canvas) {
  const int w = digits.cols, h = digits.rows, n = 3 * w;
  std::fill(canvas, canvas + size_t(n) * n, uint8_t(0));
  for (int l = 0; l < 3; ++l) {
    const uint8_t* src = digits.pixels.data() + size_t(p.digit[l]) * h * w;
    for (int r = 0; r < h; ++r)
      std::copy(src + size_t(r) * w, src + size_t(r + 1) * w, canvas + size_t(p.y[l] + r) * n + size_t(l) * w);
  }
}

namespace {

int class_number(const std::string& name, const std::string& where) {
  MN_CHECK(name.size() == 3 && std::isdigit((unsigned char)name[0]) && std::isdigit((unsigned char)name[1]) &&
               std::isdigit((unsigned char)name[2]),
           where, ": class '", name, "' is not three digits \"000\"..\"999\"");
  return std::stoi(name);
}

const char* kSplitNames[3] = {"train", "val", "test"};

}  // namespace

std::array<std::vector<std::string>, 3> read_triple_split_file(const std::string& path) {
  std::ifstream in(path);
  MN_CHECK(in.good(), "TripleMNIST split file '", path, "' cannot be opened");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    MN_THROW("TripleMNIST split file '", path, "' is not valid JSON: ", e.what());
  }
  MN_CHECK(j.is_object(), "TripleMNIST split file '", path, "' must be a JSON object {\"train\": [...], \"val\": [...], \"test\": [...]}");
  std::array<std::vector<std::string>, 3> out;
  std::set<std::string> seen;
  for (auto it = j.begin(); it != j.end(); ++it) {
    int s = it.key() == "train" ? 0 : it.key() == "val" || it.key() == "validation" ? 1 : it.key() == "test" ? 2 : -1;
    MN_CHECK(s >= 0, "TripleMNIST split file '", path, "': unknown key '", it.key(), "' (expected train, val, test)");
    MN_CHECK(it->is_array(), "TripleMNIST split file '", path, "': '", it.key(), "' is not a list");
    for (const auto& e : *it) {
      MN_CHECK(e.is_string(), "TripleMNIST split file '", path, "': '", it.key(), "' holds a non-string entry");
      const std::string name = e.get<std::string>();
      class_number(name, "TripleMNIST split file '" + path + "'");
      MN_CHECK(seen.insert(name).second, "TripleMNIST split file '", path, "': class '", name, "' is listed twice");
      out[size_t(s)].push_back(name);
    }
  }
  return out;
}

int64_t write_triple_mnist(const IdxDigits& digits, const TripleMnistGenOptions& o) {
  MN_CHECK(!o.out.empty(), "TripleMNIST generator: no output folder given");
  MN_CHECK(o.images_per_class >= 1, "TripleMNIST generator: images per class must be >= 1, got ", o.images_per_class);
  MN_CHECK(digits.count() > 0, "TripleMNIST generator: the IDX files hold no digits");
  std::error_code ec;
  if (fs::exists(o.out, ec)) {
    MN_CHECK(fs::is_directory(o.out, ec), "TripleMNIST generator: output '", o.out, "' exists and is not a folder");
    MN_CHECK(o.overwrite || fs::directory_iterator(o.out, ec) == fs::directory_iterator(),
             "TripleMNIST generator: output folder '", o.out, "' is not empty (use --force to write into it)");
  }
  std::array<std::vector<std::string>, 3> splits = o.splits;
  if (splits[0].empty() && splits[1].empty() && splits[2].empty())
    for (int s = 0; s < 3; ++s) splits[s] = triple_mnist_split(kSplitNames[s], o.split_seed);

  const auto pools = digit_pools(digits);
  for (const auto& classes : splits)  // a bad name or a missing digit fails before any file is written
    for (const auto& name : classes) draw_triple(pools, digits, class_number(name, "TripleMNIST generator"), 0, o.seed);
  const int n = 3 * digits.cols;
  int64_t written = 0;
  for (int s = 0; s < 3; ++s) {
    std::vector<std::string> classes = splits[s];
    std::sort(classes.begin(), classes.end());
    for (size_t ci = 0; ci < classes.size(); ++ci) {
      const std::string& name = classes[ci];
      const int cls = class_number(name, "TripleMNIST generator");
      const fs::path dir = fs::path(o.out) / kSplitNames[s] / name;
      fs::create_directories(dir, ec);
      MN_CHECK(!ec, "TripleMNIST generator: cannot create folder '", dir.string(), "': ", ec.message());
      std::string error;
#pragma omp parallel
      {
        std::vector<uint8_t> canvas(size_t(n) * n);
#pragma omp for schedule(dynamic, 8)
        for (int k = 0; k < o.images_per_class; ++k) {
          try {
            compose_triple(digits, draw_triple(pools, digits, cls, k, o.seed), canvas.data());
            write_png((dir / (std::to_string(k) + "_" + name + ".png")).string(), n, n, 1, canvas.data());
          } catch (const std::exception& e) {
#pragma omp critical
            if (error.empty()) error = e.what();
          }
        }
      }
      MN_CHECK(error.empty(), error);
      written += o.images_per_class;
      if (o.progress) o.progress(kSplitNames[s], int(ci + 1), int(classes.size()));
    }
  }
  return written;
}

}  // namespace metanas::data
