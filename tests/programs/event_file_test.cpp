// TensorBoard event files (bin/common/event_file.h): CRC-32C against its
// published check values, and the reader against the writer (scalars, a PNG
// image, corrupted records). tests/programs/tensorboard_test.sh checks the
// writer against TensorBoard's own reader.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "bin/common/event_file.h"

using namespace metanas::cli;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
std::string temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("metanas-tb-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}
std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("CRC-32C matches its check values", "[tensorboard]") {
  REQUIRE(tb::crc32c("123456789", 9) == 0xE3069283u);  // RFC 3720 / the CRC catalogue's check
  const std::string zeros(32, '\0'), ones(32, '\xff');
  REQUIRE(tb::crc32c(zeros.data(), 32) == 0x8A9136AAu);  // RFC 3720 B.4 test vectors
  REQUIRE(tb::crc32c(ones.data(), 32) == 0x62A8AB43u);
  const uint32_t c = tb::crc32c("123456789", 9);
  REQUIRE(tb::masked_crc32c("123456789", 9) == ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST_CASE("event files read back: version record, scalars, images; corruption is detected", "[tensorboard]") {
  const std::string dir = temp_dir();
  // A minimal valid PNG header: signature + IHDR with width 3, height 2.
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\0\0\0\x0dIHDR", 8);
  png += std::string("\0\0\0\x03\0\0\0\x02", 8);
  png += "rest of the file";
  std::string path;
  {
    tb::EventWriter w;
    w.open(dir, 1000.5);
    path = w.path();
    w.scalar("train/loss", 10, 0.25f, 1001.0);
    w.scalar("val/accuracy", 20, -3.5e-7f, 1002.0);
    w.png("genotype", 20, png, 1003.0);
    REQUIRE_THROWS_WITH(w.png("bad", 1, "not a png image at all....", 1.0), Contains("not a PNG"));
  }
  const auto ev = tb::read_event_file(path);
  REQUIRE(ev.size() == 4);
  REQUIRE(ev[0].file_version == "brain.Event:2");
  REQUIRE(ev[0].wall_time == 1000.5);
  REQUIRE(ev[1].step == 10);
  REQUIRE(ev[1].wall_time == 1001.0);
  REQUIRE(ev[1].values.size() == 1);
  REQUIRE(ev[1].values[0].tag == "train/loss");
  REQUIRE(ev[1].values[0].simple_value == 0.25f);
  REQUIRE(ev[2].values[0].simple_value == -3.5e-7f);
  REQUIRE(ev[3].values[0].has_image);
  REQUIRE(ev[3].values[0].width == 3);
  REQUIRE(ev[3].values[0].height == 2);
  REQUIRE(ev[3].values[0].encoded_image == png);

  const std::string bytes = read_all(path);
  // The first record's framing, checked by hand: u64 length, masked CRC of it.
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  uint32_t lc;
  std::memcpy(&lc, bytes.data() + 8, 4);
  REQUIRE(lc == tb::masked_crc32c(bytes.data(), 8));
  REQUIRE(n == (1 + 8) + (1 + 1) + (1 + 1 + 13));  // key + wall_time, key + step 0, key + length + "brain.Event:2"

  for (size_t at : {size_t(3), size_t(20), bytes.size() - 2}) {
    std::string b = bytes;
    b[at] ^= 0x10;
    const std::string bad = dir + "/bad.tfevents";
    std::ofstream(bad, std::ios::binary) << b;
    REQUIRE_THROWS_WITH(tb::read_event_file(bad), Contains("CRC mismatch") || Contains("truncated"));
  }
  const std::string cut = dir + "/cut.tfevents";
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  REQUIRE_THROWS_WITH(tb::read_event_file(cut), Contains("truncated"));
  fs::remove_all(dir);
}
