// TensorBoard event files, written and read without TensorFlow or protobuf.
//
// A file is a sequence of TFRecords:
//   u64 length (little endian) | u32 masked CRC32C of the length bytes |
//   `length` bytes of data     | u32 masked CRC32C of the data
// where masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8. Each record's data
// is one tensorflow.Event protobuf; only the fields TensorBoard needs for
// scalars and images are encoded (field numbers from tensorflow/core/util/
// event.proto and framework/summary.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
//             Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
//   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3;
//             bytes encoded_image_string = 4; }
// The first record is the Event with file_version "brain.Event:2".
#pragma once
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "metanas/engine/error.h"

namespace metanas::cli::tb {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses.
inline uint32_t crc32c(const void* data, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

inline uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// ---- protobuf wire format (only what the messages above need) ----
namespace pb {
inline void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
inline void key(std::string& out, int field, int wire) { varint(out, (uint64_t(field) << 3) | uint64_t(wire)); }
inline void bytes(std::string& out, int field, const std::string& b) {
  key(out, field, 2);
  varint(out, b.size());
  out += b;
}
inline void fixed(std::string& out, const void* p, int n) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>(c[i]));  // little-endian hosts
}
}  // namespace pb

// One decoded Summary.Value (reader side).
struct Value {
  std::string tag;
  std::optional<float> simple_value;
  bool has_image = false;
  int height = 0, width = 0;
  std::string encoded_image;
};

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<Value> values;
};

// Appends events to DIR/events.out.tfevents.<seconds>.<host>.<pid>; every
// record is flushed at once, so TensorBoard sees a run while it goes.
class EventWriter {
 public:
  bool is_open() const { return f_.is_open(); }
  const std::string& path() const { return path_; }

  void open(const std::string& dir, double wall_time) {
    char host[256] = "localhost";
    (void)::gethostname(host, sizeof host - 1);
    path_ = dir + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(wall_time)) + "." + host + "." +
            std::to_string(::getpid());
    f_.open(path_, std::ios::binary | std::ios::trunc);
    MN_CHECK(f_, "cannot create the TensorBoard event file '", path_, "'");
    std::string ev;
    event_header(ev, wall_time, 0);
    pb::bytes(ev, 3, "brain.Event:2");
    record(ev);
  }
  void scalar(const std::string& tag, int64_t step, float value, double wall_time) {
    std::string v;
    pb::bytes(v, 1, tag);
    pb::key(v, 2, 5);
    pb::fixed(v, &value, 4);
    summary(v, step, wall_time);
  }
  // A PNG image (its size is read from the IHDR chunk).
  void png(const std::string& tag, int64_t step, const std::string& png_bytes, double wall_time) {
    MN_CHECK(png_bytes.size() > 24 && png_bytes.compare(1, 3, "PNG") == 0, "TensorBoard image '", tag,
             "': not a PNG");
    auto be32 = [&](size_t at) {
      return uint32_t(uint8_t(png_bytes[at])) << 24 | uint32_t(uint8_t(png_bytes[at + 1])) << 16 |
             uint32_t(uint8_t(png_bytes[at + 2])) << 8 | uint32_t(uint8_t(png_bytes[at + 3]));
    };
    std::string img;
    pb::key(img, 1, 0);
    pb::varint(img, be32(20));  // height
    pb::key(img, 2, 0);
    pb::varint(img, be32(16));  // width
    pb::key(img, 3, 0);
    pb::varint(img, 4);  // RGBA, what Graphviz writes
    pb::bytes(img, 4, png_bytes);
    std::string v;
    pb::bytes(v, 1, tag);
    pb::bytes(v, 4, img);
    summary(v, step, wall_time);
  }

 private:
  static void event_header(std::string& ev, double wall_time, int64_t step) {
    pb::key(ev, 1, 1);
    pb::fixed(ev, &wall_time, 8);
    pb::key(ev, 2, 0);
    pb::varint(ev, static_cast<uint64_t>(step));
  }
  void summary(const std::string& value, int64_t step, double wall_time) {
    std::string s;
    pb::bytes(s, 1, value);
    std::string ev;
    event_header(ev, wall_time, step);
    pb::bytes(ev, 5, s);
    record(ev);
  }
  void record(const std::string& data) {
    if (!f_.is_open()) return;  // not opened (a distributed run's other ranks): nothing is written
    std::string r;
    const uint64_t n = data.size();
    pb::fixed(r, &n, 8);
    const uint32_t lc = masked_crc32c(r.data(), 8);
    pb::fixed(r, &lc, 4);
    r += data;
    const uint32_t dc = masked_crc32c(data.data(), data.size());
    pb::fixed(r, &dc, 4);
    f_.write(r.data(), static_cast<std::streamsize>(r.size()));
    f_.flush();
    MN_CHECK(f_, "writing the TensorBoard event file '", path_, "' failed");
  }

  std::string path_;
  std::ofstream f_;
};

