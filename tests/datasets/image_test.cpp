// Image decoding (gray, 1-bit, RGB PNG, JPEG), bad files, antialiased resize
// against a double-precision triangle-filter reference, invert, rotate.
#include "fixtures.h"
// The one stb_image_write implementation of the datasets test binary (after
// fixtures.h, which includes the declarations only).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <catch2/catch.hpp>
#include <cmath>
#include "metanas/datasets/image.h"
#include "metanas/engine/error.h"

using namespace metanas;
using namespace metanas::data;
using fixtures::TempDir;

namespace {

// Separable triangle filter as PIL/stb define it: output pixel centre mapped
// to input coordinates, kernel radius max(1, 1/scale), weights normalised,
// clamped edges.
std::vector<double> resize_axis_weights(int in, int out, int o, std::vector<int>* idx) {
  const double scale = double(out) / in;
  const double support = scale < 1 ? 1.0 / scale : 1.0;
  const double center = (o + 0.5) / scale;
  std::vector<double> w;
  idx->clear();
  double sum = 0;
  for (int i = int(std::floor(center - support - 1)); i <= int(std::ceil(center + support + 1)); ++i) {
    const double d = std::fabs(i + 0.5 - center) / support;
    const double k = std::max(0.0, 1.0 - d);
    if (k <= 0) continue;
    idx->push_back(std::min(in - 1, std::max(0, i)));
    w.push_back(k);
    sum += k;
  }
  for (auto& v : w) v /= sum;
  return w;
}

std::vector<double> reference_resize(const std::vector<uint8_t>& src, int w, int h, int ow, int oh) {
  std::vector<double> tmp(size_t(ow) * h), out(size_t(ow) * oh);
  std::vector<int> idx;
  for (int x = 0; x < ow; ++x) {
    auto wt = resize_axis_weights(w, ow, x, &idx);
    for (int y = 0; y < h; ++y) {
      double s = 0;
      for (size_t k = 0; k < wt.size(); ++k) s += wt[k] * src[size_t(y) * w + idx[k]];
      tmp[size_t(y) * ow + x] = s;
    }
  }
  for (int y = 0; y < oh; ++y) {
    auto wt = resize_axis_weights(h, oh, y, &idx);
    for (int x = 0; x < ow; ++x) {
      double s = 0;
      for (size_t k = 0; k < wt.size(); ++k) s += wt[k] * tmp[size_t(idx[k]) * ow + x];
      out[size_t(y) * ow + x] = s;
    }
  }
  return out;
}

// A smooth-ish test picture with strong edges (Omniglot-like strokes).
Image strokes(int n) {
  Image img;
  img.width = img.height = n;
  img.channels = 1;
  img.pixels.assign(size_t(n) * n, 255);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const bool ring = std::abs(std::hypot(x - n * 0.5, y - n * 0.45) - n * 0.3) < n * 0.04;
      const bool bar = std::abs(x - y * 0.7 - n * 0.1) < n * 0.03;
      if (ring || bar) img.pixels[size_t(y) * n + x] = 0;
    }
  return img;
}

}  // namespace

TEST_CASE("decode: 8-bit gray PNG round trip is exact", "[image]") {
  TempDir tmp;
  const auto px = fixtures::pattern(7, 3, 31, 17);
  fixtures::write_png(tmp / "a.png", px, 31, 17);
  const Image img = decode_image(tmp / "a.png", 1);
  REQUIRE(img.width == 31);
  REQUIRE(img.height == 17);
  REQUIRE(img.channels == 1);
  CHECK(img.pixels == px);
  // channels 0 keeps the stored count
  CHECK(decode_image(tmp / "a.png", 0).channels == 1);
}

TEST_CASE("decode: 1-bit PNG (Omniglot's format) gives 0/255", "[image]") {
  TempDir tmp;
  const int w = 21, h = 11;  // width not a multiple of 8
  std::vector<uint8_t> bits(size_t(w) * h);
  for (int i = 0; i < w * h; ++i) bits[size_t(i)] = ((i * 37) % 11) < 6;
  fixtures::write_png_1bit(tmp / "bits.png", bits, w, h);
  const Image img = decode_image(tmp / "bits.png", 1);
  REQUIRE(img.width == w);
  REQUIRE(img.height == h);
  for (int i = 0; i < w * h; ++i) REQUIRE(int(img.pixels[size_t(i)]) == (bits[size_t(i)] ? 255 : 0));
}

