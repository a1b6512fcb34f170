// ProgramConfig: what meta-train and meta-test read from a JSON file. It is
// the library's MetaConfig (top-level keys algorithm, seed, model, episodes,
// task, meta, eval) plus two sections of the programs' own: "data" (which
// dataset and how to load it) and "run" (device, threads, logging,
// validation, checkpoint intervals). Unknown keys anywhere are an error that
// names the key; command-line overrides address any key by its dotted path
// ("task.darts.w_lr"), typed by the key's current value.
#pragma once
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "metanas/datasets/dataset.h"
#include "metanas/engine/error.h"
#include "metanas/meta/config.h"

namespace metanas::cli {

using nlohmann::json;

struct DataSection {
  std::string dataset = "synthetic";  // synthetic | omniglot | miniimagenet | triplemnist
  std::string root;                   // dataset folder (not used by synthetic)
  int image_size = -1;                // -1: the dataset's default (28; MiniImageNet 84); 0: stored size
  bool invert = false;                // ink 1.0 on paper 0.0 (Omniglot/synthetic default: paper 1.0)
  std::vector<int> train_rotations = {0};  // class augmentation of the meta-training split
  std::vector<int> eval_rotations = {0};   // ... of the validation and test splits
  // Omniglot: "background", "background-holdout", "vinyals" or a split file.
  // TripleMNIST: "folders", "torchmeta" or a split file ("background", the
  // default, reads as "folders").
  std::string scheme = "background";
  std::string background_dir = "images_background";  // Omniglot folder names under root
  std::string evaluation_dir = "images_evaluation";
  std::string layout = "auto";  // MiniImageNet: auto | csv | folders
  bool cache = true;            // packed decoded-pixel cache (docs/datasets.md)
  std::string cache_dir;        // empty: $METANAS_CACHE_DIR or ~/.cache/metanas
  // The synthetic handwriting generator (its image size is image_size).
  int synthetic_alphabets = 50;
  int synthetic_classes_per_alphabet = 30;
  int synthetic_drawers = 20;
  uint64_t synthetic_seed = 0;
};

struct RunSection {
  std::string device = "cpu";  // cpu | cuda (falls back to cpu with a notice)
  int threads = 0;             // OpenMP/BLAS threads; 0 = OMP_NUM_THREADS or all cores
  int64_t log_every = 10;      // progress line + metrics record every N iterations
  int64_t val_every = 1000;    // validation every N iterations (0 = never)
  int val_tasks = 100;         // tasks per validation (the same tasks every time)
  std::string val_split = "val";
  int64_t checkpoint_every = 500;  // 0 = only at the end (and when interrupted)
  // Distributed runs (docs/distributed.md): "ordered" gathers every task's
  // contribution and sums in task order (bitwise the single-process run for
  // any number of ranks); "allreduce" sums per rank, then all-reduces (faster,
  // not bitwise).
  std::string dist_reduce = "ordered";
  // Execution only (meta::ExecutionOptions; the results do not change):
  // per-task backend streams in the task-parallel meta-step, and CUDA-graph
  // capture of the inner steps (off until verified on hardware).
  bool task_streams = false;
  bool cuda_graphs = false;
};

namespace detail {

// Reads one JSON object, rejecting keys outside `known` (errors name the key
// path and list the valid keys).
class StrictObject {
 public:
  StrictObject(const json& j, std::string path, std::vector<std::string> known)
      : j_(j), path_(std::move(path)), known_(std::move(known)) {
    MN_CHECK(j_.is_object(), "configuration: '", path_, "' must be a JSON object, got ", j_.type_name());
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (std::find(known_.begin(), known_.end(), it.key()) == known_.end()) {
        std::string list;
        for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
        MN_THROW("configuration: unknown key '", path_, ".", it.key(), "' (valid keys in '", path_, "': ", list,
                 ")");
      }
    }
  }
  template <typename T>
  void read(const char* k, T& out) const {
    if (!j_.contains(k)) return;
    const json& v = j_.at(k);
    const std::string where = path_ + "." + k;
    if constexpr (std::is_same_v<T, bool>) {
      MN_CHECK(v.is_boolean(), "configuration: '", where, "' expects true/false, got ", v.dump());
    } else if constexpr (std::is_integral_v<T>) {
      MN_CHECK(v.is_number_integer(), "configuration: '", where, "' expects an integer, got ", v.dump());
      if constexpr (std::is_unsigned_v<T>)
        MN_CHECK(v.get<int64_t>() >= 0, "configuration: '", where, "' expects a non-negative integer, got ",
                 v.dump());
    } else {
      MN_CHECK(v.is_string(), "configuration: '", where, "' expects a string, got ", v.dump());
    }
    out = v.get<T>();
  }
  // A list of angles: a JSON array of integers or a string "0,90,180,270".
  void read_rotations(const char* k, std::vector<int>& out) const {
    if (!j_.contains(k)) return;
    const json& v = j_.at(k);
    const std::string where = path_ + "." + k;
    try {
      if (v.is_string()) {
        out = data::parse_rotations(v.get<std::string>());
      } else {
        MN_CHECK(v.is_array() && !v.empty(), "expects a non-empty array of angles, got ", v.dump());
        std::vector<int> r;
        for (const auto& e : v) {
          MN_CHECK(e.is_number_integer() && e.get<int>() % 90 == 0,
                   "angles must be integer multiples of 90, got ", e.dump());
          r.push_back(e.get<int>());
        }
        out = r;
      }
    } catch (const Error& e) {
      MN_THROW("configuration: '", where, "' ", e.what());
    }
  }

