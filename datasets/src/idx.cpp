// IDX parsing: zlib's gzread reads gzip and plain files alike, so one path
// handles both; every size is checked against the header before use.
#include "metanas/datasets/idx.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "metanas/engine/error.h"

namespace metanas::data {

namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) MN_THROW("cannot read IDX file '", path, "': ", std::strerror(errno));
  MN_CHECK(S_ISREG(st.st_mode), "cannot read IDX file '", path, "': not a regular file");
  gzFile f = gzopen(path.c_str(), "rb");
  MN_CHECK(f != nullptr, "cannot open IDX file '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      MN_THROW("IDX file '", path, "': corrupt gzip data (", msg, ")");
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  int code = 0;
  const std::string msg = gzerror(f, &code);
  gzclose(f);
  // A gzip stream cut short reads as a clean end with Z_BUF_ERROR.
  MN_CHECK(code == Z_OK || code == Z_STREAM_END, "IDX file '", path, "': truncated or corrupt gzip data (", msg, ")");
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  const std::vector<uint8_t> bytes = read_all(path);
  MN_CHECK(bytes.size() >= 4, "IDX file '", path, "': only ", bytes.size(), " bytes, too short for the 4-byte magic");
  MN_CHECK(bytes[0] == 0 && bytes[1] == 0, "IDX file '", path, "': wrong magic (first bytes ", int(bytes[0]), " ",
           int(bytes[1]), ", expected 0 0): not an IDX file");
  const int type = bytes[2], nd = bytes[3];
  MN_CHECK(type == 0x08, "IDX file '", path, "': value type ", type,
           " is not supported (expected 8 = 0x08, unsigned bytes)");
  MN_CHECK(nd >= 1 && nd <= 4, "IDX file '", path, "': ", nd, " dimensions (expected 1 to 4)");
  const size_t header = 4 + 4 * size_t(nd);
  MN_CHECK(bytes.size() >= header, "IDX file '", path, "' is truncated: ", bytes.size(),
           " bytes, the header of ", nd, " dimensions needs ", header);
  IdxArray a;
  uint64_t n = 1;
  for (int d = 0; d < nd; ++d) {
    a.dims.push_back(be32(&bytes[4 + 4 * d]));
    n *= a.dims.back();
    MN_CHECK(n <= (uint64_t(1) << 40), "IDX file '", path, "': dimensions too large");
  }
  const uint64_t have = bytes.size() - header;
  MN_CHECK(have >= n, "IDX file '", path, "' is truncated: its dimensions need ", n, " values, it holds ", have);
  MN_CHECK(have == n, "IDX file '", path, "' has ", have - n, " bytes after the ", n, " values its dimensions give");
  a.values.assign(bytes.begin() + long(header), bytes.end());
  return a;
}

IdxDigits read_idx_digits(const std::string& images, const std::string& labels) {
  IdxArray im = read_idx(images), lb = read_idx(labels);
  MN_CHECK(im.dims.size() == 3, "IDX image file '", images, "' has ", im.dims.size(),
           " dimensions (expected 3: count, rows, columns)");
  MN_CHECK(lb.dims.size() == 1, "IDX label file '", labels, "' has ", lb.dims.size(), " dimensions (expected 1: count)");
  MN_CHECK(im.dims[0] == lb.dims[0], "IDX files disagree: '", images, "' holds ", im.dims[0], " images, '", labels,
           "' ", lb.dims[0], " labels");
  MN_CHECK(im.dims[1] > 0 && im.dims[2] > 0, "IDX image file '", images, "': empty images (", im.dims[1], "x",
           im.dims[2], ")");
  for (size_t i = 0; i < lb.values.size(); ++i)
    MN_CHECK(lb.values[i] <= 9, "IDX label file '", labels, "': label ", int(lb.values[i]), " of item ", i,
             " is not a digit 0..9");
  IdxDigits d;
  d.rows = int(im.dims[1]);
  d.cols = int(im.dims[2]);
  d.pixels = std::move(im.values);
  d.labels = std::move(lb.values);
  return d;
}

void append_digits(IdxDigits& all, const IdxDigits& more, const std::string& what) {
  if (all.labels.empty() && all.rows == 0) {
    all = more;
    return;
  }
  MN_CHECK(all.rows == more.rows && all.cols == more.cols, what, ": images are ", more.rows, "x", more.cols,
           " but the earlier files' are ", all.rows, "x", all.cols);
  all.pixels.insert(all.pixels.end(), more.pixels.begin(), more.pixels.end());
  all.labels.insert(all.labels.end(), more.labels.begin(), more.labels.end());
}

}  // namespace metanas::data
