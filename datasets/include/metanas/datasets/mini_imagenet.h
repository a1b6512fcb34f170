// MiniImageNet loader for the two common layouts:
//  csv:     <root>/images/*.jpg and <root>/{train,val,test}.csv (Ravi &
//           Larochelle; header "filename,label", rows like
//           "n0153282900000005.jpg,n01532829")
//  folders: <root>/{train,val,test}/<wnid>/*.jpg
// Images are decoded as RGB, resized to image_size x image_size (84 by
// default, antialiased) and go through the packed cache. Classes are the
// wnids, sorted; images keep csv order (folders: sorted file names).
#pragma once
#include <string>

#include "metanas/datasets/cache.h"
#include "metanas/datasets/dataset.h"
#include "metanas/datasets/image.h"

namespace metanas::data {

struct MiniImageNetOptions {
  std::string root;
  std::string split = "train";  // train | val | test
  std::string layout = "auto";  // auto | csv | folders (auto: csv when <root>/<split>.csv exists)
  int image_size = 84;          // 0 keeps the stored size (all images must match)
  bool invert = false;
  ResizeFilter filter = ResizeFilter::Triangle;
  CacheOptions cache;
};

Dataset load_mini_imagenet(const MiniImageNetOptions& opts);

}  // namespace metanas::data
