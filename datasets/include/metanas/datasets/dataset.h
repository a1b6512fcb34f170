// Dataset: classes of same-size images (C, H, W) stored as uint8 in one shared
// pixel buffer (owned memory or a memory-mapped cache file), turned into
// float32 NCHW tensors in [0, 1] on demand.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metanas/datasets/image.h"
#include "metanas/engine/tensor.h"

namespace metanas::data {

// An immutable block of uint8 pixels shared between datasets.
class PixelBuffer {
 public:
  virtual ~PixelBuffer() = default;
  virtual const uint8_t* data() const = 0;
  virtual size_t size() const = 0;
};
// A buffer that owns `bytes`.
std::shared_ptr<const PixelBuffer> make_pixel_buffer(std::vector<uint8_t> bytes);

// One class: `count` consecutive images starting at image `first` of the
// buffer, read with `rotation` quarter turns counter-clockwise (0..3).
struct ClassEntry {
  std::string name;  // e.g. "Latin/character03", "Latin/character03/rot090", "n01532829"
  int64_t first = 0;
  int count = 0;
  int rotation = 0;
};

// Addresses one image: class index and image index within the class.
struct ImageRef {
  int cls = 0;
  int index = 0;
};

// A list of files that make one class (what the loaders decode).
struct ClassSource {
  std::string name;
  std::vector<std::string> files;  // absolute or caller-relative paths
};

// Copying a Dataset copies its class table and shares the pixels. Reading
// (const methods) is safe from several threads at once.
class Dataset {
 public:
  Dataset() = default;
  // An empty dataset of (channels, height, width) images; fill with add_class.
  Dataset(int channels, int height, int width);
  // A dataset over an existing buffer; checks that every class lies inside it.
  Dataset(int channels, int height, int width, std::shared_ptr<const PixelBuffer> pixels,
          std::vector<ClassEntry> classes);

  // Appends a class of `count` images stored CHW one after another
  // (count * C*H*W bytes, copied). Amortised O(bytes added).
  void add_class(const std::string& name, const uint8_t* pixels, int count);

  // ---- shape and counts ----
  bool empty() const { return classes_.empty(); }
  int channels() const { return c_; }
  int height() const { return h_; }
  int width() const { return w_; }
  int64_t image_numel() const { return int64_t(c_) * h_ * w_; }  // values per image
  int num_classes() const { return static_cast<int>(classes_.size()); }
  int64_t num_images() const;
  int class_size(int cls) const { return entry(cls).count; }
  int min_class_size() const;
  const ClassEntry& entry(int cls) const;
  const std::string& class_name(int cls) const { return entry(cls).name; }
  const std::vector<ClassEntry>& classes() const { return classes_; }
  int find_class(const std::string& name) const;  // -1 when absent

  // ---- reading images ----
  // The stored (unrotated) bytes of one image, C*H*W.
  const uint8_t* stored_image(int cls, int index) const;
  // One image as the dataset presents it (rotation applied): C*H*W values.
  void read_image(int cls, int index, uint8_t* dst) const;
  void read_image(int cls, int index, float* dst) const;  // scaled to [0, 1]
  // A float32 batch [refs.size(), C, H, W] in [0, 1] on `device`.
  Tensor images(const std::vector<ImageRef>& refs, Device device = Device::CPU) const;
  // Writes the same batch into host memory (refs.size() * C*H*W floats).
  void images_into(const std::vector<ImageRef>& refs, float* dst) const;
  // All images of one class as [class_size, C, H, W].
  Tensor class_images(int cls, Device device = Device::CPU) const;

  // ---- views (share the pixel buffer; no pixel copies) ----
  Dataset select_classes(const std::vector<int>& classes) const;
  // Each class becomes one class per angle (multiples of 90 degrees,
  // counter-clockwise), in the given order; names gain "/rotDDD" for DDD != 0.
  // Needs square images unless the angles are all 0 mod 360.
  Dataset with_rotations(const std::vector<int>& degrees) const;
  // Every class keeps only its images [floor(from * n), floor(to * n)) for n
  // its size (0 <= from < to <= 1): the per-class image split of the T-NAS
  // code's Auto-MAML search (train_portion). Throws when a class would be
  // left empty.
  Dataset split_images(double from, double to) const;

  // Where the pixels came from ("decoded ...", "memory-mapped cache ...",
  // "synthetic ..."): for logs and tests.
  const std::string& provenance() const { return provenance_; }
  void set_provenance(std::string p) { provenance_ = std::move(p); }
  const std::shared_ptr<const PixelBuffer>& buffer() const { return pixels_; }

 private:
  int c_ = 0, h_ = 0, w_ = 0;
  std::shared_ptr<const PixelBuffer> pixels_;
  std::vector<ClassEntry> classes_;
  std::string provenance_;
};

// Decodes every file of every class (OpenMP over files) into a new dataset
// of spec-sized images. Throws metanas::Error naming the first bad file, or
// the class when it has no files.
// height/width 0 in the spec keep the stored size (then all images must match).
Dataset decode_classes(const std::vector<ClassSource>& classes, const DecodeSpec& spec);

// Parses a list of angles "0,90,180,270" (degrees, multiples of 90).
std::vector<int> parse_rotations(const std::string& s);

}  // namespace metanas::data
