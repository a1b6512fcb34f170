// Checkpoint files: round trip, the on-disk layout (checked byte by byte with
// an independent CRC32), every corruption the loader must reject with an error
// naming the file and the problem, and the atomic save.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "metanas/engine/checkpoint.h"
#include "metanas/engine/error.h"
#include "metanas/engine/param_set.h"

using namespace metanas;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("metanas_ckpt_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const char* name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

uint64_t le(const std::string& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}

// Bit-at-a-time CRC32 (zlib), independent of the library's table version.
uint32_t ref_crc32(const char* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<unsigned char>(p[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A checkpoint with float32 and int32 tensors, a scalar, an empty tensor and metadata.
Checkpoint sample() {
  Checkpoint ck;
  std::vector<float> w(2 * 3 * 4);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.37f * static_cast<float>(i) - 3.f;
  ck.put("net.w", Tensor::from_vector(w, {2, 3, 4}));
  ck.put("labels", Tensor::from_ints({5, -7, 2147483647, -2147483647 - 1}, {4}));
  ck.put("loss", Tensor::scalar(1.25f));
  ck.put("empty", Tensor::zeros({0, 3}));
  ck.set_metadata_json(R"({"epoch": 7, "name": "run \"a\"", "nested": {"lr": [0.1, 0.01]}})");
  return ck;
}

}  // namespace

TEST_CASE("checkpoint round trip: tensors of both dtypes, shapes and metadata", "[checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("a.ckpt");
  const Checkpoint ck = sample();
  ck.save(path);
  REQUIRE_FALSE(fs::exists(path + ".tmp"));  // renamed into place

  const Checkpoint ld = Checkpoint::load(path);
  REQUIRE(ld.names() == std::vector<std::string>{"net.w", "labels", "loss", "empty"});
  for (const auto& n : ck.names()) {
    INFO(n);
    REQUIRE(ld.get(n).shape() == ck.get(n).shape());
    REQUIRE(ld.get(n).dtype() == ck.get(n).dtype());
    REQUIRE(ld.get(n).device() == Device::CPU);
  }
  REQUIRE(ld.get("net.w").to_vector() == ck.get("net.w").to_vector());
  REQUIRE(ld.get("labels").to_int_vector() == std::vector<int32_t>{5, -7, 2147483647, -2147483647 - 1});
  REQUIRE(ld.get("loss").item() == 1.25f);
  REQUIRE(ld.get("empty").numel() == 0);
  const auto meta = nlohmann::json::parse(ld.metadata_json());
  REQUIRE(meta == nlohmann::json::parse(ck.metadata_json()));
  REQUIRE(meta["epoch"] == 7);
  REQUIRE(meta["name"] == "run \"a\"");
  REQUIRE(meta["nested"]["lr"][1] == 0.01);

  // get_into a destination of the right shape; put() took a copy, not a view.
  Tensor src = Tensor::from_vector({1.f, 2.f}, {2});
  Checkpoint c2;
  c2.put("x", src);
  src.fill_(9.f);
  Tensor dst = Tensor::zeros({2});
  c2.get_into("x", dst);
  REQUIRE(dst.to_vector() == std::vector<float>{1.f, 2.f});
  // put() of an existing name replaces it and keeps its place.
  c2.put("y", Tensor::scalar(1.f));
  c2.put("x", Tensor::scalar(3.f));
  REQUIRE(c2.names() == std::vector<std::string>{"x", "y"});
  REQUIRE(c2.get("x").item() == 3.f);
}

TEST_CASE("checkpoint file layout: magic, version, header length, JSON header, CRC32", "[checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("layout.ckpt");
  sample().save(path);
  const std::string b = read_bytes(path);
  REQUIRE(b.substr(0, 8) == "MNCKPT01");
  REQUIRE(le(b, 8, 4) == 2);
  const uint64_t hlen = le(b, 12, 8);
  const auto header = nlohmann::json::parse(b.substr(24, hlen));
  REQUIRE(header["version"] == 2);
  REQUIRE(header["metadata"]["epoch"] == 7);
  REQUIRE(le(b, 20, 4) == ref_crc32(b.data() + 24, hlen));  // the header's own checksum
  const size_t data = 24 + hlen;
  uint64_t expected_offset = 0;
  for (const auto& e : header["tensors"]) {
    INFO(e.dump());
    const uint64_t off = e["offset"], nbytes = e["nbytes"];
    REQUIRE(off == expected_offset);  // packed in order
    REQUIRE(data + off + nbytes <= b.size());
    REQUIRE(e["crc32"].get<uint32_t>() == ref_crc32(b.data() + data + off, nbytes));
    expected_offset += nbytes;
  }
  REQUIRE(data + expected_offset == b.size());
  const auto& w = header["tensors"][0];
  REQUIRE(w["name"] == "net.w");
  REQUIRE(w["dtype"] == "float32");
  REQUIRE(w["shape"] == nlohmann::json::array({2, 3, 4}));
  REQUIRE(w["nbytes"] == 96);
  float first;
  std::memcpy(&first, b.data() + data, 4);  // little-endian host: raw floats
  REQUIRE(first == -3.f);
  REQUIRE(header["tensors"][1]["dtype"] == "int32");
  REQUIRE(ref_crc32("123456789", 9) == 0xCBF43926u);  // the reference is the standard CRC32
}

TEST_CASE("parameter sets are stored as <prefix><name> and checked on load", "[checkpoint]") {
  TempDir dir;
  ParamSet ps;
  ps.add("conv.w", {2, 2});
  ps.add("fc.b", {3});
  ps.finalize();
  ps.values().copy_(Tensor::from_vector({1, 2, 3, 4, 5, 6, 7}, {7}));
  Checkpoint ck;
  ck.put_params("meta.", ps);
  ck.save(dir.file("p.ckpt"));
  const Checkpoint ld = Checkpoint::load(dir.file("p.ckpt"));
  REQUIRE(ld.names() == std::vector<std::string>{"meta.conv.w", "meta.fc.b"});
  REQUIRE(ld.get("meta.fc.b").to_vector() == std::vector<float>{5, 6, 7});

  ParamSet back = ps.clone();
  back.scale_(0.f);
  ld.get_params("meta.", back);
  REQUIRE(back.values().to_vector() == ps.values().to_vector());

  ParamSet other;
  other.add("conv.w", {2, 2});
  other.add("fc.w", {3});
  other.finalize();
  REQUIRE_THROWS_WITH(ld.get_params("meta.", other),
                      Contains("'fc.w'") && Contains("'meta.fc.w'") && Contains("p.ckpt"));
  for (float x : other.values().to_vector()) REQUIRE(x == 0.f);  // nothing half-written

  ParamSet reshaped;
  reshaped.add("conv.w", {4});
  reshaped.add("fc.b", {3});
  reshaped.finalize();
  REQUIRE_THROWS_WITH(ld.get_params("meta.", reshaped),
                      Contains("'meta.conv.w'") && Contains("[2, 2]") && Contains("[4]"));
}

TEST_CASE("lookups of missing or mismatched entries name the file and the entry", "[checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("look.ckpt");
  sample().save(path);
  const Checkpoint ld = Checkpoint::load(path);
  REQUIRE(ld.has("loss"));
  REQUIRE_FALSE(ld.has("nope"));
  REQUIRE_THROWS_WITH(ld.get("nope"), Contains("'nope'") && Contains(path) && Contains("net.w"));
  Tensor wrong = Tensor::zeros({3, 2, 4});
  REQUIRE_THROWS_WITH(ld.get_into("net.w", wrong), Contains("'net.w'") && Contains("[2, 3, 4]") &&
                                                       Contains("[3, 2, 4]") && Contains(path));
  Tensor wrong_type = Tensor::zeros({4});
  REQUIRE_THROWS_WITH(ld.get_into("labels", wrong_type), Contains("int32") && Contains("float32"));
}

TEST_CASE("corrupt checkpoint files are rejected with the file and the problem", "[checkpoint]") {
  TempDir dir;
  const std::string good = dir.file("good.ckpt");
  sample().save(good);
  const std::string bytes = read_bytes(good);
  const uint64_t hlen = le(bytes, 12, 8);
  const std::string bad = dir.file("bad.ckpt");
  auto load_bad = [&](const std::string& b) {
    write_bytes(bad, b);
    return Checkpoint::load(bad);
  };

  SECTION("truncated data") {
    REQUIRE_THROWS_WITH(load_bad(bytes.substr(0, bytes.size() - 3)),
                        Contains("truncated") && Contains(bad) && Contains("'loss'"));
  }
  SECTION("truncated header") {
    REQUIRE_THROWS_WITH(load_bad(bytes.substr(0, 24 + hlen / 2)), Contains("truncated") && Contains(bad));
  }
  SECTION("truncated preamble") {
    REQUIRE_THROWS_WITH(load_bad(bytes.substr(0, 11)), Contains("too short") && Contains(bad));
  }
  SECTION("flipped data byte fails the CRC") {
    std::string b = bytes;
    b[24 + hlen + 10] ^= 0x01;  // inside net.w
    REQUIRE_THROWS_WITH(load_bad(b), Contains("corrupt") && Contains("CRC32") && Contains("'net.w'") &&
                                         Contains(bad));
  }
  SECTION("bad magic") {
    std::string b = bytes;
    b[0] = 'X';
    REQUIRE_THROWS_WITH(load_bad(b), Contains("magic") && Contains(bad));
    REQUIRE_THROWS_WITH(load_bad(std::string(64, '\0')), Contains("magic"));
  }
  SECTION("wrong version") {
    std::string b = bytes;
    b[8] = 3;
    REQUIRE_THROWS_WITH(load_bad(b), Contains("version 3") && Contains(bad));
    b[8] = 1;
    REQUIRE_THROWS_WITH(load_bad(b), Contains("version 1") && Contains("older build") && Contains(bad));
  }
  // A header with a valid checksum (what a writer would produce) around text h.
  auto with_header = [&](const std::string& h) {
    std::string b = bytes.substr(0, 12);
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((h.size() >> (8 * i)) & 0xff));
    const uint32_t c = ref_crc32(h.data(), h.size());
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((c >> (8 * i)) & 0xff));
    return b + h;
  };
  SECTION("garbage header") {
    std::string h = bytes.substr(24, hlen);
    for (int i = 0; i < 12; ++i) h[i] = '#';
    REQUIRE_THROWS_WITH(load_bad(with_header(h) + bytes.substr(24 + hlen)),
                        Contains("corrupt header") && Contains("JSON") && Contains(bad));
  }
  SECTION("an edited header (same length, valid JSON) fails the header CRC") {
    std::string b = bytes;
    const size_t at = b.find("\"epoch\":7");
    REQUIRE(at != std::string::npos);
    b[at + 8] = '8';  // "epoch": 8 -- still valid JSON, tensors untouched
    REQUIRE(nlohmann::json::parse(b.substr(24, hlen))["metadata"]["epoch"] == 8);
    REQUIRE_THROWS_WITH(load_bad(b), Contains("header") && Contains("edited") && Contains(bad));
  }
  SECTION("well-formed JSON with a broken schema") {
    REQUIRE_THROWS_WITH(load_bad(with_header("[1, 2]")), Contains("JSON object"));
    REQUIRE_THROWS_WITH(load_bad(with_header(R"({"version": 2, "metadata": [], "tensors": []})")),
                        Contains("metadata") && Contains("object"));
    REQUIRE_THROWS_WITH(load_bad(with_header(R"({"version": 2, "metadata": {}})")), Contains("tensors"));
    REQUIRE_THROWS_WITH(
        load_bad(with_header(
            R"({"version": 2, "metadata": {}, "tensors": [{"name": "x", "dtype": "float64", "shape": [1], "offset": 0, "nbytes": 8, "crc32": 0}]})")),
        Contains("'x'") && Contains("float64"));
    REQUIRE_THROWS_WITH(
        load_bad(with_header(
            R"({"version": 2, "metadata": {}, "tensors": [{"name": "x", "dtype": "float32", "shape": [3], "offset": 0, "nbytes": 8, "crc32": 0}]})")),
        Contains("'x'") && Contains("nbytes"));
    REQUIRE_THROWS_WITH(
        load_bad(with_header(
            R"({"version": 2, "metadata": {}, "tensors": [{"name": "x", "dtype": "float32", "shape": [2], "offset": 0, "nbytes": 8, "crc32": 0}]})")),
        Contains("truncated") && Contains("'x'"));
    // An empty checkpoint is valid.
    REQUIRE(load_bad(with_header(R"({"version": 2, "metadata": {"k": 1}, "tensors": []})")).names().empty());
  }
  SECTION("missing file") {
    REQUIRE_THROWS_WITH(Checkpoint::load(dir.file("absent.ckpt")), Contains("absent.ckpt") && Contains("open"));
  }
}

