// metanas::Error: the one exception type the library throws. It carries what
// failed and where (op name, shapes, path) so that a user sees the cause.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace metanas {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void format_into(std::ostringstream&) {}
template <typename T, typename... Rest>
void format_into(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  format_into(os, rest...);
}
}  // namespace detail

// Concatenate the arguments with operator<< into one message.
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  detail::format_into(os, args...);
  return os.str();
}

}  // namespace metanas

// MN_CHECK(cond, parts...): throw metanas::Error("parts...") when cond is false.
#define MN_CHECK(cond, ...)                                          \
  do {                                                               \
    if (!(cond)) throw ::metanas::Error(::metanas::str_cat(__VA_ARGS__)); \
  } while (0)

// MN_THROW(parts...): throw unconditionally.
#define MN_THROW(...) throw ::metanas::Error(::metanas::str_cat(__VA_ARGS__))
