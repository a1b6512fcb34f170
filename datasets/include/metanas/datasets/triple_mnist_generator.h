// Composes a TripleMNIST-style dataset from MNIST-style digits (IDX files),
// the way the released data was made (shaohua0116/MultiDigitMNIST,
// generator.py): class "abc" is digits a, b, c side by side on a black
// canvas of 3 digit widths (84x84 for 28x28 digits), digit l at column
// l * width and at a random row in [0, canvas - height), each digit drawn
// at random from the pool of its digit class. Written in the released layout
// (<out>/<split>/<class>/<k>_<class>.png, k from 0) so load_triple_mnist
// reads it.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "metanas/datasets/idx.h"

namespace metanas::data {

// Which dataset digits make one image and where they go.
struct TriplePlacement {
  std::array<int64_t, 3> digit{};  // index into IdxDigits
  std::array<int, 3> y{};          // top row of each digit
};

// Indices of each digit class 0..9 in `digits`, in file order.
std::array<std::vector<int64_t>, 10> digit_pools(const IdxDigits& digits);

// The draw for image k of class `cls` (0..999): a function of (seed, cls, k)
// only, so images can be generated in any order or in parallel. Throws
// metanas::Error when a digit of the class has no images.
TriplePlacement draw_triple(const std::array<std::vector<int64_t>, 10>& pools, const IdxDigits& digits,
                            int cls, int k, uint64_t seed);

// Renders a placement: canvas is (3*cols) x (3*cols) bytes, zeroed first.
void compose_triple(const IdxDigits& digits, const TriplePlacement& p, uint8_t* canvas);

struct TripleMnistGenOptions {
  std::string out;
  int images_per_class = 1000;  // as released
  uint64_t seed = 123;
  // Class names ("000".."999") of train, val, test; all empty: torchmeta's
  // split (triple_mnist_split with split_seed).
  std::array<std::vector<std::string>, 3> splits;
  uint32_t split_seed = 123;
  bool overwrite = false;  // write into a non-empty folder
  // Called after each class: split name, classes done in it, its total.
  std::function<void(const std::string&, int, int)> progress;
};

// Reads a generator split file: a JSON object {"train": [...], "val": [...],
// "test": [...]} of class names; checks names and that no class repeats.
std::array<std::vector<std::string>, 3> read_triple_split_file(const std::string& path);

// Writes the dataset; returns the number of images written. Throws
// metanas::Error for a non-empty output folder (unless overwrite), a bad
// class name, a digit class without images, or a file that cannot be written.
int64_t write_triple_mnist(const IdxDigits& digits, const TripleMnistGenOptions& opts);

}  // namespace metanas::data
