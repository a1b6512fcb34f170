// Checkpoint files: magic + version + JSON header (with its own CRC32) + raw
// little-endian tensor data with a CRC32 per tensor (docs/formats.md). Saving is atomic (write a
// temporary file, fsync, rename); loading validates everything it reads.
#include "metanas/engine/extension.h"
#include "metanas/engine/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "metanas/engine/error.h"

namespace metanas {

namespace {

using nlohmann::json;

constexpr char kMagic[8] = {'M', 'N', 'C', 'K', 'P', 'T', '0', '1'};
// magic, u32 version, u64 header length, u32 CRC32 of the header text. The
// header carries the metadata (configuration, RNG states), so it is covered
// by a checksum like the tensors: an edited header must not load.
constexpr size_t kPreamble = 8 + 4 + 8 + 4;

// ---- CRC32 (IEEE 802.3 / zlib polynomial), slicing-by-8 ----
struct Crc32Table {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Crc32Table() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};

uint32_t load_le32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

uint32_t crc32(const void* data, size_t n) {
  static const Crc32Table tab;
  const auto& t = tab.t;
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (; n >= 8; n -= 8, p += 8) {
    const uint32_t one = load_le32(p) ^ crc, two = load_le32(p + 4);
    crc = t[7][one & 0xff] ^ t[6][(one >> 8) & 0xff] ^ t[5][(one >> 16) & 0xff] ^ t[4][one >> 24] ^
          t[3][two & 0xff] ^ t[2][(two >> 8) & 0xff] ^ t[1][(two >> 16) & 0xff] ^ t[0][two >> 24];
  }
  for (; n; --n) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

bool host_is_little_endian() {
  const uint16_t x = 1;
  unsigned char b;
  std::memcpy(&b, &x, 1);
  return b == 1;
}

// Elements are 4 bytes (float32 / int32); the file stores them little-endian.
void swap_words_if_big_endian(void* p, size_t bytes) {
  if (host_is_little_endian()) return;
  auto* b = static_cast<unsigned char*>(p);
  for (size_t i = 0; i + 4 <= bytes; i += 4) {
    std::swap(b[i], b[i + 3]);
    std::swap(b[i + 1], b[i + 2]);
  }
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

std::string errno_text() { return std::strerror(errno); }

// Writes all of [p, p+n) or throws.
void write_all(int fd, const void* p, size_t n, const std::string& path) {
  const auto* c = static_cast<const char*>(p);
  while (n) {
    const ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) MN_THROW("Checkpoint::save: writing '", path, "' failed: ", errno_text());
    c += w;
    n -= static_cast<size_t>(w);
  }
}

// Reads exactly n bytes at offset, or returns false (short file).
bool read_at(int fd, void* p, size_t n, uint64_t off) {
  auto* c = static_cast<char*>(p);
  while (n) {
    const ssize_t r = ::pread(fd, c, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return true;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

DType parse_dtype(const std::string& s, bool* ok) {
  *ok = true;
  if (s == dtype_name(DType::F32)) return DType::F32;
  if (s == dtype_name(DType::I32)) return DType::I32;
  *ok = false;
  return DType::F32;
}

// Host copy that never aliases t (to() returns t itself when already on the host).
Tensor host_copy(const Tensor& t) { return t.device() == Device::CPU ? t.clone() : t.to(Device::CPU); }

// The bytes of a host tensor (null when empty).
const char* bytes_of(const Tensor& t) {
  return t.numel() ? static_cast<const char*>(t.impl()->storage->ptr) + t.impl()->offset * 4 : nullptr;
}

// CRC32 of a host tensor's bytes as stored in the file (little-endian).
uint32_t crc32_le(const Tensor& t) {
  if (host_is_little_endian()) return crc32(bytes_of(t), t.nbytes());
  std::vector<char> le(bytes_of(t), bytes_of(t) + t.nbytes());
  swap_words_if_big_endian(le.data(), le.size());
  return crc32(le.data(), le.size());
}

}  // namespace

// ---------------------------------------------------------------- entries --

void Checkpoint::put(const std::string& name, const Tensor& t) {
  MN_CHECK(!name.empty(), "Checkpoint::put: empty entry name");
  MN_CHECK(t.defined(), "Checkpoint::put('", name, "'): undefined tensor");
  auto it = tensors_.find(name);
  if (it == tensors_.end()) order_.push_back(name);
  tensors_[name] = host_copy(t);
}

void Checkpoint::put_params(const std::string& prefix, const ParamSet& ps) {
  MN_CHECK(ps.finalized(), "Checkpoint::put_params('", prefix, "'): the parameter set is not finalized");
  // One transfer of the flat buffer, then per-parameter host views of it.
  const Tensor host = host_copy(ps.values());
  for (int i = 0; i < ps.size(); ++i) {
    const std::string name = prefix + ps.name(i);
    if (!tensors_.count(name)) order_.push_back(name);
    tensors_[name] = host.view(ps.offset(i), ps.shape(i));
  }
}

bool Checkpoint::has(const std::string& name) const { return tensors_.count(name) != 0; }

const Tensor& Checkpoint::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it != tensors_.end()) return it->second;
  std::string some;
  for (size_t i = 0; i < order_.size() && i < 10; ++i) some += (i ? ", '" : "'") + order_[i] + "'";
  if (order_.size() > 10) some += ", ...";
  MN_THROW("checkpoint", path_.empty() ? std::string() : " '" + path_ + "'", ": no entry '", name,
           "' (it has ", order_.size(), " entries", order_.empty() ? "" : ": ", some, ")");
}

void Checkpoint::get_into(const std::string& name, Tensor& dst) const {
  const Tensor& src = get(name);
  MN_CHECK(dst.defined(), "Checkpoint::get_into('", name, "'): undefined destination tensor");
  MN_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(), "checkpoint",
           path_.empty() ? std::string() : " '" + path_ + "'", ": entry '", name, "' is ",
           src.describe(), " but the destination is ", dst.describe());
  dst.copy_(src);
}

void Checkpoint::get_params(const std::string& prefix, ParamSet& ps) const {
  MN_CHECK(ps.finalized(), "Checkpoint::get_params('", prefix, "'): the parameter set is not finalized");
  const std::string where = path_.empty() ? "checkpoint" : "checkpoint '" + path_ + "'";
  // Stage everything on the host first: nothing is written unless all entries fit.
  Tensor host = Tensor::empty(Shape{ps.numel()}, DType::F32, Device::CPU);
  for (int i = 0; i < ps.size(); ++i) {
    const std::string name = prefix + ps.name(i);
    auto it = tensors_.find(name);
    MN_CHECK(it != tensors_.end(), where, ": parameter '", ps.name(i), "' ", ps.shape(i).str(),
             " has no entry '", name, "'");
    const Tensor& src = it->second;
    MN_CHECK(src.shape() == ps.shape(i) && src.dtype() == DType::F32, where, ": entry '", name, "' is ",
             src.describe(), " but parameter '", ps.name(i), "' is float32", ps.shape(i).str());
    if (src.numel()) std::memcpy(host.data() + ps.offset(i), src.data(), src.nbytes());
  }
  ps.values().copy_(host);
}

std::vector<std::string> Checkpoint::names() const { return order_; }

void Checkpoint::set_metadata_json(const std::string& json_text) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    MN_THROW("Checkpoint::set_metadata_json: invalid JSON: ", e.what());
  }
  MN_CHECK(j.is_object(), "Checkpoint::set_metadata_json: metadata must be a JSON object, got ",
           j.type_name());
  metadata_ = j.dump();
}

