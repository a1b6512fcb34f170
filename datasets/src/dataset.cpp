// Dataset: class table over a shared uint8 pixel buffer; uint8 -> float
// batches (rotation applied on the fly); parallel decoding of class folders.
#include "metanas/datasets/dataset.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "metanas/engine/error.h"

namespace metanas::data {

namespace {

class VectorBuffer final : public PixelBuffer {
 public:
  explicit VectorBuffer(std::vector<uint8_t> b) : bytes(std::move(b)) {}
  const uint8_t* data() const override { return bytes.data(); }
  size_t size() const override { return bytes.size(); }
  std::vector<uint8_t> bytes;
};

constexpr float kInv255 = 1.0f / 255.0f;

// Source offset within one (n x n) plane for output pixel (y, x) after k
// counter-clockwise quarter turns: out(y, x) = in(x, n-1-y) for k = 1.
inline int64_t rotated_src(int k, int n, int y, int x) {
  switch (k) {
    case 1: return int64_t(x) * n + (n - 1 - y);
    case 2: return int64_t(n - 1 - y) * n + (n - 1 - x);
    case 3: return int64_t(n - 1 - x) * n + y;
    default: return int64_t(y) * n + x;
  }
}

template <typename T, typename Convert>
void read_rotated(const uint8_t* src, int c, int h, int w, int k, T* dst, Convert conv) {
  const int64_t hw = int64_t(h) * w;
  if (k == 0) {
    for (int64_t i = 0; i < hw * c; ++i) dst[i] = conv(src[i]);
    return;
  }
  for (int ch = 0; ch < c; ++ch) {
    const uint8_t* s = src + ch * hw;
    T* d = dst + ch * hw;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) d[int64_t(y) * w + x] = conv(s[rotated_src(k, w, y, x)]);
  }
}

}  // namespace

std::shared_ptr<const PixelBuffer> make_pixel_buffer(std::vector<uint8_t> bytes) {
  return std::make_shared<VectorBuffer>(std::move(bytes));
}

Dataset::Dataset(int channels, int height, int width) : c_(channels), h_(height), w_(width) {
  MN_CHECK(channels > 0 && height > 0 && width > 0, "Dataset: image shape must be positive, got (",
           channels, ", ", height, ", ", width, ")");
}

Dataset::Dataset(int channels, int height, int width, std::shared_ptr<const PixelBuffer> pixels,
                 std::vector<ClassEntry> classes)
    : Dataset(channels, height, width) {
  MN_CHECK(pixels != nullptr || classes.empty(), "Dataset: classes given without a pixel buffer");
  const int64_t per = image_numel();
  const int64_t total = pixels ? int64_t(pixels->size()) / per : 0;
  for (const auto& e : classes) {
    MN_CHECK(e.count >= 0 && e.first >= 0 && e.first + e.count <= total, "Dataset: class '",
             e.name, "' (images ", e.first, "..", e.first + e.count, ") lies outside the buffer of ",
             total, " images");
    MN_CHECK(e.rotation >= 0 && e.rotation < 4, "Dataset: class '", e.name,
             "' has rotation ", e.rotation, " (expected 0..3 quarter turns)");
    MN_CHECK(e.rotation == 0 || h_ == w_, "Dataset: class '", e.name,
             "' is rotated but images are not square (", h_, "x", w_, ")");
  }
  pixels_ = std::move(pixels);
  classes_ = std::move(classes);
}

void Dataset::add_class(const std::string& name, const uint8_t* pixels, int count) {
  MN_CHECK(c_ > 0, "Dataset::add_class('", name, "'): the dataset has no image shape");
  MN_CHECK(count >= 0, "Dataset::add_class('", name, "'): negative count ", count);
  const size_t bytes = size_t(count) * size_t(image_numel());
  // Append in place when this dataset is the buffer's only owner and owns its
  // memory; otherwise copy (other datasets may share the old buffer).
  std::shared_ptr<const PixelBuffer> buf = pixels_;
  VectorBuffer* vb = nullptr;
  if (buf && buf.use_count() == 2)  // pixels_ + buf
    vb = const_cast<VectorBuffer*>(dynamic_cast<const VectorBuffer*>(buf.get()));
  if (!vb) {
    std::vector<uint8_t> copy;
    if (buf) copy.assign(buf->data(), buf->data() + buf->size());
    auto fresh = std::make_shared<VectorBuffer>(std::move(copy));
    vb = fresh.get();
    buf = fresh;
  }
  const int64_t first = int64_t(vb->bytes.size()) / image_numel();
  vb->bytes.insert(vb->bytes.end(), pixels, pixels + bytes);
  pixels_ = std::move(buf);
  classes_.push_back(ClassEntry{name, first, count, 0});
}

