// Omniglot loader for the official unzipped archives:
//   <root>/images_background/<Alphabet>/characterNN/XXXX_YY.png  (30 alphabets)
//   <root>/images_evaluation/<Alphabet>/characterNN/XXXX_YY.png  (20 alphabets)
// (105x105 1-bit PNGs, 20 drawers per character; the images_background_small1
// / small2 subsets work by naming them as background_dir). Images are resized
// to image_size (antialiased), scaled to [0, 1] when batched; one class per
// character and rotation. Decoded pixels go through the packed cache.
#pragma once
#include <string>
#include <vector>

#include "metanas/datasets/cache.h"
#include "metanas/datasets/dataset.h"
#include "metanas/datasets/image.h"

namespace metanas::data {

struct OmniglotOptions {
  std::string root;
  std::string split = "train";  // train | val | test
  // Which characters each split holds:
  //  "background"         train = all of background_dir (MetaNAS's default),
  //                       test = all of evaluation_dir, val = the 5 background
  //                       alphabets of Vinyals' val split (a subset of train:
  //                       a held-in monitor, not for model selection).
  //  "background-holdout" as "background", but those 5 alphabets are removed
  //                       from train, so val is disjoint from train.
  //  "vinyals"            Vinyals et al.'s split, 1028 / 172 / 423 characters
  //                       from both sets (omniglot_vinyals_split()).
  //  any other value      a split file (see read_split_file) listing
  //                       "Alphabet/characterNN" names, looked up in both
  //                       sets; entries may end in "/rot000".."/rot270" to
  //                       pick rotations per character (then `rotations` is
  //                       ignored).
  std::string scheme = "background";
  int image_size = 28;  // 0 keeps the stored 105x105
  // Omniglot's files are dark ink on white paper. invert = false keeps that
  // (paper 1.0, ink 0.0: what torchvision/torchmeta and hence MetaNAS feed);
  // true gives ink 1.0 on paper 0.0.
  bool invert = false;
  // Class augmentation: each character becomes one class per angle
  // (multiples of 90, counter-clockwise). {0, 90, 180, 270} is the usual
  // choice for training splits; set it per split.
  std::vector<int> rotations = {0};
  std::string background_dir = "images_background";
  std::string evaluation_dir = "images_evaluation";
  ResizeFilter filter = ResizeFilter::Triangle;
  CacheOptions cache;
};

Dataset load_omniglot(const OmniglotOptions& opts);

// The characters of one folder of alphabets (<dir>/<Alphabet>/<character>/
// images), sorted, named "Alphabet/character". Throws metanas::Error for a
// missing folder, an alphabet without characters or a character without
// images, naming the path.
std::vector<ClassSource> list_omniglot_folder(const std::string& dir);

}  // namespace metanas::data