 private:
  const json& j_;
  std::string path_;
  std::vector<std::string> known_;
};

}  // namespace detail

inline json data_to_json(const DataSection& d) {
  return {{"dataset", d.dataset},
          {"root", d.root},
          {"image_size", d.image_size},
          {"invert", d.invert},
          {"train_rotations", d.train_rotations},
          {"eval_rotations", d.eval_rotations},
          {"scheme", d.scheme},
          {"background_dir", d.background_dir},
          {"evaluation_dir", d.evaluation_dir},
          {"layout", d.layout},
          {"cache", d.cache},
          {"cache_dir", d.cache_dir},
          {"synthetic_alphabets", d.synthetic_alphabets},
          {"synthetic_classes_per_alphabet", d.synthetic_classes_per_alphabet},
          {"synthetic_drawers", d.synthetic_drawers},
          {"synthetic_seed", d.synthetic_seed}};
}

inline json run_to_json(const RunSection& r) {
  return {{"device", r.device},           {"threads", r.threads},     {"log_every", r.log_every},
          {"val_every", r.val_every},     {"val_tasks", r.val_tasks}, {"val_split", r.val_split},
          {"checkpoint_every", r.checkpoint_every}, {"dist_reduce", r.dist_reduce},
          {"task_streams", r.task_streams},         {"cuda_graphs", r.cuda_graphs}};
}

