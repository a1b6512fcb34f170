// Internal file-system helpers for the loaders: sorted folder listings that
// skip hidden entries, and checks that throw metanas::Error naming the path.
#pragma once
#include <string>
#include <vector>

namespace metanas::data::detail {

// Throws "<what>: folder '<path>' does not exist" (or "is not a folder").
void require_dir(const std::string& path, const std::string& what);
bool is_dir(const std::string& path);
bool is_file(const std::string& path);
// Names (not paths) of the sub-folders / regular files of `dir`, sorted
// bytewise, hidden entries (".*") skipped.
std::vector<std::string> list_dirs(const std::string& dir);
std::vector<std::string> list_files(const std::string& dir);
// a + "/" + b without doubling slashes.
std::string join(const std::string& a, const std::string& b);
// Absolute, lexically normal form (no file-system access beyond cwd).
std::string absolute(const std::string& p);
std::string trim(const std::string& s);

}  // namespace metanas::data::detail
