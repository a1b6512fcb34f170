// Checkpoint: named tensors plus free-form JSON metadata in one file.
// Format (docs/formats.md): 8-byte magic "MNCKPT01", u32 version, u64 header
// length, u32 CRC32 of the header, JSON header {"version", "metadata", "tensors": [{"name", "dtype",
// "shape", "offset", "nbytes", "crc32"}]}, then raw little-endian data.
// save() writes "<path>.tmp" then renames it over <path>, so a crash never
// leaves a half-written checkpoint in place. load() checks magic, version,
// sizes and checksums and throws metanas::Error naming the file and problem.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "metanas/engine/param_set.h"
#include "metanas/engine/tensor.h"

namespace metanas {

class Checkpoint {
 public:
  static constexpr uint32_t kVersion = 2;  // 2: the header has a CRC32

  // Tensors are copied to the host when put.
  void put(const std::string& name, const Tensor& t);
  void put_params(const std::string& prefix, const ParamSet& ps);  // "<prefix><param name>"
  bool has(const std::string& name) const;
  // Host tensor; throws naming the missing entry.
  const Tensor& get(const std::string& name) const;
  // Copies a stored tensor into `dst` (any device); shape/dtype must match.
  void get_into(const std::string& name, Tensor& dst) const;
  // Loads every parameter of ps from "<prefix><param name>"; a missing name or
  // mismatched shape throws naming both.
  void get_params(const std::string& prefix, ParamSet& ps) const;
  std::vector<std::string> names() const;

  // Free-form metadata as a JSON text (an object). Set/get whole.
  void set_metadata_json(const std::string& json_text);
  const std::string& metadata_json() const { return metadata_; }

  void save(const std::string& path) const;
  static Checkpoint load(const std::string& path);

 private:
  std::map<std::string, Tensor> tensors_;
  std::vector<std::string> order_;
  std::string metadata_ = "{}";
  std::string path_;  // the file it was loaded from, named in lookup errors
};

}  // namespace metanas