inline void apply_data(DataSection& d, const json& j) {
  std::vector<std::string> keys;
  const json known = data_to_json(d);
  for (auto it = known.begin(); it != known.end(); ++it) keys.push_back(it.key());
  detail::StrictObject s(j, "data", keys);
  s.read("dataset", d.dataset);
  s.read("root", d.root);
  s.read("image_size", d.image_size);
  s.read("invert", d.invert);
  s.read_rotations("train_rotations", d.train_rotations);
  s.read_rotations("eval_rotations", d.eval_rotations);
  s.read("scheme", d.scheme);
  s.read("background_dir", d.background_dir);
  s.read("evaluation_dir", d.evaluation_dir);
  s.read("layout", d.layout);
  s.read("cache", d.cache);
  s.read("cache_dir", d.cache_dir);
  s.read("synthetic_alphabets", d.synthetic_alphabets);
  s.read("synthetic_classes_per_alphabet", d.synthetic_classes_per_alphabet);
  s.read("synthetic_drawers", d.synthetic_drawers);
  s.read("synthetic_seed", d.synthetic_seed);
  // Canonical dataset names, so that config.json is unambiguous.
  if (d.dataset == "mini-imagenet" || d.dataset == "mini_imagenet") d.dataset = "miniimagenet";
  if (d.dataset == "triple-mnist" || d.dataset == "triple_mnist") d.dataset = "triplemnist";
  MN_CHECK(d.dataset == "synthetic" || d.dataset == "omniglot" || d.dataset == "miniimagenet" ||
               d.dataset == "triplemnist",
           "configuration: unknown data.dataset '", d.dataset,
           "' (valid: synthetic, omniglot, miniimagenet, triplemnist)");
  MN_CHECK(d.image_size >= -1, "configuration: data.image_size must be -1 (default), 0 (stored) or a size");
  MN_CHECK(d.layout == "auto" || d.layout == "csv" || d.layout == "folders",
           "configuration: data.layout must be auto, csv or folders, got '", d.layout, "'");
  MN_CHECK(d.synthetic_alphabets >= 3 && d.synthetic_classes_per_alphabet >= 1 && d.synthetic_drawers >= 1,
           "configuration: data.synthetic_alphabets must be >= 3 and the class/drawer counts >= 1");
}

inline void apply_run(RunSection& r, const json& j) {
  detail::StrictObject s(j, "run",
                         {"device", "threads", "log_every", "val_every", "val_tasks", "val_split",
                          "checkpoint_every", "dist_reduce", "task_streams", "cuda_graphs"});
  s.read("device", r.device);
  s.read("threads", r.threads);
  s.read("log_every", r.log_every);
  s.read("val_every", r.val_every);
  s.read("val_tasks", r.val_tasks);
  s.read("val_split", r.val_split);
  s.read("checkpoint_every", r.checkpoint_every);
  s.read("dist_reduce", r.dist_reduce);
  s.read("task_streams", r.task_streams);
  s.read("cuda_graphs", r.cuda_graphs);
  MN_CHECK(r.dist_reduce == "ordered" || r.dist_reduce == "allreduce",
           "configuration: run.dist_reduce must be ordered or allreduce, got '", r.dist_reduce, "'");
  parse_device(r.device);  // throws for an unknown device name
  MN_CHECK(r.threads >= 0, "configuration: run.threads must be >= 0 (0 = default)");
  MN_CHECK(r.log_every >= 1, "configuration: run.log_every must be >= 1");
  MN_CHECK(r.val_every >= 0, "configuration: run.val_every must be >= 0 (0 = never)");
  MN_CHECK(r.val_tasks >= 1, "configuration: run.val_tasks must be >= 1");
  MN_CHECK(r.checkpoint_every >= 0, "configuration: run.checkpoint_every must be >= 0");
}

struct ProgramConfig {
  meta::MetaConfig meta;
  DataSection data;
  RunSection run;

  json to_json() const {
    json j = json::parse(meta.to_json());
    j["data"] = data_to_json(data);
    j["run"] = run_to_json(run);
    return j;
  }
  std::string to_text() const { return to_json().dump(2); }

