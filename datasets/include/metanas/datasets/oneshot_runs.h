// Lake et al.'s one-shot classification runs (Omniglot, 20-way 1-shot):
//   <root>/runNN/training/classKK.png   one image per class (the support set)
//   <root>/runNN/test/itemMM.png        the queries
//   <root>/runNN/class_labels.txt       lines "runNN/test/itemMM.png runNN/training/classKK.png"
// Each run becomes one Episode: support = the training images in sorted file
// order (label = position), queries in class_labels.txt order with their
// ground-truth labels.
#pragma once
#include <string>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/datasets/image.h"

namespace metanas::data {

struct OneShotOptions {
  std::string root;     // the folder holding run01, run02, ...
  int image_size = 28;  // 0 keeps the stored size
  bool invert = false;  // as OmniglotOptions::invert
  ResizeFilter filter = ResizeFilter::Triangle;
  Device device = Device::CPU;
};

struct OneShotRun {
  std::string name;                        // "run01"
  // ways = number of training images, shots = 1, queries = test images per
  // class (1 in Lake's runs). Query rows are class-major (sorted by label,
  // file order within a label), matching query_files. support_refs and
  // query_refs stay empty: a run is not part of a Dataset.
  Episode episode;
  std::vector<std::string> support_files;  // training image per label
  std::vector<std::string> query_files;    // test image per query row
};

// All runs under root, sorted by folder name. Throws metanas::Error naming the
// file for a missing root, a run without class_labels.txt, a malformed line,
// or a listed image that does not exist or does not decode.
std::vector<OneShotRun> load_oneshot_runs(const OneShotOptions& opts);

}  // namespace metanas::data
