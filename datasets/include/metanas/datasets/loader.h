// One entry point that loads a dataset split by name, so programs can say
// `--dataset omniglot --data PATH --split train`.
#pragma once
#include <string>
#include <vector>

#include "metanas/datasets/cache.h"
#include "metanas/datasets/dataset.h"
#include "metanas/datasets/synthetic.h"

namespace metanas::data {

struct LoadOptions {
  std::string root;        // dataset folder (unused by "synthetic")
  int image_size = -1;     // -1: the dataset's default (28 Omniglot/synthetic/TripleMNIST, 84 MiniImageNet); 0: stored size
  bool invert = false;     // see OmniglotOptions::invert
  std::vector<int> rotations = {0};  // rotation classes (Omniglot, synthetic); set per split
  std::string scheme;      // split scheme (empty: the dataset's default); see OmniglotOptions, TripleMnistOptions
  std::string layout = "auto";       // MiniImageNet layout
  CacheOptions cache;
  SyntheticOptions synthetic;        // "synthetic": its size is overridden by image_size when >= 1
};

// name: "synthetic" | "omniglot" | "miniimagenet" (also "mini-imagenet",
// "mini_imagenet") | "triplemnist" (also "triple-mnist", "triple_mnist"); split: train | val | test. Throws metanas::Error for an
// unknown name or split, and passes on the loaders' errors.
Dataset load_dataset(const std::string& name, const std::string& split, const LoadOptions& opts);

// The names load_dataset accepts (canonical forms).
std::vector<std::string> dataset_names();

}  // namespace metanas::data
