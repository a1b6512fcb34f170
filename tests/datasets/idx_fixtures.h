// IDX fixtures for the TripleMNIST tests: hand-made 28x28 "digits" whose
// every pixel is non-zero and unique to the image (so a test can find where
// a digit was placed and which one it was), written as plain or gzip IDX
// (gzip with stored deflate blocks, written here without zlib).
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "fixtures.h"

namespace fixtures {

// Pixel (r, c) of hand-made digit image i: 1..255, never 0.
inline uint8_t digit_pixel(int i, int r, int c) { return uint8_t(1 + (i * 11 + r * 3 + c * 5) % 255); }

struct DigitFixture {
  int count = 0;
  std::vector<uint8_t> images;  // count * 28 * 28
  std::vector<uint8_t> labels;
};

// `per_label` images of each digit in `digits`, interleaved (labels 0,1,..,0,1,..).
inline DigitFixture make_digits(const std::vector<int>& digits, int per_label) {
  DigitFixture f;
  for (int k = 0; k < per_label; ++k)
    for (int d : digits) {
      for (int r = 0; r < 28; ++r)
        for (int c = 0; c < 28; ++c) f.images.push_back(digit_pixel(f.count, r, c));
      f.labels.push_back(uint8_t(d));
      ++f.count;
    }
  return f;
}

inline void put_be32(std::vector<uint8_t>& o, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) o.push_back(uint8_t(v >> s));
}

// The bytes of an IDX file of unsigned bytes.
inline std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::vector<uint8_t> o = {0, 0, 0x08, uint8_t(dims.size())};
  for (uint32_t d : dims) put_be32(o, d);
  o.insert(o.end(), values.begin(), values.end());
  return o;
}

// gzip (RFC 1952) around stored deflate blocks.
inline std::vector<uint8_t> gzip_stored(const std::vector<uint8_t>& raw) {
  std::vector<uint8_t> z = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    z.push_back(pos + n >= raw.size() ? 1 : 0);
    z.push_back(uint8_t(n));
    z.push_back(uint8_t(n >> 8));
    z.push_back(uint8_t(~n));
    z.push_back(uint8_t(~n >> 8));
    z.insert(z.end(), raw.begin() + long(pos), raw.begin() + long(pos + n));
    pos += n;
  } while (pos < raw.size());
  const uint32_t crc = crc32(raw.data(), raw.size()) ^ 0xffffffffu, size = uint32_t(raw.size());
  for (int s = 0; s < 32; s += 8) z.push_back(uint8_t(crc >> s));
  for (int s = 0; s < 32; s += 8) z.push_back(uint8_t(size >> s));
  return z;
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), long(b.size()));
}

// Writes <dir>/images.idx[.gz] and <dir>/labels.idx[.gz]; returns {images, labels}.
inline std::pair<std::string, std::string> write_digit_idx(const std::string& dir, const DigitFixture& f, bool gz) {
  auto im = idx_bytes({uint32_t(f.count), 28, 28}, f.images), lb = idx_bytes({uint32_t(f.count)}, f.labels);
  const std::string ext = gz ? ".idx.gz" : ".idx";
  write_bytes(dir + "/images" + ext, gz ? gzip_stored(im) : im);
  write_bytes(dir + "/labels" + ext, gz ? gzip_stored(lb) : lb);
  return {dir + "/images" + ext, dir + "/labels" + ext};
}

}  // namespace fixtures
