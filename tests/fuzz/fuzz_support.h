// Shared by the libFuzzer targets: the input as a file in a private temp
// folder (for the readers that take paths), and the rule that every failure
// must be a metanas::Error (anything else escaping, or a crash, is a bug).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "metanas/engine/error.h"

namespace fuzz {

inline const std::filesystem::path& scratch() {
  static const std::filesystem::path d = [] {
    auto p = std::filesystem::temp_directory_path() / ("metanas-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p;
  }();
  return d;
}

inline std::string write_file(const std::string& rel, const uint8_t* data, size_t size) {
  const auto p = scratch() / rel;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                            static_cast<std::streamsize>(size));
  return p.string();
}

// Runs f; metanas::Error is the expected way to reject bad input.
template <typename F>
void expect_clean(F f) {
  try {
    f();
  } catch (const metanas::Error&) {
  }
}

}  // namespace fuzz
