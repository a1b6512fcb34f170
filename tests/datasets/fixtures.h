// Test fixtures for the datasets tests: a self-deleting temporary folder,
// deterministic test images, writers for Omniglot / MiniImageNet / one-shot
// runs layouts (stb_image_write; its implementation is compiled in
// image_test.cpp) and a tiny 1-bit PNG encoder (stb cannot write 1-bit).
#pragma once
#include <stb_image_write.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace fixtures {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("metanas-ds-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }

 private:
  fs::path path_;
};

// Deterministic pseudo-random gray bytes; byte 0 = id, byte 1 = drawer, so
// a test can tell which class and instance an image is.
inline std::vector<uint8_t> pattern(int id, int drawer, int w, int h, int channels = 1) {
  std::vector<uint8_t> px(size_t(w) * h * channels);
  uint32_t s = 2166136261u ^ uint32_t(id * 7919 + drawer * 104729 + 1);
  for (auto& v : px) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    v = uint8_t(s >> 24);
  }
  px[0] = uint8_t(id);
  if (px.size() > 1) px[1] = uint8_t(drawer);
  return px;
}

inline void write_png(const std::string& path, const std::vector<uint8_t>& px, int w, int h,
                      int channels = 1) {
  fs::create_directories(fs::path(path).parent_path());
  if (!stbi_write_png(path.c_str(), w, h, channels, px.data(), w * channels))
    throw std::runtime_error("fixture: cannot write " + path);
}

inline void write_jpg(const std::string& path, const std::vector<uint8_t>& px, int w, int h,
                      int channels = 3) {
  fs::create_directories(fs::path(path).parent_path());
  if (!stbi_write_jpg(path.c_str(), w, h, channels, px.data(), 100))
    throw std::runtime_error("fixture: cannot write " + path);
}

inline void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// ---- minimal PNG encoder for 1-bit grayscale (stored deflate blocks) ----
inline uint32_t crc32(const uint8_t* p, size_t n, uint32_t c = 0xffffffffu) {
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c;
}
inline void put32(std::vector<uint8_t>& o, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) o.push_back(uint8_t(v >> s));
}
inline void chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  put32(out, uint32_t(data.size()));
  std::vector<uint8_t> td(type, type + 4);
  td.insert(td.end(), data.begin(), data.end());
  out.insert(out.end(), td.begin(), td.end());
  put32(out, crc32(td.data(), td.size()) ^ 0xffffffffu);
}
// bits: h*w values, nonzero = white (1).
inline void write_png_1bit(const std::string& path, const std::vector<uint8_t>& bits, int w, int h) {
  std::vector<uint8_t> raw;
  const int row_bytes = (w + 7) / 8;
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (int b = 0; b < row_bytes; ++b) {
      uint8_t v = 0;
      for (int k = 0; k < 8; ++k) {
        const int x = b * 8 + k;
        if (x < w && bits[size_t(y) * w + x]) v |= uint8_t(0x80 >> k);
      }
      raw.push_back(v);
    }
  }
  std::vector<uint8_t> z = {0x78, 0x01};
  for (size_t pos = 0; pos < raw.size() || pos == 0;) {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    z.push_back(pos + n >= raw.size() ? 1 : 0);
    z.push_back(uint8_t(n));
    z.push_back(uint8_t(n >> 8));
    z.push_back(uint8_t(~n));
    z.push_back(uint8_t(~n >> 8));
    z.insert(z.end(), raw.begin() + long(pos), raw.begin() + long(pos + n));
    pos += n;
    if (n == 0) break;
  }
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  put32(z, (b << 16) | a);
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put32(ihdr, uint32_t(w));
  put32(ihdr, uint32_t(h));
  ihdr.insert(ihdr.end(), {1, 0, 0, 0, 0});  // depth 1, grayscale, deflate, no filter, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", {});
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(png.data()), long(png.size()));
}

// ---- Omniglot layout ----
// Writes <root>/<set>/<Alphabet>/characterNN/IIII_DD.png for each alphabet
// (name -> number of characters), `drawers` images each, size x size gray.
// Class ids continue from *next_id (pixel byte 0 holds the id).
inline void write_omniglot_set(const std::string& root, const std::string& set,
                               const std::map<std::string, int>& alphabets, int drawers, int size,
                               int* next_id) {
  for (const auto& [alpha, n] : alphabets)
    for (int c = 1; c <= n; ++c) {
      const int id = (*next_id)++;
      char ch[32], file[32];
      std::snprintf(ch, sizeof ch, "character%02d", c);
      for (int d = 1; d <= drawers; ++d) {
        std::snprintf(file, sizeof file, "%04d_%02d.png", id, d);
        write_png(root + "/" + set + "/" + alpha + "/" + ch + "/" + file, pattern(id, d, size, size),
                  size, size);
      }
    }
}

// Standard small fixture: background = Greek(2) Hebrew(2) Latin(3),
// evaluation = Angelic(2) ULOG(1); 4 drawers; 28x28. Ids: Greek 1-2,
// Hebrew 3-4, Latin 5-7, Angelic 8-9, ULOG 10 (std::map order).
inline void write_small_omniglot(const std::string& root, int size = 28) {
  int id = 1;
  write_omniglot_set(root, "images_background", {{"Greek", 2}, {"Hebrew", 2}, {"Latin", 3}}, 4, size, &id);
  write_omniglot_set(root, "images_evaluation", {{"Angelic", 2}, {"ULOG", 1}}, 4, size, &id);
}

// An RGB image of one constant colour.
inline std::vector<uint8_t> solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (size_t i = 0; i < px.size(); i += 3) {
    px[i] = r;
    px[i + 1] = g;
    px[i + 2] = b;
  }
  return px;
}

}  // namespace fixtures
