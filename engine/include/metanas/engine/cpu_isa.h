// The instruction set the CPU kernels run with. kernels/cpu is compiled once
// per ISA (baseline = x86-64-v2/SSE4.2, avx2 = x86-64-v3: AVX2 + FMA, avx512 =
// x86-64-v4) and one variant is chosen when the CPU backend is first used:
// the environment variable METANAS_CPU_ISA=baseline|avx2|avx512 when set
// (an unknown value, or one this CPU or build lacks, is an error), otherwise
// avx2 on a CPU with x86-64-v3 (and a GCC build), else baseline. avx2 became
// the default once the depthwise convolutions and pools ran on flat planes
// (kernels/cpu/flat_plane.h): before, their 7..28-float rows left 8-wide
// loops mostly remainder and avx2 was no faster (docs/results.md, "CPU speed,
// part 3"); now W1 runs ~10% faster under it on AMD Zen 3 ("part 5").
// avx512 stays opt-in: not measured to win.
//
// Results are bitwise independent of the thread count under every ISA, but
// not equal across ISAs (FMA contraction, vector widths): docs/reproduction.md.
#pragma once
#include <string>
#include <vector>

namespace metanas {

enum class CpuIsa { Baseline = 0, Avx2 = 1, Avx512 = 2 };

const char* cpu_isa_name(CpuIsa isa);
// "baseline" | "avx2" | "avx512"; throws metanas::Error naming the accepted values otherwise.
CpuIsa parse_cpu_isa(const std::string& s);

// What this CPU can run (independent of the build).
struct CpuFeatures {
  bool x86_64_v3 = false;  // AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE (and the OS saves YMM)
  bool x86_64_v4 = false;  // + AVX-512 F/BW/CD/DQ/VL (and the OS saves ZMM)
};
CpuFeatures detect_cpu_features();

// ISAs compiled into this build (baseline always; avx2/avx512 with GCC).
bool cpu_isa_compiled(CpuIsa isa);
// Compiled in and runnable on this CPU, baseline first.
std::vector<CpuIsa> supported_cpu_isas();

// The decision: request is METANAS_CPU_ISA's value (nullptr or "" = unset).
// Throws metanas::Error for an unknown value or one that is not compiled in
// or not supported by `cpu`.
CpuIsa choose_cpu_isa(const char* request, const CpuFeatures& cpu);

// The ISA the CPU kernels use now (chosen on first call from the environment).
CpuIsa cpu_isa();
// Switches the CPU kernels to isa (throws when it is not supported). For tests
// and benchmarks; never while kernels run on another thread.
void set_cpu_isa(CpuIsa isa);

}  // namespace metanas