// ---- reader: checks both CRCs of every record and decodes the fields above ----
namespace detail {
struct Cursor {
  const std::string& b;
  size_t at, end;
  const std::string& where;
  bool done() const { return at >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      MN_CHECK(at < end, where, ": truncated varint");
      const uint8_t c = static_cast<uint8_t>(b[at++]);
      v |= uint64_t(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    MN_THROW(where, ": varint longer than 10 bytes");
  }
  std::string take(size_t n) {
    MN_CHECK(n <= end - at, where, ": field of ", n, " bytes runs past its message");
    std::string s = b.substr(at, n);
    at += n;
    return s;
  }
  void skip(int wire) {
    if (wire == 0) varint();
    else if (wire == 1) take(8);
    else if (wire == 5) take(4);
    else if (wire == 2) take(varint());
    else MN_THROW(where, ": unsupported protobuf wire type ", wire);
  }
};
template <typename F>
void fields(const std::string& msg, const std::string& where, F f) {
  Cursor c{msg, 0, msg.size(), where};
  while (!c.done()) {
    const uint64_t k = c.varint();
    f(c, static_cast<int>(k >> 3), static_cast<int>(k & 7));
  }
}
inline Value decode_value(const std::string& m, const std::string& where) {
  Value v;
  fields(m, where, [&](Cursor& c, int field, int wire) {
    if (field == 1 && wire == 2) {
      v.tag = c.take(c.varint());
    } else if (field == 2 && wire == 5) {
      float x;
      std::memcpy(&x, c.take(4).data(), 4);
      v.simple_value = x;
    } else if (field == 4 && wire == 2) {
      v.has_image = true;
      fields(c.take(c.varint()), where, [&](Cursor& ci, int fi, int wi) {
        if (fi == 1 && wi == 0) v.height = static_cast<int>(ci.varint());
        else if (fi == 2 && wi == 0) v.width = static_cast<int>(ci.varint());
        else if (fi == 4 && wi == 2) v.encoded_image = ci.take(ci.varint());
        else ci.skip(wi);
      });
    } else {
      c.skip(wire);
    }
  });
  return v;
}
}  // namespace detail

inline std::vector<Event> read_event_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MN_CHECK(f, "cannot open the event file '", path, "'");
  const std::string b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<Event> out;
  size_t at = 0;
  auto le32 = [&](size_t p) {
    uint32_t v;
    std::memcpy(&v, b.data() + p, 4);
    return v;
  };
  while (at < b.size()) {
    const std::string where = path + ": record " + std::to_string(out.size());
    MN_CHECK(b.size() - at >= 12, where, ": truncated record header");
    uint64_t n;
    std::memcpy(&n, b.data() + at, 8);
    MN_CHECK(le32(at + 8) == masked_crc32c(b.data() + at, 8), where, ": length CRC mismatch");
    MN_CHECK(n <= b.size() - at - 12 && b.size() - at - 12 - n >= 4, where, ": truncated record data");
    const std::string data = b.substr(at + 12, n);
    MN_CHECK(le32(at + 12 + n) == masked_crc32c(data.data(), data.size()), where, ": data CRC mismatch");
    at += 12 + n + 4;
    Event e;
    detail::fields(data, where, [&](detail::Cursor& c, int field, int wire) {
      if (field == 1 && wire == 1) {
        std::memcpy(&e.wall_time, c.take(8).data(), 8);
      } else if (field == 2 && wire == 0) {
        e.step = static_cast<int64_t>(c.varint());
      } else if (field == 3 && wire == 2) {
        e.file_version = c.take(c.varint());
      } else if (field == 5 && wire == 2) {
        detail::fields(c.take(c.varint()), where, [&](detail::Cursor& cs, int fs, int ws) {
          if (fs == 1 && ws == 2)
            e.values.push_back(detail::decode_value(cs.take(cs.varint()), where));
          else
            cs.skip(ws);
        });
      } else {
        c.skip(wire);
      }
    });
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace metanas::cli::tb