int64_t Dataset::num_images() const {
  int64_t n = 0;
  for (const auto& e : classes_) n += e.count;
  return n;
}

int Dataset::min_class_size() const {
  int m = 0;
  for (size_t i = 0; i < classes_.size(); ++i)
    m = i == 0 ? classes_[i].count : std::min(m, classes_[i].count);
  return m;
}

const ClassEntry& Dataset::entry(int cls) const {
  MN_CHECK(cls >= 0 && cls < num_classes(), "Dataset: class index ", cls, " out of range (",
           num_classes(), " classes)");
  return classes_[cls];
}

int Dataset::find_class(const std::string& name) const {
  for (size_t i = 0; i < classes_.size(); ++i)
    if (classes_[i].name == name) return static_cast<int>(i);
  return -1;
}

const uint8_t* Dataset::stored_image(int cls, int index) const {
  const ClassEntry& e = entry(cls);
  MN_CHECK(index >= 0 && index < e.count, "Dataset: image index ", index, " out of range for class '",
           e.name, "' (", e.count, " images)");
  return pixels_->data() + (e.first + index) * image_numel();
}

void Dataset::read_image(int cls, int index, uint8_t* dst) const {
  read_rotated(stored_image(cls, index), c_, h_, w_, classes_[cls].rotation, dst,
               [](uint8_t v) { return v; });
}

void Dataset::read_image(int cls, int index, float* dst) const {
  read_rotated(stored_image(cls, index), c_, h_, w_, classes_[cls].rotation, dst,
               [](uint8_t v) { return float(v) * kInv255; });
}

void Dataset::images_into(const std::vector<ImageRef>& refs, float* dst) const {
  const int64_t per = image_numel();
  const int64_t n = static_cast<int64_t>(refs.size());
  for (const auto& r : refs) stored_image(r.cls, r.index);  // range checks, outside the parallel loop
#pragma omp parallel for schedule(static) if (n * per > (1 << 17))
  for (int64_t i = 0; i < n; ++i) read_image(refs[i].cls, refs[i].index, dst + i * per);
}

Tensor Dataset::images(const std::vector<ImageRef>& refs, Device device) const {
  Tensor t = Tensor::empty(Shape{int64_t(refs.size()), c_, h_, w_}, DType::F32, Device::CPU);
  images_into(refs, t.data());
  return device == Device::CPU ? t : t.to(device);
}

Tensor Dataset::class_images(int cls, Device device) const {
  std::vector<ImageRef> refs;
  for (int i = 0; i < class_size(cls); ++i) refs.push_back({cls, i});
  return images(refs, device);
}

Dataset Dataset::select_classes(const std::vector<int>& idx) const {
  std::vector<ClassEntry> sel;
  sel.reserve(idx.size());
  for (int i : idx) sel.push_back(entry(i));
  Dataset d(c_, h_, w_, pixels_, std::move(sel));
  d.provenance_ = provenance_;
  return d;
}

Dataset Dataset::split_images(double from, double to) const {
  MN_CHECK(from >= 0.0 && from < to && to <= 1.0, "Dataset::split_images: need 0 <= from < to <= 1, got [",
           from, ", ", to, ")");
  std::vector<ClassEntry> sel;
  sel.reserve(classes_.size());
  for (const ClassEntry& e : classes_) {
    const int lo = static_cast<int>(std::floor(from * e.count)), hi = static_cast<int>(std::floor(to * e.count));
    MN_CHECK(hi > lo, "Dataset::split_images: class '", e.name, "' (", e.count, " images) keeps no image in [",
             from, ", ", to, ")");
    ClassEntry c = e;
    c.first = e.first + lo;
    c.count = hi - lo;
    sel.push_back(std::move(c));
  }
  Dataset d(c_, h_, w_, pixels_, std::move(sel));
  d.provenance_ = provenance_;
  return d;
}

