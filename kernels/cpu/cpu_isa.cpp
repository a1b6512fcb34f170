// Chooses the ISA variant of the CPU kernels (metanas/engine/cpu_isa.h): one
// KernelTable per variant compiled in (METANAS_CPU_HAVE_AVX2/AVX512 from
// CMakeLists.txt), the active one behind an atomic pointer that the CPU
// backend reads per kernel call.
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/cpu_isa.h"
#include "metanas/engine/error.h"

namespace metanas {
namespace kernels::cpu {
namespace baseline {
const KernelTable& isa_kernel_table();
}
#if METANAS_CPU_HAVE_AVX2
namespace avx2 {
const KernelTable& isa_kernel_table();
}
#endif
#if METANAS_CPU_HAVE_AVX512
namespace avx512 {
const KernelTable& isa_kernel_table();
}
#endif
bool cpu_profile_requested();  // kernel_profile.cpp: METANAS_CPU_PROFILE is set
}  // namespace kernels::cpu

namespace {
namespace k = kernels::cpu;

const k::KernelTable* isa_table(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Baseline: return &k::baseline::isa_kernel_table();
#if METANAS_CPU_HAVE_AVX2
    case CpuIsa::Avx2: return &k::avx2::isa_kernel_table();
#endif
#if METANAS_CPU_HAVE_AVX512
    case CpuIsa::Avx512: return &k::avx512::isa_kernel_table();
#endif
    default: return nullptr;
  }
}

// The ISA's table, behind the timing wrapper when METANAS_CPU_PROFILE is set
// (which then wraps it: only for the table being installed as the active one).
const k::KernelTable* table_of(CpuIsa isa) {
  const k::KernelTable* t = isa_table(isa);
  return t != nullptr && k::cpu_profile_requested() ? k::profiled_kernel_table(t) : t;
}

bool runnable(CpuIsa isa, const CpuFeatures& cpu) {
  switch (isa) {
    case CpuIsa::Baseline: return true;  // the whole library is built for x86-64-v2
    case CpuIsa::Avx2: return cpu.x86_64_v3;
    case CpuIsa::Avx512: return cpu.x86_64_v4;
  }
  return false;
}

std::atomic<const k::KernelTable*> g_active{nullptr};
std::atomic<CpuIsa> g_isa{CpuIsa::Baseline};
std::once_flag g_init;

void init_from_environment() {
  std::call_once(g_init, [] {
    const CpuIsa isa = choose_cpu_isa(std::getenv("METANAS_CPU_ISA"), detect_cpu_features());
    g_isa.store(isa);
    g_active.store(table_of(isa));
  });
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Baseline: return "baseline";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
  }
  return "?";
}

CpuIsa parse_cpu_isa(const std::string& s) {
  for (CpuIsa isa : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512})
    if (s == cpu_isa_name(isa)) return isa;
  MN_CHECK(false, "METANAS_CPU_ISA: unknown value '", s, "' (expected baseline, avx2 or avx512)");
  return CpuIsa::Baseline;
}

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  // The psABI levels; libgcc also checks that the OS saves the YMM/ZMM state.
  f.x86_64_v3 = __builtin_cpu_supports("x86-64-v3");
  f.x86_64_v4 = __builtin_cpu_supports("x86-64-v4");
#endif
  return f;
}

// isa_table, not table_of: asking must not re-point the profile's wrapped table.
bool cpu_isa_compiled(CpuIsa isa) { return isa_table(isa) != nullptr; }

std::vector<CpuIsa> supported_cpu_isas() {
  const CpuFeatures cpu = detect_cpu_features();
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512})
    if (cpu_isa_compiled(isa) && runnable(isa, cpu)) out.push_back(isa);
  return out;
}

CpuIsa choose_cpu_isa(const char* request, const CpuFeatures& cpu) {
  // Unset: avx2 where the CPU and the build have it (measured to win, cpu_isa.h), else baseline.
  if (request == nullptr || *request == '\0')
    return cpu_isa_compiled(CpuIsa::Avx2) && runnable(CpuIsa::Avx2, cpu) ? CpuIsa::Avx2 : CpuIsa::Baseline;
  const CpuIsa isa = parse_cpu_isa(request);
  MN_CHECK(cpu_isa_compiled(isa), "METANAS_CPU_ISA=", request,
           ": this build has no such kernel variant (built with a compiler other than GCC?)");
  MN_CHECK(runnable(isa, cpu), "METANAS_CPU_ISA=", request, ": this CPU does not support ",
           isa == CpuIsa::Avx2 ? "x86-64-v3 (AVX2 + FMA)" : "x86-64-v4 (AVX-512)",
           "; use baseline", runnable(CpuIsa::Avx2, cpu) && cpu_isa_compiled(CpuIsa::Avx2) ? " or avx2" : "");
  return isa;
}

CpuIsa cpu_isa() {
  init_from_environment();
  return g_isa.load();
}

void set_cpu_isa(CpuIsa isa) {
  init_from_environment();
  MN_CHECK(cpu_isa_compiled(isa) && runnable(isa, detect_cpu_features()), "set_cpu_isa(", cpu_isa_name(isa),
           "): not supported by this ", cpu_isa_compiled(isa) ? "CPU" : "build");
  g_isa.store(isa);
  g_active.store(table_of(isa));
}

namespace kernels::cpu {

const KernelTable& active_kernel_table() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  if (t == nullptr) {
    init_from_environment();
    t = g_active.load(std::memory_order_acquire);
  }
  return *t;
}

void set_active_kernel_table(const KernelTable* t) {
  init_from_environment();
  MN_CHECK(t != nullptr, "set_active_kernel_table: null table");
  g_active.store(t, std::memory_order_release);
}

}  // namespace kernels::cpu
}  // namespace metanas
