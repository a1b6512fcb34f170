// Built-in synthetic handwriting: procedurally generated characters that need
// no files. Alphabets share a stroke style (width, curvature, stroke length,
// slant, stroke count); each class is 1-4 cubic Bezier pen strokes; each of
// its instances is the class redrawn by a different "drawer" (jittered
// control points, stroke width, small affine transform), rasterised with
// antialiasing. Deterministic from the seed, independent of thread count.
#pragma once
#include <cstdint>
#include <string>
#include <utility>

#include "metanas/datasets/dataset.h"
#include "metanas/datasets/image.h"

namespace metanas::data {

struct SyntheticOptions {
  int num_alphabets = 50;
  int classes_per_alphabet = 30;
  int drawers = 20;  // instances per class
  int size = 28;     // images are size x size, 1 channel
  uint64_t seed = 0;
  // false: white paper (255) and dark ink (0), as Omniglot's files and the
  // Omniglot loader's default; true: ink high, paper 0.
  bool invert = false;
};

// All alphabets: num_alphabets * classes_per_alphabet classes named
// "Alphabet_AA/characterCC" (1-based), `drawers` images each.
Dataset make_synthetic(const SyntheticOptions& opts);
// Alphabets [first_alphabet, first_alphabet + count) only; the images are
// identical to those of the same classes in the full dataset.
Dataset make_synthetic(const SyntheticOptions& opts, int first_alphabet, int count);

// The alphabets of a split: test is the last round(30%) of the alphabets, val
// the round(10%) before them, train the rest (at least one each; needs 3
// alphabets). Returns {first_alphabet, count}.
std::pair<int, int> synthetic_split_alphabets(const SyntheticOptions& opts, const std::string& split);
// make_synthetic restricted to one split's alphabets.
Dataset make_synthetic_split(const SyntheticOptions& opts, const std::string& split);

// A contact sheet: `rows` classes spread evenly over the dataset, up to
// `cols` images of each, one cell per image with a 2-pixel grey border.
Image contact_sheet(const Dataset& ds, int rows, int cols);

}  // namespace metanas::data