Dataset Dataset::with_rotations(const std::vector<int>& degrees) const {
  MN_CHECK(!degrees.empty(), "Dataset::with_rotations: no angles given");
  std::vector<int> turns;
  for (int d : degrees) {
    MN_CHECK(d % 90 == 0, "Dataset::with_rotations: angle ", d,
             " is not a multiple of 90 degrees");
    turns.push_back(((d / 90) % 4 + 4) % 4);
  }
  std::vector<ClassEntry> out;
  out.reserve(classes_.size() * turns.size());
  for (const auto& e : classes_)
    for (size_t j = 0; j < turns.size(); ++j) {
      ClassEntry r = e;
      r.rotation = (e.rotation + turns[j]) % 4;
      if (turns[j] != 0) r.name += str_cat("/rot", turns[j] == 1 ? "090" : turns[j] == 2 ? "180" : "270");
      out.push_back(std::move(r));
    }
  Dataset d(c_, h_, w_, pixels_, std::move(out));
  d.provenance_ = provenance_;
  return d;
}

Dataset decode_classes(const std::vector<ClassSource>& classes, const DecodeSpec& spec_in) {
  MN_CHECK(!classes.empty(), "decode_classes: no classes to decode");
  MN_CHECK(spec_in.channels == 1 || spec_in.channels == 3, "decode_classes: channels must be 1 or 3, got ",
           spec_in.channels);
  DecodeSpec spec = spec_in;
  // Flatten (class, file) so that OpenMP balances over files, not classes.
  std::vector<const std::string*> files;
  std::vector<ClassEntry> entries;
  for (const auto& c : classes) {
    MN_CHECK(!c.files.empty(), "class '", c.name, "' has no images");
    entries.push_back(ClassEntry{c.name, int64_t(files.size()), int(c.files.size()), 0});
    for (const auto& f : c.files) files.push_back(&f);
  }
  if (spec.height <= 0 || spec.width <= 0) {
    const Image first = decode_image(*files[0], spec.channels);
    spec.height = first.height;
    spec.width = first.width;
  }
  const int64_t per = int64_t(spec.channels) * spec.height * spec.width;
  const int64_t n = static_cast<int64_t>(files.size());
  std::vector<uint8_t> bytes(size_t(n * per));
  const bool keep_size = spec_in.height <= 0 || spec_in.width <= 0;
  std::string error;
  int64_t error_at = n;
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < n; ++i) {
    try {
      if (keep_size) {
        Image img = decode_image(*files[i], spec.channels);
        MN_CHECK(img.width == spec.width && img.height == spec.height, "image '", *files[i], "' is ",
                 img.width, "x", img.height, " but the first image is ", spec.width, "x",
                 spec.height, " (set an image size to resize)");
        if (spec.invert) invert_image(img);
        to_planar(img, bytes.data() + i * per);
      } else {
        load_image_planar(*files[i], spec, bytes.data() + i * per);
      }
    } catch (const std::exception& e) {
#pragma omp critical(metanas_decode_error)
      if (i < error_at) {  // report the first bad file in list order: stable messages
        error_at = i;
        error = e.what();
      }
    }
  }
  if (error_at < n) throw Error(error);
  Dataset d(spec.channels, spec.height, spec.width, make_pixel_buffer(std::move(bytes)),
            std::move(entries));
  d.set_provenance(str_cat("decoded ", n, " images (", spec.str(), ")"));
  return d;
}

std::vector<int> parse_rotations(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MN_CHECK(used == item.size(), "rotations: '", item, "' in '", s, "' is not an integer angle");
    MN_CHECK(v % 90 == 0, "rotations: ", v, " in '", s, "' is not a multiple of 90 degrees");
    out.push_back(v);
  }
  MN_CHECK(!out.empty(), "rotations: no angles in '", s, "'");
  return out;
}

}  // namespace metanas::data
