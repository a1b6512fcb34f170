// The files of a meta-train run folder, and the two rules that keep a user's
// run safe: --overwrite moves the old run aside (DIR/previous-run/) and
// deletes it only once the new run has written its first checkpoint; --resume
// continues only a configuration identical to the checkpoint's outside run.*
// (and meta.iterations).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config.h"
#include "metanas/engine/error.h"

namespace metanas::cli {

// Every file a run writes into its folder (besides the lock and previous-run/).
inline const std::vector<std::string>& run_files() {
  static const std::vector<std::string> f = {
      "config.json",   "checkpoint.mnck", "checkpoint.prev.mnck", "metrics.jsonl", "train.log", "genotype.txt",
      "genotype.json", "genotype.dot",    "genotype.svg",         "report.json",   "report.html", "tb"};
  return f;
}

inline std::string previous_run_dir(const std::string& dir) {
  return (std::filesystem::path(dir) / "previous-run").string();
}

// Moves the files of the run in `dir` into dir/previous-run/. When that
// folder already exists, an earlier --overwrite never reached its first
// checkpoint: previous-run/ still holds the real previous run, and what lies
// in `dir` is that attempt's partial output, which is removed instead.
inline void set_aside_previous_run(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path aside = previous_run_dir(dir);
  std::error_code ec;
  const bool keep_existing = fs::is_directory(aside, ec);
  if (!keep_existing) {
    fs::create_directory(aside, ec);
    MN_CHECK(!ec, "cannot create '", aside.string(), "' to keep the previous run: ", ec.message());
  }
  for (const auto& f : run_files()) {
    const fs::path p = fs::path(dir) / f;
    if (!fs::exists(fs::symlink_status(p, ec))) continue;
    if (keep_existing) {
      fs::remove_all(p, ec);
      MN_CHECK(!ec, "cannot remove '", p.string(), "': ", ec.message());
    } else {
      fs::rename(p, aside / f, ec);
      MN_CHECK(!ec, "cannot move '", p.string(), "' to '", (aside / f).string(), "': ", ec.message());
    }
  }
}

// Deletes dir/previous-run/ (once the new run has a checkpoint of its own).
inline void drop_previous_run(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(previous_run_dir(dir), ec);
  MN_CHECK(!ec, "cannot remove '", previous_run_dir(dir), "': ", ec.message());
}

// Keys that may differ between a run folder's config.json and its checkpoint.
inline bool resumable_key(const std::string& key) {
  return key.rfind("run.", 0) == 0 || key == "meta.iterations";
}

// Throws naming every key outside run.* / meta.iterations whose value in
// `folder` (DIR/config.json with the command-line overrides) differs from the
// configuration stored in the checkpoint: a hand-edited config.json must not
// silently change a continued run.
inline void check_resume_config(const ProgramConfig& folder, const json& checkpoint_config,
                                const std::string& config_path, const std::string& checkpoint_path) {
  ProgramConfig stored;
  try {
    stored.merge(checkpoint_config);
  } catch (const Error& e) {
    MN_THROW(checkpoint_path, ": its configuration is invalid: ", e.what());
  }
  std::vector<std::pair<std::string, json>> a, b;
  list_keys(folder.to_json(), "", a);
  list_keys(stored.to_json(), "", b);
  std::string diffs;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (resumable_key(a[i].first) || a[i].second == b[i].second) continue;
    diffs += str_cat(diffs.empty() ? "" : "; ", a[i].first, " is ", a[i].second.dump(), " in ", config_path,
                     " but ", b[i].second.dump(), " in the checkpoint");
  }
  MN_CHECK(diffs.empty(), "cannot resume: ", diffs,
           ". Only run.* keys and meta.iterations may change when resuming; restore the file (the "
           "checkpoint's configuration is authoritative) or start a new run");
}

}  // namespace metanas::cli