TEST_CASE("decode: RGB PNG as RGB and as gray (stb luma)", "[image]") {
  TempDir tmp;
  const auto px = fixtures::pattern(1, 2, 9, 5, 3);
  fixtures::write_png(tmp / "rgb.png", px, 9, 5, 3);
  const Image rgb = decode_image(tmp / "rgb.png", 3);
  CHECK(rgb.pixels == px);
  const Image gray = decode_image(tmp / "rgb.png", 1);
  REQUIRE(gray.pixels.size() == size_t(45));
  for (size_t i = 0; i < 45; ++i) {
    const int ref = (px[3 * i] * 77 + px[3 * i + 1] * 150 + px[3 * i + 2] * 29) >> 8;
    REQUIRE(int(gray.pixels[i]) == ref);
  }
  // gray -> RGB replicates
  fixtures::write_png(tmp / "g.png", fixtures::pattern(3, 4, 6, 6), 6, 6);
  const Image g3 = decode_image(tmp / "g.png", 3);
  for (size_t i = 0; i < 36; ++i) {
    REQUIRE(g3.pixels[3 * i] == g3.pixels[3 * i + 1]);
    REQUIRE(g3.pixels[3 * i] == g3.pixels[3 * i + 2]);
  }
}

TEST_CASE("decode: JPEG of a solid colour", "[image]") {
  TempDir tmp;
  fixtures::write_jpg(tmp / "c.jpg", fixtures::solid(40, 24, 200, 30, 90), 40, 24);
  const Image img = decode_image(tmp / "c.jpg", 3);
  REQUIRE(img.width == 40);
  REQUIRE(img.height == 24);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    REQUIRE(std::abs(img.pixels[i] - 200) <= 3);
    REQUIRE(std::abs(img.pixels[i + 1] - 30) <= 3);
    REQUIRE(std::abs(img.pixels[i + 2] - 90) <= 3);
  }
}

TEST_CASE("decode: missing, corrupt and non-image files name the path", "[image][errors]") {
  TempDir tmp;
  REQUIRE_THROWS_WITH(decode_image(tmp / "nope.png", 1), Catch::Contains("nope.png"));
  fixtures::write_text(tmp / "notes.txt", "this is not an image\n");
  REQUIRE_THROWS_WITH(decode_image(tmp / "notes.txt", 1),
                      Catch::Contains("notes.txt") && Catch::Contains("cannot decode"));
  // A PNG cut short after its header.
  fixtures::write_png(tmp / "ok.png", fixtures::pattern(1, 1, 30, 30), 30, 30);
  std::ifstream in(tmp / "ok.png", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  fixtures::write_text(tmp / "cut.png", bytes.substr(0, 40));
  REQUIRE_THROWS_WITH(decode_image(tmp / "cut.png", 1), Catch::Contains("cut.png"));
  REQUIRE_THROWS_AS(decode_image(tmp.str(), 1), metanas::Error);  // a folder
}

TEST_CASE("resize: 105 -> 28 and 60 -> 84 match a triangle-filter reference", "[image]") {
  for (auto [n, m] : {std::pair{105, 28}, std::pair{60, 84}, std::pair{84, 84}}) {
    const Image src = strokes(n);
    const Image out = resize_image(src, m, m);
    REQUIRE(out.width == m);
    REQUIRE(out.height == m);
    const auto ref = reference_resize(src.pixels, n, n, m, m);
    double max_err = 0;
    for (size_t i = 0; i < ref.size(); ++i) max_err = std::max(max_err, std::fabs(out.pixels[i] - ref[i]));
    INFO(n << " -> " << m);
    CHECK(max_err <= 1.0);
  }
  // Antialiasing: a 1-pixel checkerboard averages to about mid grey (a
  // point-sampling resize would give pure 0 or 255).
  Image cb;
  cb.width = cb.height = 104;
  cb.channels = 1;
  for (int y = 0; y < 104; ++y)
    for (int x = 0; x < 104; ++x) cb.pixels.push_back(((x + y) & 1) ? 255 : 0);
  const Image small = resize_image(cb, 26, 26);
  for (uint8_t v : small.pixels) REQUIRE(std::abs(int(v) - 128) <= 8);
  // A constant image stays exactly constant.
  Image flat;
  flat.width = 97, flat.height = 61, flat.channels = 3;
  flat.pixels.assign(size_t(97) * 61 * 3, 77);
  for (uint8_t v : resize_image(flat, 84, 84).pixels) REQUIRE(v == 77);
  REQUIRE_THROWS_AS(resize_image(flat, 0, 10), metanas::Error);
}

TEST_CASE("invert, rotate and planar layout", "[image]") {
  Image img;
  img.width = 5, img.height = 5, img.channels = 1;
  img.pixels = fixtures::pattern(9, 9, 5, 5);
  Image inv = img;
  invert_image(inv);
  for (size_t i = 0; i < 25; ++i) REQUIRE(int(inv.pixels[i]) == 255 - img.pixels[i]);

  const Image r1 = rotate_image(img, 1);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) REQUIRE(r1.at(y, x) == img.at(x, 4 - y));  // counter-clockwise
  CHECK(rotate_image(rotate_image(r1, 1), 2).pixels == img.pixels);
  CHECK(rotate_image(img, 3).pixels == rotate_image(rotate_image(r1, 1), 1).pixels);
  CHECK(rotate_image(img, -1).pixels == rotate_image(img, 3).pixels);

  Image rgb;
  rgb.width = 2, rgb.height = 1, rgb.channels = 3;
  rgb.pixels = {1, 2, 3, 4, 5, 6};
  uint8_t planar[6];
  to_planar(rgb, planar);
  CHECK(std::vector<uint8_t>(planar, planar + 6) == std::vector<uint8_t>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("load_image_planar and write_png", "[image]") {
  TempDir tmp;
  const auto px = fixtures::pattern(5, 1, 12, 12, 3);
  data::write_png(tmp / "x.png", 12, 12, 3, px.data());
  DecodeSpec spec;
  spec.channels = 3;
  spec.height = spec.width = 12;
  spec.invert = true;
  std::vector<uint8_t> out(3 * 144);
  load_image_planar(tmp / "x.png", spec, out.data());
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 144; ++p) REQUIRE(int(out[size_t(c) * 144 + p]) == 255 - px[size_t(p) * 3 + c]);
  REQUIRE_THROWS_WITH(data::write_png(tmp / "no/such/dir/x.png", 12, 12, 3, px.data()),
                      Catch::Contains("no/such/dir/x.png"));
  CHECK(parse_resize_filter("mitchell") == ResizeFilter::Mitchell);
  REQUIRE_THROWS_AS(parse_resize_filter("lanczos"), metanas::Error);
}

namespace {
// PNG signature + an IHDR chunk declaring w x h 8-bit gray, + an empty IDAT
// and IEND (stb reads sizes from IHDR; CRCs are not checked by stb).
std::string png_declaring(uint32_t w, uint32_t h) {
  std::string b = "\x89PNG\r\n\x1a\n";
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>((v >> s) & 0xff));
  };
  be32(13);
  b += "IHDR";
  be32(w);
  be32(h);
  b += std::string("\x08\x00\x00\x00\x00", 5);  // depth 8, gray, deflate, filter 0, no interlace
  be32(0);                                       // CRC (unchecked)
  be32(0);
  b += "IDAT";
  be32(0);
  be32(0);
  b += "IEND";
  be32(0);
  return b;
}
}  // namespace

