// Image decoding, resizing and PNG writing on top of stb. The stb
// implementations are compiled here as static functions, so they stay private
// to this library (tests and users can bring their own copies).
#include "metanas/datasets/image.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "metanas/engine/error.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_MAX_DIMENSIONS 16384  // = kMaxImageSide; stb rejects larger sides itself
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace metanas::data {

const char* resize_filter_name(ResizeFilter f) {
  switch (f) {
    case ResizeFilter::Triangle: return "triangle";
    case ResizeFilter::Box: return "box";
    case ResizeFilter::CatmullRom: return "catmullrom";
    case ResizeFilter::Mitchell: return "mitchell";
  }
  return "?";
}

ResizeFilter parse_resize_filter(const std::string& s) {
  if (s == "triangle" || s == "bilinear") return ResizeFilter::Triangle;
  if (s == "box") return ResizeFilter::Box;
  if (s == "catmullrom" || s == "bicubic") return ResizeFilter::CatmullRom;
  if (s == "mitchell") return ResizeFilter::Mitchell;
  MN_THROW("unknown resize filter '", s, "' (expected triangle, box, catmullrom or mitchell)");
}

namespace {
Image from_stb(unsigned char* data, int w, int h, int stored, int channels) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = channels ? channels : stored;
  img.pixels.assign(data, data + size_t(w) * h * img.channels);
  stbi_image_free(data);
  return img;
}

// A few bytes can declare a huge image (a decompression bomb): the header's
// size is checked before anything is decoded.
void check_declared_size(int ok, int w, int h, const std::string& what) {
  if (!ok) return;  // not an image stb knows: the decode below reports why
  MN_CHECK(w > 0 && h > 0 && w <= kMaxImageSide && h <= kMaxImageSide &&
               int64_t(w) * h <= kMaxImagePixels,
           "cannot decode image '", what, "': it declares ", w, "x", h, " pixels, beyond the limit of ",
           kMaxImageSide, " per side and ", kMaxImagePixels, " pixels");
}

// Debian's stb_image 2.27 writes past its 257-entry size table when a JPEG
// Huffman table (DHT segment) declares more than 256 codes (found by
// tests/fuzz/image_fuzz; fixed upstream later). Every DHT segment, before and
// between scans, is checked here first.
void check_jpeg_huffman_tables(const unsigned char* b, size_t n, const std::string& what) {
  if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return;  // not a JPEG
  size_t at = 2;
  while (at + 4 <= n) {
    if (b[at] != 0xFF) {  // entropy-coded data: skip to the next real marker
      ++at;
      continue;
    }
    const unsigned char m = b[at + 1];
    if (m == 0x00 || m == 0xFF || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {  // stuffing, fill, RSTn, TEM
      at += m == 0xFF ? 1 : 2;
      continue;
    }
    if (m == 0xD9) return;  // EOI
    const size_t len = size_t(b[at + 2]) << 8 | b[at + 3];
    if (len < 2) return;
    // A truncated DHT is still read by stb (zeros past the end), so it is
    // checked; other truncated segments make stb fail before any harm.
    if (m != 0xC4 && at + 2 + len > n) return;
    if (m == 0xC4) {
      // As stb reads it: tables follow each other while the declared length
      // is not used up, and the last one may run past the segment (stb then
      // fails, but only after building that table).
      size_t p = at + 4;
      int64_t left = int64_t(len) - 2;
      while (left > 0) {
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += p + i < n ? b[p + i] : 0;  // stb reads 0 past the end
        MN_CHECK(codes <= 256, "cannot decode image '", what, "': corrupt JPEG (a Huffman table declares ",
                 codes, " codes, at most 256 exist)");
        left -= int64_t(17 + codes);
        p += 17 + codes;
      }
      if (left != 0) return;  // stb rejects the segment
    }
    at += 2 + len;
  }
}

void check_channels(int channels, const std::string& what) {
  MN_CHECK(channels >= 0 && channels <= 4, "decode_image(", what, "): channels must be 0..4, got ",
           channels);
}
}  // namespace

Image decode_image(const std::string& path, int channels) {
  check_channels(channels, path);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    MN_THROW("cannot read image '", path, "': ", std::strerror(errno));
  MN_CHECK(S_ISREG(st.st_mode), "cannot read image '", path, "': not a regular file");
  // One decode path for files and memory, so both get the same checks.
  std::ifstream f(path, std::ios::binary);
  MN_CHECK(f, "cannot read image '", path, "': ", std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  MN_CHECK(!f.bad(), "cannot read image '", path, "': read error");
  return decode_image_memory(bytes.data(), bytes.size(), channels, path);
}

Image decode_image_memory(const void* bytes, size_t size, int channels, const std::string& what) {
  check_channels(channels, what);
  MN_CHECK(size <= size_t(INT32_MAX), "cannot decode image '", what, "': too large");
  int w = 0, h = 0, stored = 0;
  check_jpeg_huffman_tables(static_cast<const unsigned char*>(bytes), size, what);
  const int known = stbi_info_from_memory(static_cast<const stbi_uc*>(bytes), int(size), &w, &h, &stored);
  check_declared_size(known, w, h, what);
  unsigned char* data = stbi_load_from_memory(static_cast<const stbi_uc*>(bytes), int(size), &w,
                                              &h, &stored, channels);
  if (!data) MN_THROW("cannot decode image '", what, "': ", stbi_failure_reason(),
                      " (corrupt file or not an image)");
  return from_stb(data, w, h, stored, channels);
}

Image resize_image(const Image& src, int width, int height, ResizeFilter filter) {
  MN_CHECK(width > 0 && height > 0, "resize_image: target size must be positive, got ", width,
           "x", height);
  MN_CHECK(src.width > 0 && src.height > 0 && src.channels > 0, "resize_image: empty image");
  if (width == src.width && height == src.height) return src;
  stbir_filter f = STBIR_FILTER_TRIANGLE;
  switch (filter) {
    case ResizeFilter::Triangle: f = STBIR_FILTER_TRIANGLE; break;
    case ResizeFilter::Box: f = STBIR_FILTER_BOX; break;
    case ResizeFilter::CatmullRom: f = STBIR_FILTER_CATMULLROM; break;
    case ResizeFilter::Mitchell: f = STBIR_FILTER_MITCHELL; break;
  }
  Image out;
  out.width = width;
  out.height = height;
  out.channels = src.channels;
  out.pixels.resize(size_t(width) * height * src.channels);
  const int ok = stbir_resize_uint8_generic(src.pixels.data(), src.width, src.height, 0,
                                            out.pixels.data(), width, height, 0, src.channels,
                                            STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, f,
                                            STBIR_COLORSPACE_LINEAR, nullptr);
  MN_CHECK(ok, "resize_image: stb_image_resize failed for ", src.width, "x", src.height, " -> ",
           width, "x", height);
  return out;
}

void invert_image(Image& img) {
  for (auto& v : img.pixels) v = uint8_t(255 - v);
}

Image rotate_image(const Image& src, int quarter_turns) {
  const int k = ((quarter_turns % 4) + 4) % 4;
  if (k == 0) return src;
  MN_CHECK(src.width == src.height, "rotate_image: rotation by 90 degrees needs a square image, got ",
           src.width, "x", src.height);
  const int n = src.width, c = src.channels;
  Image out = src;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      int sy, sx;
      if (k == 1) { sy = x; sx = n - 1 - y; }
      else if (k == 2) { sy = n - 1 - y; sx = n - 1 - x; }
      else { sy = n - 1 - x; sx = y; }
      std::memcpy(&out.pixels[(size_t(y) * n + x) * c], &src.pixels[(size_t(sy) * n + sx) * c], c);
    }
  return out;
}

void to_planar(const Image& img, uint8_t* dst) {
  const size_t hw = size_t(img.width) * img.height;
  if (img.channels == 1) {
    std::memcpy(dst, img.pixels.data(), hw);
    return;
  }
  for (int ch = 0; ch < img.channels; ++ch)
    for (size_t p = 0; p < hw; ++p) dst[ch * hw + p] = img.pixels[p * img.channels + ch];
}

std::string DecodeSpec::str() const {
  return str_cat("channels=", channels, " size=", height, "x", width, " invert=", invert ? 1 : 0,
                 " filter=", resize_filter_name(filter));
}

void load_image_planar(const std::string& path, const DecodeSpec& spec, uint8_t* dst) {
  MN_CHECK(spec.height > 0 && spec.width > 0, "load_image_planar(", path,
           "): the spec needs a target size");
  Image img = decode_image(path, spec.channels);
  if (img.width != spec.width || img.height != spec.height)
    img = resize_image(img, spec.width, spec.height, spec.filter);
  if (spec.invert) invert_image(img);
  to_planar(img, dst);
}

void write_png(const std::string& path, int width, int height, int channels,
               const uint8_t* pixels) {
  MN_CHECK(width > 0 && height > 0 && channels >= 1 && channels <= 4, "write_png(", path,
           "): bad image ", width, "x", height, "x", channels);
  const int ok = stbi_write_png(path.c_str(), width, height, channels, pixels, width * channels);
  MN_CHECK(ok, "cannot write PNG '", path, "' (missing folder or no permission?)");
}

void write_png(const std::string& path, const Image& img) {
  write_png(path, img.width, img.height, img.channels, img.pixels.data());
}

}  // namespace metanas::data
