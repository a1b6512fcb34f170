// Command-line parsing shared by the programs: a table of named flags (which
// also produces --help), "--set key=value" and "--<dotted.key> value"
// configuration overrides, and UsageError for mistakes the user can fix.
#pragma once
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "metanas/engine/error.h"

namespace metanas::cli {

// A mistake on the command line or in a configuration: main() prints it with
// a hint to --help and exits with status 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(what) {}
};

#define MN_USAGE_CHECK(cond, ...) \
  do {                            \
    if (!(cond)) throw ::metanas::cli::UsageError(::metanas::str_cat(__VA_ARGS__)); \
  } while (0)

struct FlagSpec {
  std::string name;     // "--ways"
  std::string metavar;  // "N"; empty: a switch without a value
  std::string help;     // may span lines ('\n')
  std::string section = "options";  // heading in --help
};

// Parses argv against a flag table. Named flags may be written "--name value"
// or "--name=value"; "--set key=value" (repeatable) and any other
// "--key value" / "--key=value" become configuration overrides, checked
// later against the configuration (dashes in keys read as underscores).
class ArgParser {
 public:
  ArgParser(std::string program, std::string synopsis, std::string description,
            std::vector<FlagSpec> flags, std::string epilog = "")
      : program_(std::move(program)),
        synopsis_(std::move(synopsis)),
        description_(std::move(description)),
        epilog_(std::move(epilog)),
        flags_(std::move(flags)) {}

  void parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0 || a == "--") {
        positional_.push_back(a);
        continue;
      }
      std::string name = a, value;
      bool has_value = false;
      if (const auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        has_value = true;
      }
      auto next_value = [&](const std::string& what) {
        MN_USAGE_CHECK(i + 1 < argc, name, " needs ", what);
        return std::string(argv[++i]);
      };
      // --set is handled here even though the flag table lists it (for --help).
      const FlagSpec* spec = name == "--set" || name == "--KEY" ? nullptr : find(name);
      if (spec) {
        if (spec->metavar.empty()) {
          MN_USAGE_CHECK(!has_value, name, " takes no value (got '", value, "')");
          values_[name].push_back("");
        } else {
          if (!has_value) value = next_value("a value (" + spec->metavar + ")");
          values_[name].push_back(value);
        }
        continue;
      }
      if (name == "--set") {
        if (!has_value) value = next_value("KEY=VALUE");
        const auto eq = value.find('=');
        MN_USAGE_CHECK(eq != std::string::npos && eq > 0, "--set expects KEY=VALUE, got '", value, "'");
        overrides_.emplace_back(normalize_key(value.substr(0, eq)), value.substr(eq + 1));
        continue;
      }
      // Any other --key: a configuration override, which needs a value.
      if (!has_value) {
        MN_USAGE_CHECK(i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0,
                       "unknown option '", name, "'");
        value = argv[++i];
      }
      overrides_.emplace_back(normalize_key(name.substr(2)), value);
    }
  }

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  // The last value given for a flag, or `def`.
  std::string get(const std::string& name, const std::string& def = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? def : it->second.back();
  }
  // Every value given for a repeatable flag, in order.
  std::vector<std::string> get_all(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  const std::vector<std::pair<std::string, std::string>>& overrides() const { return overrides_; }
  const std::vector<std::string>& positional() const { return positional_; }

  std::string help() const {
    std::string out = "usage: " + program_ + " " + synopsis_ + "\n\n" + description_ + "\n";
    std::string section;
    for (const auto& f : flags_) {
      if (f.section != section) {
        section = f.section;
        out += "\n" + section + ":\n";
      }
      std::string head = "  " + f.name + (f.metavar.empty() ? "" : " " + f.metavar);
      const size_t col = 28;
      size_t start = 0;
      bool first = true;
      while (start <= f.help.size()) {
        size_t end = f.help.find('\n', start);
        if (end == std::string::npos) end = f.help.size();
        const std::string line = f.help.substr(start, end - start);
        if (first) {
          if (head.size() + 2 > col) {
            out += head + "\n" + std::string(col, ' ');
          } else {
            out += head + std::string(col - head.size(), ' ');
          }
          first = false;
        } else {
          out += std::string(col, ' ');
        }
        out += line + "\n";
        start = end + 1;
      }
    }
    if (!epilog_.empty()) out += "\n" + epilog_ + "\n";
    return out;
  }

  // "--Key-Name" style keys read as "key_name"; dots separate levels.
  static std::string normalize_key(std::string k) {
    for (char& c : k)
      if (c == '-') c = '_';
    return k;
  }

 private:
  const FlagSpec* find(const std::string& name) const {
    for (const auto& f : flags_)
      if (f.name == name) return &f;
    return nullptr;
  }

  std::string program_, synopsis_, description_, epilog_;
  std::vector<FlagSpec> flags_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::pair<std::string, std::string>> overrides_;
  std::vector<std::string> positional_;
};

// Strict number parsing for flag values.
inline int64_t parse_int_flag(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  MN_USAGE_CHECK(!v.empty() && end && *end == '\0' && errno == 0, flag, ": '", v, "' is not an integer");
  return static_cast<int64_t>(x);
}

inline uint64_t parse_u64_flag(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  MN_USAGE_CHECK(!v.empty() && v[0] != '-', flag, ": '", v, "' is not a non-negative integer");
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  MN_USAGE_CHECK(end && *end == '\0' && errno == 0, flag, ": '", v, "' is not a non-negative integer");
  return static_cast<uint64_t>(x);
}

}  // namespace metanas::cli
