// Packed cache files: writing (temp file + rename), memory-mapped reading,
// source fingerprints (path, size, mtime of every file) and the
// decode-or-map pipeline the loaders share.
#include "metanas/datasets/cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "metanas/engine/error.h"

namespace metanas::data {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kMagic[8] = {'M', 'N', 'P', 'A', 'C', 'K', '0', '1'};
constexpr int kFormat = 1;

// 64-bit FNV-1a: not cryptographic, only to notice changes.
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  }
  void str(const std::string& s) {
    const uint64_t n = s.size();
    bytes(&n, sizeof n);
    bytes(s.data(), s.size());
  }
  void u64(uint64_t v) { bytes(&v, sizeof v); }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

std::string relative_to(const std::string& path, const std::string& root) {
  if (root.empty()) return path;
  std::string r = root;
  if (r.back() != '/') r += '/';
  return path.compare(0, r.size(), r) == 0 ? path.substr(r.size()) : path;
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return out.empty() ? "dataset" : out;
}

// A read-only mapping of a whole file; the pixels start at `offset`.
class MappedBuffer final : public PixelBuffer {
 public:
  MappedBuffer(void* base, size_t length, size_t offset)
      : base_(base), length_(length), offset_(offset) {}
  ~MappedBuffer() override { ::munmap(base_, length_); }
  const uint8_t* data() const override { return static_cast<const uint8_t*>(base_) + offset_; }
  size_t size() const override { return length_ - offset_; }

 private:
  void* base_;
  size_t length_;
  size_t offset_;
};

struct Mapping {
  void* base = nullptr;
  size_t length = 0;
};

Mapping map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) MN_THROW("cache file '", path, "': cannot open: ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    MN_THROW("cache file '", path, "': cannot stat: ", std::strerror(e));
  }
  Mapping m;
  m.length = size_t(st.st_size);
  if (m.length < 16) {
    ::close(fd);
    MN_THROW("cache file '", path, "': truncated (", m.length, " bytes)");
  }
  m.base = ::mmap(nullptr, m.length, PROT_READ, MAP_PRIVATE, fd, 0);
  const int e = errno;
  ::close(fd);
  if (m.base == MAP_FAILED) MN_THROW("cache file '", path, "': mmap failed: ", std::strerror(e));
  return m;
}

// Parses the header; returns the JSON index and the pixel offset.
json parse_header(const std::string& path, const uint8_t* p, size_t length, size_t* pixel_offset) {
  MN_CHECK(length >= 16 && std::memcmp(p, kMagic, 8) == 0, "cache file '", path,
           "': not a metanas pack (bad magic)");
  uint64_t n = 0;
  std::memcpy(&n, p + 8, 8);
  MN_CHECK(n <= length - 16, "cache file '", path, "': index length ", n, " exceeds the file (",
           length, " bytes)");
  json index;
  try {
    index = json::parse(p + 16, p + 16 + n);
  } catch (const std::exception& e) {
    MN_THROW("cache file '", path, "': corrupt index: ", e.what());
  }
  *pixel_offset = (16 + n + 63) / 64 * 64;
  return index;
}

}  // namespace

std::string default_cache_dir() {
  if (const char* d = std::getenv("METANAS_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/metanas";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/metanas";
  return "/tmp/metanas-cache";
}

void write_pack(const std::string& path, const Dataset& ds, const std::string& key,
                const std::vector<std::vector<std::string>>& files, const std::string& settings,
                const std::string& root) {
  MN_CHECK(!ds.empty(), "write_pack('", path, "'): the dataset has no classes");
  MN_CHECK(files.empty() || files.size() == size_t(ds.num_classes()), "write_pack('", path,
           "'): ", files.size(), " file lists for ", ds.num_classes(), " classes");
  json index;
  index["format"] = kFormat;
  index["key"] = key;
  index["channels"] = ds.channels();
  index["height"] = ds.height();
  index["width"] = ds.width();
  index["num_images"] = ds.num_images();
  index["settings"] = settings;
  index["root"] = root;
  json classes = json::array();
  for (int c = 0; c < ds.num_classes(); ++c) {
    json jc;
    jc["name"] = ds.class_name(c);
    jc["count"] = ds.class_size(c);
    jc["files"] = files.empty() ? json::array() : json(files[c]);
    classes.push_back(std::move(jc));
  }
  index["classes"] = std::move(classes);
  const std::string text = index.dump();

  const fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    MN_CHECK(!ec, "cannot create cache folder '", target.parent_path().string(), "': ", ec.message());
  }
  const std::string tmp = str_cat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    MN_CHECK(out.good(), "cannot write cache file '", tmp, "': ", std::strerror(errno));
    const uint64_t n = text.size();
    out.write(kMagic, 8);
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), std::streamsize(n));
    const size_t pad = (16 + n + 63) / 64 * 64 - (16 + n);
    const char zeros[64] = {};
    out.write(zeros, std::streamsize(pad));
    std::vector<uint8_t> img(size_t(ds.image_numel()));
    for (int c = 0; c < ds.num_classes(); ++c) {
      if (ds.entry(c).rotation == 0) {  // stored bytes of a class are contiguous
        out.write(reinterpret_cast<const char*>(ds.stored_image(c, 0)),
                  std::streamsize(ds.class_size(c) * ds.image_numel()));
        continue;
      }
      for (int i = 0; i < ds.class_size(c); ++i) {
        ds.read_image(c, i, img.data());
        out.write(reinterpret_cast<const char*>(img.data()), std::streamsize(img.size()));
      }
    }
    out.flush();
    if (!out.good()) {
      std::remove(tmp.c_str());
      MN_THROW("cannot write cache file '", tmp, "' (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    MN_THROW("cannot move cache file into place '", path, "': ", std::strerror(e));
  }
}

