// make-triplemnist: composes a TripleMNIST dataset (three MNIST digits side
// by side per image, classes "000".."999") from MNIST IDX files and writes it
// in the released layout, which the TripleMNIST loader reads.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/main.h"
#include "common/progress.h"
#include "metanas/datasets/idx.h"
#include "metanas/datasets/triple_mnist_generator.h"

using namespace metanas;

namespace {

cli::ArgParser make_parser() {
  return cli::ArgParser(
      "make-triplemnist", "--images IDX --labels IDX --out DIR [options]",
      "Composes TripleMNIST from MNIST-style IDX files (.gz or plain): class \"abc\" is digits a, b, c\n"
      "side by side on a black 84x84 canvas (x = 0, 28, 56; a random y in [0, 56) per digit), each\n"
      "digit drawn at random from the images of its digit class. Writes\n"
      "  DIR/{train,val,test}/<class>/<k>_<class>.png\n"
      "(the released layout; load it with --dataset triplemnist --data DIR).",
      {
          {"--images", "IDX", "MNIST image file (idx3, e.g. train-images-idx3-ubyte.gz);\nrepeat with --labels to pool several pairs"},
          {"--labels", "IDX", "the matching label file (idx1), one per --images"},
          {"--out", "DIR", "output folder (must be empty or absent)"},
          {"--images-per-class", "N", "images per class (default 1000, as released)"},
          {"--seed", "S", "seed of the digit and position draws (default 123)"},
          {"--split-seed", "S", "numpy RandomState seed of the class split (default 123:\ntorchmeta's 640 / 160 / 200 split)"},
          {"--split-file", "FILE", "JSON {\"train\": [...], \"val\": [...], \"test\": [...]} of class\nnames instead (only the listed classes are written)"},
          {"--threads", "N", "OpenMP threads (default: OMP_NUM_THREADS or all cores)"},
          {"--force", "", "write into a non-empty output folder"},
          {"--quiet", "", "no progress output"},
          {"--help", "", "this text"},
      },
      "Full size (all 70,000 MNIST digits):\n"
      "  make-triplemnist --images train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz \\\n"
      "                   --images t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz --out DIR");
}

int run(int argc, char** argv) {
  cli::ArgParser args = make_parser();
  args.parse(argc, argv);
  if (args.has("--help")) {
    std::fputs(args.help().c_str(), stdout);
    return 0;
  }
  MN_USAGE_CHECK(args.overrides().empty(), "unknown option '--", args.overrides().front().first, "'");
  MN_USAGE_CHECK(args.positional().empty(), "unexpected argument '", args.positional().front(), "'");
  const auto images = args.get_all("--images"), labels = args.get_all("--labels");
  MN_USAGE_CHECK(!images.empty(), "--images IDX is required");
  MN_USAGE_CHECK(images.size() == labels.size(), "give one --labels per --images (got ", images.size(),
                 " image files and ", labels.size(), " label files)");
  MN_USAGE_CHECK(args.has("--out"), "--out DIR is required");

  data::TripleMnistGenOptions o;
  o.out = args.get("--out");
  o.overwrite = args.has("--force");
  if (args.has("--images-per-class")) {
    const int64_t n = cli::parse_int_flag("--images-per-class", args.get("--images-per-class"));
    MN_USAGE_CHECK(n >= 1 && n <= 1000000, "--images-per-class must be in 1..1000000, got ", n);
    o.images_per_class = int(n);
  }
  if (args.has("--seed")) o.seed = cli::parse_u64_flag("--seed", args.get("--seed"));
  if (args.has("--split-seed")) {
    const uint64_t s = cli::parse_u64_flag("--split-seed", args.get("--split-seed"));
    MN_USAGE_CHECK(s <= 0xffffffffull, "--split-seed must be below 2^32 (numpy's limit), got ", s);
    o.split_seed = uint32_t(s);
  }
  if (args.has("--split-file")) o.splits = data::read_triple_split_file(args.get("--split-file"));
  if (args.has("--threads")) cli::set_threads(int(cli::parse_int_flag("--threads", args.get("--threads"))));
  const bool quiet = args.has("--quiet");

  data::IdxDigits digits;
  for (size_t i = 0; i < images.size(); ++i) {
    data::append_digits(digits, data::read_idx_digits(images[i], labels[i]), images[i]);
    if (!quiet) std::printf("read %s (%lld digits so far)\n", images[i].c_str(), (long long)digits.count());
  }
  if (!quiet)
    std::printf("writing %dx%d images, %d per class, to %s\n", 3 * digits.cols, 3 * digits.cols,
                o.images_per_class, o.out.c_str());
  cli::Stopwatch clock;
  o.progress = [&](const std::string& split, int done, int total) {
    if (quiet) return;
    if (done == total || done % std::max(1, total / 10) == 0) {
      std::printf("  %-5s %4d / %d classes  (%.1f s)\n", split.c_str(), done, total, clock.seconds());
      std::fflush(stdout);
    }
  };
  const int64_t n = data::write_triple_mnist(digits, o);
  if (!quiet) std::printf("wrote %lld images to %s in %.1f s\n", (long long)n, o.out.c_str(), clock.seconds());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run_main("make-triplemnist", [&] { return run(argc, argv); });
}
