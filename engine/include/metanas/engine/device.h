// Devices and element types. A tensor lives on one device; ops run on the
// device of their inputs, and mixing devices is an error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace metanas {

enum class Device : uint8_t { CPU = 0, CUDA = 1 };
enum class DType : uint8_t { F32 = 0, I32 = 1 };

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }
inline const char* dtype_name(DType t) { return t == DType::F32 ? "float32" : "int32"; }
inline size_t dtype_size(DType) { return 4; }  // both types are 4 bytes
inline std::ostream& operator<<(std::ostream& os, Device d) { return os << device_name(d); }
inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

// Parses "cpu", "cuda" (and "cuda:0"); throws metanas::Error otherwise.
Device parse_device(const std::string& s);

// True when this build has the CUDA backend AND a usable GPU is visible.
bool cuda_available();
// True when this build was compiled with the CUDA backend.
bool cuda_compiled();
// True when the CUDA driver reports at least one GPU, whether or not the
// backend could start on it (false in a build without CUDA).
bool cuda_gpu_visible();
// Host synchronisations the backend of d has made so far (copy_to_host,
// synchronize, uploads that had to wait; on the CPU: the calls that would
// synchronise on a GPU). Differences of this counter measure a step.
uint64_t host_syncs(Device d);
// Why cuda_available() is false ("" when it is true).
std::string cuda_unavailable_reason();

// Resolves a requested device: CUDA falls back to CPU (with a one-line notice
// on stderr, printed once) when the build has no CUDA or no GPU is visible.
Device resolve_device(Device requested);

}  // namespace metanas
