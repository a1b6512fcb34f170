// Sorted, hidden-file-free folder listings with clear errors (see fs_util.h).
#include "fs_util.h"

#include <algorithm>
#include <filesystem>

#include "metanas/engine/error.h"

namespace metanas::data::detail {

namespace fs = std::filesystem;

bool is_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

void require_dir(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  MN_CHECK(fs::exists(st), what, ": folder '", path, "' does not exist");
  MN_CHECK(fs::is_directory(st), what, ": '", path, "' is not a folder");
}

namespace {
std::vector<std::string> list(const std::string& dir, bool want_dirs) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  MN_CHECK(!ec, "cannot list folder '", dir, "': ", ec.message());
  for (; it != end; it.increment(ec)) {
    MN_CHECK(!ec, "cannot list folder '", dir, "': ", ec.message());
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code e2;
    const bool d = it->is_directory(e2);
    if (want_dirs ? d : (!d && it->is_regular_file(e2))) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::vector<std::string> list_dirs(const std::string& dir) { return list(dir, true); }
std::vector<std::string> list_files(const std::string& dir) { return list(dir, false); }

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

std::string absolute(const std::string& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  if (ec) a = p;
  std::string s = a.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace metanas::data::detail