TEST_CASE("metadata must be a JSON object", "[checkpoint]") {
  Checkpoint ck;
  REQUIRE(nlohmann::json::parse(ck.metadata_json()).is_object());
  REQUIRE_THROWS_WITH(ck.set_metadata_json("[1, 2]"), Contains("JSON object") && Contains("array"));
  REQUIRE_THROWS_WITH(ck.set_metadata_json("{\"a\": "), Contains("invalid JSON"));
  REQUIRE_THROWS_WITH(ck.set_metadata_json("42"), Contains("JSON object"));
  ck.set_metadata_json(R"({"ok": true})");
  REQUIRE(nlohmann::json::parse(ck.metadata_json())["ok"] == true);
}

TEST_CASE("a failed save leaves the previous checkpoint intact", "[checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("keep.ckpt");
  Checkpoint v1;
  v1.put("x", Tensor::from_vector({1.f, 2.f, 3.f}, {3}));
  v1.save(path);
  const std::string before = read_bytes(path);

  // The temporary file cannot be created (a directory is in the way).
  fs::create_directory(path + ".tmp");
  Checkpoint v2;
  v2.put("x", Tensor::from_vector({9.f, 9.f, 9.f}, {3}));
  REQUIRE_THROWS_WITH(v2.save(path), Contains(path + ".tmp"));
  REQUIRE(read_bytes(path) == before);
  REQUIRE(Checkpoint::load(path).get("x").to_vector() == std::vector<float>{1.f, 2.f, 3.f});
  fs::remove(path + ".tmp");

  // A missing target directory is a clear error and creates nothing.
  const std::string missing = (dir.path / "no_such_dir" / "a.ckpt").string();
  REQUIRE_THROWS_WITH(v2.save(missing), Contains("no_such_dir") && Contains("does not exist"));
  REQUIRE_FALSE(fs::exists(dir.path / "no_such_dir"));

  // Overwriting works and replaces the contents.
  v2.save(path);
  REQUIRE(Checkpoint::load(path).get("x").to_vector() == std::vector<float>{9.f, 9.f, 9.f});
}