// ------------------------------------------------------------------- save --

void Checkpoint::save(const std::string& path) const {
  MN_CHECK(!path.empty(), "Checkpoint::save: empty path");
  namespace fs = std::filesystem;
  {
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    MN_CHECK(fs::is_directory(dir, ec), "Checkpoint::save('", path, "'): directory '", dir.string(),
             "' does not exist (create it first)");
  }

  // Header: entries in insertion order, packed back to back in the data section.
  json tensors = json::array();
  uint64_t offset = 0;
  std::vector<const Tensor*> payload;
  for (const auto& name : order_) {
    const Tensor& t = tensors_.at(name);
    json e;
    e["name"] = name;
    e["dtype"] = dtype_name(t.dtype());
    e["shape"] = t.shape().dims();
    e["offset"] = offset;
    e["nbytes"] = static_cast<uint64_t>(t.nbytes());
    e["crc32"] = crc32_le(t);
    tensors.push_back(std::move(e));
    payload.push_back(&t);
    offset += t.nbytes();
  }
  json header;
  header["version"] = kVersion;
  header["metadata"] = json::parse(metadata_);
  header["tensors"] = std::move(tensors);
  const std::string htext = header.dump();

  std::string pre(kMagic, 8);
  put_le(pre, kVersion, 4);
  put_le(pre, htext.size(), 8);
  put_le(pre, crc32(htext.data(), htext.size()), 4);

  const std::string tmp = path + ".tmp";
  Fd f;
  f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MN_CHECK(f.fd >= 0, "Checkpoint::save: cannot create '", tmp, "': ", errno_text());
  try {
    write_all(f.fd, pre.data(), pre.size(), tmp);
    write_all(f.fd, htext.data(), htext.size(), tmp);
    for (const Tensor* t : payload) {
      if (!t->numel()) continue;
      const char* src = bytes_of(*t);
      if (host_is_little_endian()) {
        write_all(f.fd, src, t->nbytes(), tmp);
      } else {
        std::vector<char> le(src, src + t->nbytes());
        swap_words_if_big_endian(le.data(), le.size());
        write_all(f.fd, le.data(), le.size(), tmp);
      }
    }
    // The data must be on disk before the rename makes it the checkpoint.
    MN_CHECK(::fsync(f.fd) == 0, "Checkpoint::save: fsync of '", tmp, "' failed: ", errno_text());
    const int fd = f.fd;
    f.fd = -1;
    MN_CHECK(::close(fd) == 0, "Checkpoint::save: closing '", tmp, "' failed: ", errno_text());
    MN_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, "Checkpoint::save: renaming '", tmp, "' to '",
             path, "' failed: ", errno_text());
  } catch (...) {
    ::unlink(tmp.c_str());  // the previous checkpoint at `path` is untouched
    throw;
  }
  // Persist the rename itself (best effort: some file systems refuse fsync on directories).
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  Fd d;
  d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd >= 0) (void)::fsync(d.fd);
}