TEST_CASE("images declaring huge sizes are refused before decoding", "[image]") {
  using Catch::Matchers::Contains;
  const std::string side = png_declaring(20000, 10);
  REQUIRE_THROWS_WITH(metanas::data::decode_image_memory(side.data(), side.size(), 1, "wide.png"),
                      Contains("wide.png"));
  const std::string area = png_declaring(9000, 9000);  // 81 MP > 67 MP, each side within 16384
  REQUIRE_THROWS_WITH(metanas::data::decode_image_memory(area.data(), area.size(), 1, "big.png"),
                      Contains("big.png") && Contains("9000x9000") && Contains("beyond the limit"));
  // A small declared size gets through the check to the decoder (which then
  // fails on the empty image data, naming the file).
  const std::string small = png_declaring(4, 4);
  REQUIRE_THROWS_WITH(metanas::data::decode_image_memory(small.data(), small.size(), 1, "small.png"),
                      Contains("small.png") && !Contains("beyond the limit"));
}

TEST_CASE("a JPEG Huffman table with more than 256 codes is refused (fuzz regression)", "[image]") {
  using Catch::Matchers::Contains;
  // Found by tests/fuzz/image_fuzz: stb 2.27 wrote past its code-size table.
  const std::string path =
      std::string(METANAS_SOURCE_DIR) + "/tests/fuzz/regressions/image_fuzz/jpeg-huffman-over-256-codes.jpg";
  REQUIRE_THROWS_WITH(decode_image(path, 1), Contains("Huffman table") && Contains("jpeg-huffman-over-256-codes"));
  REQUIRE_THROWS_WITH(decode_image(path, 3), Contains("Huffman table"));
  // The same with the oversized table running past its segment's length.
  const std::string past =
      std::string(METANAS_SOURCE_DIR) + "/tests/fuzz/regressions/image_fuzz/jpeg-huffman-table-past-segment.jpg";
  REQUIRE_THROWS_WITH(decode_image(past, 1), Contains("Huffman table"));
}