Dataset read_pack(const std::string& path, const std::string& expected_key) {
  Mapping m = map_file(path);
  auto unmap_on_error = [&] { ::munmap(m.base, m.length); };
  try {
    size_t offset = 0;
    const json index = parse_header(path, static_cast<const uint8_t*>(m.base), m.length, &offset);
    MN_CHECK(index.value("format", 0) == kFormat, "cache file '", path, "': format ",
             index.value("format", 0), ", expected ", kFormat);
    const std::string key = index.value("key", std::string());
    MN_CHECK(expected_key.empty() || key == expected_key, "cache file '", path,
             "': stale (key ", key, ", expected ", expected_key, ")");
    const int c = index.at("channels").get<int>(), h = index.at("height").get<int>(),
              w = index.at("width").get<int>();
    MN_CHECK(c > 0 && h > 0 && w > 0, "cache file '", path, "': bad image shape");
    std::vector<ClassEntry> entries;
    int64_t first = 0;
    for (const auto& jc : index.at("classes")) {
      ClassEntry e;
      e.name = jc.at("name").get<std::string>();
      e.count = jc.at("count").get<int>();
      e.first = first;
      first += e.count;
      entries.push_back(std::move(e));
    }
    MN_CHECK(first == index.value("num_images", int64_t(-1)), "cache file '", path,
             "': class counts add up to ", first, " images, index says ", index.value("num_images", -1));
    const size_t need = offset + size_t(first) * c * h * w;
    MN_CHECK(m.length == need, "cache file '", path, "': ", m.length, " bytes, expected ", need,
             " (truncated or corrupt)");
    auto buf = std::make_shared<MappedBuffer>(m.base, m.length, offset);
    m.base = nullptr;  // owned by buf now
    Dataset d(c, h, w, std::move(buf), std::move(entries));
    d.set_provenance(str_cat("memory-mapped cache ", path));
    return d;
  } catch (const nlohmann::json::exception& e) {
    if (m.base) unmap_on_error();
    MN_THROW("cache file '", path, "': corrupt index: ", e.what());
  } catch (...) {
    if (m.base) unmap_on_error();
    throw;
  }
}

std::string read_pack_key(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  char head[16];
  if (!in.read(head, 16) || std::memcmp(head, kMagic, 8) != 0) return "";
  uint64_t n = 0;
  std::memcpy(&n, head + 8, 8);
  if (n > (uint64_t(1) << 31)) return "";
  std::string text(n, '\0');
  if (!in.read(text.data(), std::streamsize(n))) return "";
  try {
    return json::parse(text).value("key", std::string());
  } catch (const std::exception&) {
    return "";
  }
}

CacheEntry cache_entry_for(const std::vector<ClassSource>& classes, const DecodeSpec& spec,
                           const CacheOptions& cache, const std::string& cache_name,
                           const std::string& root) {
  CacheEntry out;
  if (!cache.enabled) return out;
  Hasher where;  // names the file: which dataset and settings
  where.str(cache_name);
  where.str(root);
  where.str(spec.str());
  Hasher key = where;  // plus what the sources are now
  key.u64(kFormat);
  for (const auto& c : classes) {
    key.str(c.name);
    key.u64(c.files.size());
    for (const auto& f : c.files) {
      struct stat st;
      if (::stat(f.c_str(), &st) != 0) MN_THROW("cannot read image '", f, "': ", std::strerror(errno));
      key.str(relative_to(f, root));
      key.u64(uint64_t(st.st_size));
      key.u64(uint64_t(st.st_mtim.tv_sec) * 1000000000ull + uint64_t(st.st_mtim.tv_nsec));
    }
  }
  const std::string dir = cache.dir.empty() ? default_cache_dir() : cache.dir;
  out.path = str_cat(dir, "/", sanitize(cache_name), "-", where.hex(), ".mnpack");
  out.key = key.hex();
  return out;
}

Dataset load_classes_cached(const std::vector<ClassSource>& classes, const DecodeSpec& spec,
                            const CacheOptions& cache, const std::string& cache_name,
                            const std::string& root) {
  const CacheEntry ce = cache_entry_for(classes, spec, cache, cache_name, root);
  std::string why;
  std::error_code exists_ec;
  if (!ce.path.empty() && fs::exists(ce.path, exists_ec)) {
    try {
      Dataset d = read_pack(ce.path, ce.key);
      // The index must describe these classes (guards against hash clashes).
      bool same = d.num_classes() == int(classes.size());
      for (int c = 0; same && c < d.num_classes(); ++c)
        same = d.class_name(c) == classes[c].name && d.class_size(c) == int(classes[c].files.size());
      if (same) return d;
      why = "cache index does not match the sources; rebuilt";
    } catch (const Error& e) {
      why = str_cat("rebuilt: ", e.what());
    }
  }
  Dataset d = decode_classes(classes, spec);
  std::string prov = d.provenance();
  if (!ce.path.empty()) {
    try {
      std::vector<std::vector<std::string>> files;
      for (const auto& c : classes) {
        files.emplace_back();
        for (const auto& f : c.files) files.back().push_back(relative_to(f, root));
      }
      write_pack(ce.path, d, ce.key, files, spec.str(), root);
      prov += str_cat("; wrote cache ", ce.path);
    } catch (const Error& e) {
      prov += str_cat("; cache not written: ", e.what());
    }
  } else {
    prov += "; cache disabled";
  }
  if (!why.empty()) prov += str_cat(" (", why, ")");
  d.set_provenance(prov);
  return d;
}

}  // namespace metanas::data
