// make-synthetic: writes metanas's built-in synthetic handwriting dataset to
// disk in the Omniglot layout (images_background/ = train+val alphabets,
// images_evaluation/ = test alphabets) and saves a PNG contact sheet.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "metanas/datasets/image.h"
#include "metanas/datasets/synthetic.h"
#include "metanas/engine/error.h"

namespace fs = std::filesystem;
using namespace metanas;

namespace {

const char* kUsage = R"(usage: make-synthetic --out DIR [options]

Writes the built-in synthetic handwriting dataset as Omniglot-style PNGs:
  DIR/images_background/Alphabet_AA/characterCC/NNNN_DD.png  (train + val alphabets)
  DIR/images_evaluation/Alphabet_AA/characterCC/NNNN_DD.png  (test alphabets)
(NNNN = class number over the whole dataset, DD = drawer), plus a contact sheet.
Load it back with the Omniglot loader (--dataset omniglot --data DIR).

options:
  --out DIR                  output folder (required unless --sheet-only)
  --alphabets N              number of alphabets (default 50)
  --classes-per-alphabet N   characters per alphabet (default 30)
  --drawers N                images per character (default 20)
  --size N                   image size in pixels (default 105, Omniglot's)
  --seed S                   generator seed (default 0)
  --invert                   ink high / paper 0 (default: white paper, dark ink
                             like Omniglot's files)
  --sheet PATH               contact sheet PNG (default DIR/contact_sheet.png)
  --sheet-rows N             characters shown on the sheet (default 20)
  --sheet-cols N             drawers shown per character (default 20)
  --sheet-only               write only the contact sheet (needs --sheet)
  --help                     this text
)";

int parse_int(const std::string& flag, const char* v) {
  MN_CHECK(v != nullptr, flag, " needs a value");
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  MN_CHECK(end && *end == '\0' && end != v, flag, ": '", v, "' is not an integer");
  return static_cast<int>(x);
}

std::string two_digits(int v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*d", width, v);
  return buf;
}

int run(int argc, char** argv) {
  data::SyntheticOptions opts;
  opts.size = 105;
  std::string out, sheet;
  int sheet_rows = 20, sheet_cols = 20;
  bool sheet_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--out") {
      MN_CHECK(next, "--out needs a folder");
      out = next, ++i;
    } else if (a == "--sheet") {
      MN_CHECK(next, "--sheet needs a path");
      sheet = next, ++i;
    } else if (a == "--alphabets") {
      opts.num_alphabets = parse_int(a, next), ++i;
    } else if (a == "--classes-per-alphabet") {
      opts.classes_per_alphabet = parse_int(a, next), ++i;
    } else if (a == "--drawers") {
      opts.drawers = parse_int(a, next), ++i;
    } else if (a == "--size") {
      opts.size = parse_int(a, next), ++i;
    } else if (a == "--seed") {
      MN_CHECK(next, "--seed needs a value");
      char* end = nullptr;
      opts.seed = std::strtoull(next, &end, 10);
      MN_CHECK(end && *end == '\0' && end != next, "--seed: '", next, "' is not an integer");
      ++i;
    } else if (a == "--invert") {
      opts.invert = true;
    } else if (a == "--sheet-rows") {
      sheet_rows = parse_int(a, next), ++i;
    } else if (a == "--sheet-cols") {
      sheet_cols = parse_int(a, next), ++i;
    } else if (a == "--sheet-only") {
      sheet_only = true;
    } else {
      MN_THROW("unknown option '", a, "' (see --help)");
    }
  }
  MN_CHECK(!out.empty() || (sheet_only && !sheet.empty()),
           "--out DIR is required (or --sheet-only with --sheet PATH); see --help");
  if (sheet.empty()) sheet = out + "/contact_sheet.png";

  const data::Dataset ds = data::make_synthetic(opts);
  if (!sheet_only) {
    // train + val alphabets -> background, test alphabets -> evaluation.
    // (With fewer than 3 alphabets there are no splits: all go to background.)
    const int first_test = opts.num_alphabets >= 3
                               ? data::synthetic_split_alphabets(opts, "test").first
                               : opts.num_alphabets;
    const int class_digits = std::max(4, int(std::to_string(ds.num_classes()).size()));
    const int drawer_digits = std::max(2, int(std::to_string(opts.drawers).size()));
    std::vector<uint8_t> img(size_t(ds.image_numel()));
    for (int c = 0; c < ds.num_classes(); ++c) {
      const int alphabet = c / opts.classes_per_alphabet;
      const fs::path dir = fs::path(out) /
                           (alphabet < first_test ? "images_background" : "images_evaluation") /
                           ds.class_name(c);
      std::error_code ec;
      fs::create_directories(dir, ec);
      MN_CHECK(!ec, "cannot create folder '", dir.string(), "': ", ec.message());
      for (int d = 0; d < ds.class_size(c); ++d) {
        ds.read_image(c, d, img.data());
        const std::string name = two_digits(c + 1, class_digits) + "_" + two_digits(d + 1, drawer_digits) + ".png";
        data::write_png((dir / name).string(), ds.width(), ds.height(), 1, img.data());
      }
    }
    std::printf("wrote %lld images of %d characters (%d alphabets) to %s\n",
                static_cast<long long>(ds.num_images()), ds.num_classes(), opts.num_alphabets,
                out.c_str());
  }
  if (fs::path(sheet).has_parent_path()) fs::create_directories(fs::path(sheet).parent_path());
  data::write_png(sheet, data::contact_sheet(ds, sheet_rows, sheet_cols));
  std::printf("wrote contact sheet %s\n", sheet.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const metanas::Error& e) {
    std::fprintf(stderr, "make-synthetic: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make-synthetic: %s\n", e.what());
    return 1;
  }
}
