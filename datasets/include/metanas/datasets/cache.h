// Packed dataset cache: one binary file per (dataset, split, settings) holding
// a JSON index (classes, source files, key) and the uint8 pixels; later loads
// memory-map it. The key covers the decode settings and every source file's
// path, size and modification time, so a changed source or setting rebuilds.
//
// File layout (little endian):
//   bytes 0..7   magic "MNPACK01"
//   bytes 8..15  uint64 n = length of the JSON index
//   n bytes      JSON index: {"format", "key", "channels", "height", "width",
//                "num_images", "settings", "root", "classes": [{"name", "count",
//                "files": [...]}]}
//   zero padding to a multiple of 64 bytes
//   pixels       num_images * C*H*W bytes, CHW per image, classes in order
#pragma once
#include <string>
#include <vector>

#include "metanas/datasets/dataset.h"
#include "metanas/datasets/image.h"

namespace metanas::data {

struct CacheOptions {
  bool enabled = true;
  // Folder for cache files. Empty: $METANAS_CACHE_DIR, else
  // $XDG_CACHE_HOME/metanas, else $HOME/.cache/metanas, else /tmp/metanas-cache.
  std::string dir;
};
std::string default_cache_dir();

// Writes `ds` (classes as presented, rotations applied) to a pack file, via a
// temporary file and an atomic rename. `files` (optional) lists each class's
// source files for the index. Throws metanas::Error naming the path.
void write_pack(const std::string& path, const Dataset& ds, const std::string& key,
                const std::vector<std::vector<std::string>>& files = {},
                const std::string& settings = "", const std::string& root = "");

// Memory-maps a pack file. When expected_key is not empty the file's key must
// equal it. Throws metanas::Error naming the path and what is wrong.
Dataset read_pack(const std::string& path, const std::string& expected_key = "");

// The key of a pack file ("" when it is missing or unreadable); cheap.
std::string read_pack_key(const std::string& path);

// The cache file and key for a set of classes (stats every source file).
struct CacheEntry {
  std::string path;  // empty when caching is disabled
  std::string key;
};
CacheEntry cache_entry_for(const std::vector<ClassSource>& classes, const DecodeSpec& spec,
                           const CacheOptions& cache, const std::string& cache_name,
                           const std::string& root);

// The loaders' pipeline: memory-map a valid cache file, else decode the
// classes (decode_classes) and write the cache. Failing to write the cache is
// not an error (the data is still returned; provenance() says why). `root`
// makes source paths relative in the index and is part of the key.
Dataset load_classes_cached(const std::vector<ClassSource>& classes, const DecodeSpec& spec,
                            const CacheOptions& cache, const std::string& cache_name,
                            const std::string& root);

}  // namespace metanas::data
