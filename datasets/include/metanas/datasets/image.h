// Image decoding (stb_image: PNG incl. 1-bit, JPEG, BMP, ...), antialiased
// resizing (stb_image_resize) and PNG writing, on 8-bit images.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace metanas::data {

// An 8-bit image as decoded: row-major, channels interleaved (HWC).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels bytes

  uint8_t at(int y, int x, int c = 0) const { return pixels[(size_t(y) * width + x) * channels + c]; }
};

// Resampling filter for resize_image. Triangle (the default) is bilinear
// interpolation whose support widens with the downscale factor, i.e. an
// antialiased bilinear resize: what PIL's BILINEAR resize (torchvision's
// Resize, used by MetaNAS's pipelines) computes.
enum class ResizeFilter : uint8_t { Triangle = 0, Box = 1, CatmullRom = 2, Mitchell = 3 };
const char* resize_filter_name(ResizeFilter f);
ResizeFilter parse_resize_filter(const std::string& s);  // "triangle", "box", "catmullrom", "mitchell"

constexpr int kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;  // 67 megapixels

// Decodes an image file. `channels`: 1 (gray; RGB is converted with stb's
// luma weights), 3 (RGB; gray is replicated) or 0 (as stored). 1-bit and
// paletted PNGs come out as 0/255 values. Throws metanas::Error naming the
// path and the decoder's reason for a missing, corrupt or non-image file.
// Images declaring more than kMaxImageSide pixels per side or kMaxImagePixels
// in all are refused before decoding (a small corrupt file must not make the
// loader allocate gigabytes).
Image decode_image(const std::string& path, int channels);
Image decode_image_memory(const void* data, size_t size, int channels, const std::string& what);

// Antialiased resize (linear space, clamped edges). Same size returns a copy.
Image resize_image(const Image& src, int width, int height,
                   ResizeFilter filter = ResizeFilter::Triangle);

// v -> 255 - v for every sample (ink <-> paper).
void invert_image(Image& img);

// Rotates a square image by quarter_turns * 90 degrees counter-clockwise
// (the direction of numpy.rot90): out(y, x) = in(x, W-1-y) for one turn.
Image rotate_image(const Image& src, int quarter_turns);

// HWC -> CHW: dst receives channels*height*width bytes, plane by plane.
void to_planar(const Image& img, uint8_t* dst);

// What one dataset image is turned into: a (channels, height, width) uint8
// array. height/width 0 keep the stored size.
struct DecodeSpec {
  int channels = 1;
  int height = 0;
  int width = 0;
  bool invert = false;
  ResizeFilter filter = ResizeFilter::Triangle;
  std::string str() const;  // for cache keys and messages
};

// decode -> resize -> invert -> planar. Writes channels*height*width bytes to
// dst (the spec must give a size here). Throws metanas::Error naming the path.
void load_image_planar(const std::string& path, const DecodeSpec& spec, uint8_t* dst);

// Writes a PNG (pixels HWC, 1/2/3/4 channels). Throws metanas::Error naming
// the path when the file cannot be written.
void write_png(const std::string& path, int width, int height, int channels,
               const uint8_t* pixels);
void write_png(const std::string& path, const Image& img);

}  // namespace metanas::data