  // Applies a partial configuration (a JSON object) on top of this one. All
  // or nothing: on error this object is unchanged.
  void merge(const json& patch) {
    MN_CHECK(patch.is_object(), "configuration: the top level must be a JSON object, got ", patch.type_name());
    ProgramConfig c = *this;
    json meta_part = json::object();
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      if (it.key() == "data")
        apply_data(c.data, it.value());
      else if (it.key() == "run")
        apply_run(c.run, it.value());
      else
        meta_part[it.key()] = it.value();
    }
    try {
      c.meta.merge_json(meta_part.dump());
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.find("unknown key") != std::string::npos && msg.find("(top level)") == std::string::npos &&
          msg.find("valid keys:") != std::string::npos)
        msg += " (the programs also read the sections 'data' and 'run')";
      throw Error(msg);
    }
    *this = c;
  }

  // The JSON text of a configuration file; a directory, an unreadable file or
  // invalid JSON is a usage error naming the file.
  static json read_json_file(const std::string& path) {
    std::error_code ec;
    MN_USAGE_CHECK(!std::filesystem::is_directory(path, ec), "configuration file '", path,
                   "' is a directory; --config expects a JSON file (presets in configs/)");
    std::ifstream f(path);
    MN_USAGE_CHECK(f, "cannot open configuration file '", path, "': ", std::strerror(errno));
    std::stringstream ss;
    ss << f.rdbuf();
    try {
      return json::parse(ss.str());
    } catch (const std::exception& e) {
      throw UsageError(str_cat(path, ": invalid JSON: ", e.what()));
    }
  }

  static ProgramConfig from_file(const std::string& path) {
    const json j = read_json_file(path);
    ProgramConfig c;
    try {
      c.merge(j);
    } catch (const Error& e) {
      throw UsageError(str_cat(path, ": ", e.what()));
    }
    return c;
  }

  // Writes the resolved configuration (via a temporary file and a rename).
  void save(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      MN_CHECK(f, "cannot write '", tmp, "'");
      f << to_text() << "\n";
      f.close();
      MN_CHECK(f, "writing '", tmp, "' failed");
    }
    MN_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path, "'");
  }
};

// Every configuration key as (dotted path, default value), depth first, in
// the order of the JSON form. Objects that are values of their own (none
// today besides the genotype, which is null by default) appear as one key.
inline void list_keys(const json& j, const std::string& prefix,
                      std::vector<std::pair<std::string, json>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it.value().is_object() && key != "model.genotype")
      list_keys(it.value(), key, out);
    else
      out.emplace_back(key, it.value());
  }
}

inline std::vector<std::pair<std::string, json>> all_keys(const ProgramConfig& c = ProgramConfig{}) {
  std::vector<std::pair<std::string, json>> out;
  list_keys(c.to_json(), "", out);
  return out;
}

// Collects command-line overrides into one JSON patch (so that keys that
// must change together, e.g. episodes.ways and the model's classes, are
// validated together). Each value is typed by the key's current value in
// `base`: strings are taken verbatim, everything else is parsed as JSON (a
// value that is not JSON is taken as a string where the key allows one).
class OverrideSet {
 public:
  explicit OverrideSet(const ProgramConfig& base) : base_(base.to_json()) {}

  void set(const std::string& dotted, const std::string& raw, const std::string& origin = "") {
    const std::string key = ArgParser::normalize_key(dotted);
    const json* cur = &base_;
    json* dst = &patch_;
    std::string path;
    size_t start = 0;
    while (true) {
      const size_t dot = key.find('.', start);
      const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      MN_USAGE_CHECK(!part.empty(), "bad configuration key '", dotted, "'");
      const std::string parent = path;
      path = path.empty() ? part : path + "." + part;
      if (!cur->is_object() || !cur->contains(part)) unknown(dotted, parent, *cur, origin);
      cur = &cur->at(part);
      if (dot == std::string::npos) break;
      if (!cur->is_object()) {
        throw UsageError(str_cat("configuration key '", dotted, "': '", path, "' is not a section"));
      }
      if (!dst->contains(part) || !(*dst)[part].is_object()) (*dst)[part] = json::object();
      dst = &(*dst)[part];
      start = dot + 1;
    }
    const std::string last = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
    (*dst)[last] = typed(*cur, raw, key);
    set_keys_.push_back(key);
  }

  const json& patch() const { return patch_; }
  bool empty() const { return patch_.empty(); }
  const std::vector<std::string>& keys() const { return set_keys_; }
  bool touches(const std::string& prefix) const {
    for (const auto& k : set_keys_)
      if (k == prefix || k.rfind(prefix + ".", 0) == 0) return true;
    return false;
  }

