// TripleMNIST (Sun 2019, "Multi-digit MNIST for few-shot learning"; the
// torchmeta TripleMNIST dataset used by reg-MetaNAS) in its released layout:
//   <root>/{train,val,test}/<class>/<k>_<class>.png
// 84x84 grayscale PNGs, white digits on black, classes "000".."999" (three
// MNIST digits side by side), 640 / 160 / 200 classes. Images are decoded as
// one channel and resized to image_size (28, as reg-MetaNAS's
// Resize(28) + Grayscale(1) pipeline does); decoded pixels go through the
// packed cache.
#pragma once
#include <string>
#include <vector>

#include "metanas/datasets/cache.h"
#include "metanas/datasets/dataset.h"
#include "metanas/datasets/image.h"

namespace metanas::data {

struct TripleMnistOptions {
  std::string root;
  std::string split = "train";  // train | val | test
  // Which classes a split holds:
  //  "folders"   the class folders found under <root>/<split>/ (sorted); for
  //              the released data this is torchmeta's split.
  //  "torchmeta" exactly triple_mnist_split(split), each looked up in
  //              <root>/<split>/ (an error names the first missing class).
  //  otherwise   a split file (read_split_file) of class names, each looked
  //              up in <root>/<split>/, then in the other two split folders.
  std::string scheme = "folders";
  int image_size = 28;  // 0 keeps the stored 84x84
  bool invert = false;  // true: black digits on white
  ResizeFilter filter = ResizeFilter::Triangle;
  CacheOptions cache;
};

Dataset load_triple_mnist(const TripleMnistOptions& opts);

// The 1000 class names "000".."999" in sorted order.
std::vector<std::string> triple_mnist_classes();

// torchmeta's (and the released data's) split: numpy
// RandomState(seed).shuffle of the 1000 sorted class names; train = the first
// 640, val = the next 160, test = the last 200. Returned in shuffle order
// (sort for torchmeta's json lists, which are sorted). seed 123 is the
// published split.
std::vector<std::string> triple_mnist_split(const std::string& split, uint32_t seed = 123);

}  // namespace metanas::data
