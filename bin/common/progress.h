// Output helpers of the programs: a log that tees lines to stdout and a file,
// a JSON-lines metrics writer, duration/rate formatting and the run
// folder's checkpoint rotation (checkpoint.mnck + checkpoint.prev.mnck).
#pragma once
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "metanas/engine/checkpoint.h"
#include "metanas/engine/error.h"

namespace metanas::cli {

namespace fs = std::filesystem;

// Monotonic seconds since construction.
class Stopwatch {
 public:
  Stopwatch() : t0_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  void reset() { t0_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// "45s", "3m28s", "2h05m", "3d04h"; "?" for a negative or non-finite value.
inline std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long long t = static_cast<long long>(std::llround(s));
  if (t < 60)
    std::snprintf(buf, sizeof buf, "%llds", t);
  else if (t < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  else if (t < 86400)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
  else
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", t / 86400, (t % 86400) / 3600);
  return buf;
}

// Iterations per second, with enough digits for slow runs ("0.042 it/s").
inline std::string format_rate(double r) {
  char buf[32];
  if (!std::isfinite(r))
    return "? it/s";
  else if (r >= 10)
    std::snprintf(buf, sizeof buf, "%.1f it/s", r);
  else if (r >= 1)
    std::snprintf(buf, sizeof buf, "%.2f it/s", r);
  else
    std::snprintf(buf, sizeof buf, "%.3f it/s (%.1f s/it)", r, r > 0 ? 1.0 / r : 0.0);
  return buf;
}

inline std::string format_percent(double v, int prec = 2) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%%", prec, 100.0 * v);
  return buf;
}

inline std::string format_float(double v, int prec = 4) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

// Local time "2024-05-01 12:34:56".
inline std::string timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Lines to stdout (unless quiet) and, when a file is open, to the file with a
// timestamp; flushed at once so a killed run leaves a complete log. Lines
// logged before open() (while the inputs are validated, before the run folder
// is touched) are kept and written when the file opens.
class Log {
 public:
  void open(const std::string& path, bool append) {
    file_.open(path, append ? std::ios::app : std::ios::trunc);
    MN_CHECK(file_, "cannot open log file '", path, "'");
    for (const auto& l : pending_) file_ << l << '\n';
    file_.flush();
    pending_.clear();
  }
  void set_quiet(bool q) { quiet_ = q; }
  void line(const std::string& s) {
    if (!quiet_) {
      std::fputs(s.c_str(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    }
    file_only(s);
  }
  // Only to the file (details that would clutter the terminal).
  void file_only(const std::string& s) {
    const std::string l = "[" + timestamp() + "] " + s;
    if (file_.is_open())
      file_ << l << std::endl;
    else
      pending_.push_back(l);
  }

 private:
  std::ofstream file_;
  std::vector<std::string> pending_;
  bool quiet_ = false;
};

// One JSON object per line, flushed per record.
class JsonlWriter {
 public:
  void open(const std::string& path, bool append) {
    path_ = path;
    f_.open(path, append ? std::ios::app : std::ios::trunc);
    MN_CHECK(f_, "cannot open metrics file '", path, "'");
  }
  void write(const nlohmann::json& record) {
    if (!f_.is_open()) return;
    f_ << record.dump() << '\n';
    f_.flush();
    MN_CHECK(f_, "writing metrics to '", path_, "' failed");
  }

  // Keeps only the records whose "iteration" is <= `iteration` (what a
  // resumed run does, so that records written after the last checkpoint by
  // the interrupted run are not duplicated). Lines that do not parse are
  // dropped (a write cut off by a crash).
  static void truncate_after(const std::string& path, int64_t iteration) {
    std::ifstream in(path);
    if (!in) return;
    std::vector<std::string> keep;
    std::string line;
    while (std::getline(in, line)) {
      try {
        const auto j = nlohmann::json::parse(line);
        if (j.is_object() && j.value("iteration", int64_t(0)) <= iteration) keep.push_back(line);
      } catch (const std::exception&) {
      }
    }
    in.close();
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      MN_CHECK(out, "cannot write '", tmp, "'");
      for (const auto& l : keep) out << l << '\n';
      out.close();
      MN_CHECK(out, "writing '", tmp, "' failed");
    }
    MN_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path, "'");
  }

 private:
  std::string path_;
  std::ofstream f_;
};

// Checkpoint rotation in a run folder. The newest checkpoint is always a
// complete file: the previous one is first hard-linked (or copied) to
// checkpoint.prev.mnck, then Checkpoint::save replaces checkpoint.mnck
// atomically (temporary file + rename).
inline std::string checkpoint_path(const std::string& dir) { return (fs::path(dir) / "checkpoint.mnck").string(); }
inline std::string previous_checkpoint_path(const std::string& dir) {
  return (fs::path(dir) / "checkpoint.prev.mnck").string();
}

inline void save_rotating(const Checkpoint& ck, const std::string& dir) {
  const std::string cur = checkpoint_path(dir), prev = previous_checkpoint_path(dir);
  std::error_code ec;
  if (fs::exists(cur, ec)) {
    const std::string tmp = prev + ".tmp";
    fs::remove(tmp, ec);
    fs::create_hard_link(cur, tmp, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(cur, tmp, fs::copy_options::overwrite_existing, ec);
    }
    MN_CHECK(!ec, "cannot keep the previous checkpoint as '", prev, "': ", ec.message());
    fs::rename(tmp, prev, ec);
    MN_CHECK(!ec, "cannot rename '", tmp, "' to '", prev, "': ", ec.message());
  }
  ck.save(cur);
}

}  // namespace metanas::cli