// ------------------------------------------------------------------- load --

Checkpoint Checkpoint::load(const std::string& path) {
  const std::string where = "checkpoint '" + path + "'";
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  MN_CHECK(f.fd >= 0, where, ": cannot open: ", errno_text());
  struct stat st {};
  MN_CHECK(::fstat(f.fd, &st) == 0, where, ": cannot stat: ", errno_text());
  MN_CHECK(S_ISREG(st.st_mode), where, ": not a regular file");
  const uint64_t fsize = static_cast<uint64_t>(st.st_size);

  unsigned char pre[kPreamble];
  MN_CHECK(fsize >= kPreamble && read_at(f.fd, pre, kPreamble, 0), where, ": file is only ", fsize,
           " bytes, too short for a metanas checkpoint (truncated?)");
  MN_CHECK(std::memcmp(pre, kMagic, 8) == 0, where,
           ": not a metanas checkpoint (bad magic: the file must start with \"MNCKPT01\")");
  const uint64_t version = get_le(pre + 8, 4);
  MN_CHECK(version != 1, where,
           ": format version 1 (written by an older build, before the header had a checksum) is not read "
           "any more; this build reads version ", kVersion);
  MN_CHECK(version == kVersion, where, ": unsupported format version ", version, " (this build reads version ",
           kVersion, ")");
  const uint64_t hlen = get_le(pre + 12, 8);
  MN_CHECK(hlen <= fsize - kPreamble, where, ": truncated: the header needs ", hlen, " bytes but only ",
           fsize - kPreamble, " follow the preamble");
  std::string htext(static_cast<size_t>(hlen), '\0');
  MN_CHECK(read_at(f.fd, htext.data(), htext.size(), kPreamble), where, ": cannot read the header: ",
           errno_text());
  const uint32_t hcrc = crc32(htext.data(), htext.size());
  const uint64_t stored_hcrc = get_le(pre + 20, 4);
  MN_CHECK(hcrc == stored_hcrc, where, ": header is corrupt or was edited (CRC32 ", hcrc, " != stored ",
           stored_hcrc, "); the metadata and tensor table cannot be trusted");
  const uint64_t data_start = kPreamble + hlen;
  const uint64_t data_size = fsize - data_start;

  json header;
  try {
    header = json::parse(htext);
  } catch (const json::exception& e) {
    MN_THROW(where, ": corrupt header (invalid JSON): ", e.what());
  }
  MN_CHECK(header.is_object(), where, ": corrupt header: expected a JSON object, got ", header.type_name());
  MN_CHECK(header.contains("version") && header["version"].is_number_unsigned() &&
               header["version"].get<uint64_t>() == version,
           where, ": corrupt header: \"version\" missing or different from the file's version ", version);
  MN_CHECK(header.contains("metadata") && header["metadata"].is_object(), where,
           ": corrupt header: \"metadata\" must be a JSON object");
  MN_CHECK(header.contains("tensors") && header["tensors"].is_array(), where,
           ": corrupt header: \"tensors\" must be an array");

  Checkpoint ck;
  ck.path_ = path;
  ck.metadata_ = header["metadata"].dump();
  std::set<std::string> seen;
  size_t idx = 0;
  for (const json& e : header["tensors"]) {
    const std::string at = str_cat(where, ": corrupt header: tensor entry ", idx++);
    MN_CHECK(e.is_object() && e.contains("name") && e["name"].is_string(), at, " has no \"name\" string");
    const std::string name = e["name"].get<std::string>();
    const std::string ent = str_cat(where, ": entry '", name, "'");
    MN_CHECK(!name.empty() && seen.insert(name).second, at, ": empty or duplicate name '", name, "'");
    bool ok = false;
    MN_CHECK(e.contains("dtype") && e["dtype"].is_string(), ent, ": no \"dtype\" string");
    const DType dtype = parse_dtype(e["dtype"].get<std::string>(), &ok);
    MN_CHECK(ok, ent, ": unknown dtype '", e["dtype"].get<std::string>(), "' (expected float32 or int32)");
    MN_CHECK(e.contains("shape") && e["shape"].is_array(), ent, ": no \"shape\" array");
    std::vector<int64_t> dims;
    uint64_t numel = 1;
    for (const json& d : e["shape"]) {
      MN_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= (uint64_t(1) << 40), ent,
               ": invalid dimension ", d.dump(), " in shape ", e["shape"].dump());
      const uint64_t v = d.get<uint64_t>();
      MN_CHECK(v == 0 || numel <= (uint64_t(1) << 60) / v, ent, ": shape ", e["shape"].dump(), " is too large");
      numel *= v;
      dims.push_back(static_cast<int64_t>(v));
    }
    for (const char* key : {"offset", "nbytes", "crc32"})
      MN_CHECK(e.contains(key) && e[key].is_number_unsigned(), ent, ": \"", key,
               "\" missing or not a non-negative integer");
    const uint64_t off = e["offset"].get<uint64_t>(), nbytes = e["nbytes"].get<uint64_t>();
    const uint64_t crc = e["crc32"].get<uint64_t>();
    MN_CHECK(nbytes == numel * dtype_size(dtype), ent, ": nbytes ", nbytes, " does not match ",
             dtype_name(dtype), e["shape"].dump(), " (", numel * dtype_size(dtype), " bytes)");
    MN_CHECK(off <= data_size && nbytes <= data_size - off, where, ": truncated: entry '", name,
             "' needs data bytes [", off, ", ", off + nbytes, ") but the data section has only ", data_size,
             " bytes");
    Tensor t = Tensor::empty(Shape(dims), dtype, Device::CPU);
    if (nbytes) {
      void* dst = static_cast<char*>(t.impl()->storage->ptr) + t.impl()->offset * 4;
      MN_CHECK(read_at(f.fd, dst, nbytes, data_start + off), ent, ": read failed: ", errno_text());
      const uint32_t got = crc32(dst, nbytes);
      MN_CHECK(got == crc, ent, ": data is corrupt (CRC32 ", got, " != stored ", crc, ")");
      swap_words_if_big_endian(dst, nbytes);
    } else {
      MN_CHECK(crc32(nullptr, 0) == crc, ent, ": data is corrupt (CRC32 of an empty tensor must be 0)");
    }
    ck.order_.push_back(name);
    ck.tensors_[name] = std::move(t);
  }
  return ck;
}

}  // namespace metanas