 private:
  static json typed(const json& current, const std::string& raw, const std::string& key) {
    if (current.is_string()) return raw;
    try {
      return json::parse(raw);
    } catch (const json::out_of_range&) {
      throw UsageError(str_cat("configuration key '", key, "': the number '", raw, "' is out of range"));
    } catch (const std::exception&) {
      if (current.is_number() || current.is_boolean())
        throw UsageError(str_cat("configuration key '", key, "' expects ",
                                 current.is_boolean() ? "true or false" : "a number", ", got '", raw, "'"));
      return raw;  // arrays given as "0,90,180", genotypes in text form
    }
  }

  [[noreturn]] static void unknown(const std::string& dotted, const std::string& parent, const json& level,
                                   const std::string& origin) {
    std::string list;
    if (level.is_object())
      for (auto it = level.begin(); it != level.end(); ++it) list += (list.empty() ? "" : ", ") + it.key();
    throw UsageError(str_cat(origin.empty() ? "" : origin + ": ", "unknown option or configuration key '",
                             dotted, "'",
                             list.empty() ? "" : str_cat(" (keys", parent.empty() ? "" : " in '" + parent + "'",
                                                         ": ", list, ")"),
                             "; --list-keys prints every key"));
  }

  json base_;
  json patch_ = json::object();
  std::vector<std::string> set_keys_;
};

// The named flags common to both programs that map to configuration keys.
// --ways also sets the class count of every model kind (they must agree).
inline void apply_named_flag(OverrideSet& o, const std::string& flag, const std::string& v) {
  if (flag == "--ways") {
    parse_int_flag(flag, v);
    o.set("episodes.ways", v, flag);
    o.set("model.search.num_classes", v, flag);
    o.set("model.convnet4.num_classes", v, flag);
    o.set("model.discrete.num_classes", v, flag);
    o.set("model.convnet4pp.num_classes", v, flag);
  } else if (flag == "--shots") {
    parse_int_flag(flag, v);
    o.set("episodes.shots", v, flag);
  } else if (flag == "--query") {
    parse_int_flag(flag, v);
    o.set("episodes.queries", v, flag);
  } else if (flag == "--dataset") {
    o.set("data.dataset", v, flag);
  } else if (flag == "--data") {
    o.set("data.root", v, flag);
  } else if (flag == "--algorithm") {
    o.set("algorithm", v, flag);
  } else if (flag == "--device") {
    o.set("run.device", v, flag);
  } else if (flag == "--seed") {
    parse_u64_flag(flag, v);
    o.set("seed", v, flag);
  } else if (flag == "--iterations") {
    parse_int_flag(flag, v);
    o.set("meta.iterations", v, flag);
  } else if (flag == "--threads") {
    parse_int_flag(flag, v);
    o.set("run.threads", v, flag);
  } else if (flag == "--tasks") {
    parse_int_flag(flag, v);
    o.set("eval.tasks", v, flag);
  } else {
    MN_THROW("apply_named_flag: no configuration key for ", flag);
  }
}

// Applies the overrides, turning configuration errors into usage errors.
inline void apply_overrides(ProgramConfig& c, const OverrideSet& o) {
  if (o.empty()) return;
  try {
    c.merge(o.patch());
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(str_cat("command-line overrides: ", e.what()));
  }
}

// A 64-bit mix (splitmix64 finaliser) to derive independent stream seeds.
inline uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Stream numbers of the seeds derived from the configuration's seed.
enum SeedStream : uint64_t {
  kTrainTasks = 1, kValTasks = 2, kValAdapt = 3, kTestTasks = 4, kTestAdapt = 5,
  kSearchTasks = 6,   // Auto-MAML's held split (meta.auto_maml_split)
  kRetrainTasks = 7,  // meta-test retrain mode: meta-train tasks for the decoded networks
};

// Prints every key with its default value (for --list-keys).
inline std::string keys_listing(const ProgramConfig& c) {
  std::string out;
  for (const auto& [k, v] : all_keys(c)) out += k + " = " + v.dump() + "\n";
  return out;
}

}  // namespace metanas::cli
