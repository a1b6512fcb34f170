// PLACEHOLDER until the CUDA backend lands: reports that it is unavailable.
#include <string>

namespace metanas {
class Backend;
Backend* cuda_backend_create(std::string* why) {
  if (why) *why = "the CUDA backend is not implemented in this build yet";
  return nullptr;
}
}  // namespace metanas
