// METANAS_CPU_PROFILE's timing table (kernels/cpu/kernel_profile.cpp): it
// must run the very kernels it wraps (bitwise the same results) and count
// every call under the kernel's name, convolutions under their geometry.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"

using namespace metanas;
namespace kc = metanas::kernels::cpu;

namespace {
// The call count printed in the report's row for `kernel` (-1 when absent).
long long calls_of(const std::string& report, const std::string& kernel) {
  size_t at = 0;
  while ((at = report.find(kernel, at)) != std::string::npos) {
    const size_t eol = report.find('\n', at);
    if (report.compare(at, eol - at, kernel) == 0) {  // the whole name, not a prefix of a longer one
      const size_t bol = report.rfind('\n', at) + 1;
      double sec = 0, pct = 0;
      long long calls = -1;
      std::sscanf(report.c_str() + bol, "%lf %lf %lld", &sec, &pct, &calls);
      return calls;
    }
    at += kernel.size();
  }
  return -1;
}
}  // namespace

TEST_CASE("kernel profile: the timing table runs the wrapped kernels and counts every call", "[cpu_isa]") {
  Rng rng(7);
  Tensor x = Tensor::randn({2, 3, 6, 6}, rng);
  Tensor w = Tensor::randn({3, 1, 3, 3}, rng);
  const Conv2dOptions o = Conv2dOptions::same(1, 1, 1, 3);
  const std::vector<float> ref = relu(conv2d(x, w, o)).to_vector();

  const kc::KernelTable* real = &kc::active_kernel_table();
  const std::string before = kc::kernel_profile_report();
  const long long conv0 = calls_of(before, "conv2d_forward dw 3x3 s1 d1 C3->3 6x6");
  const long long relu0 = calls_of(before, "relu_forward");
  kc::set_active_kernel_table(kc::profiled_kernel_table(real));
  std::vector<float> got;
  for (int i = 0; i < 3; ++i) got = relu(conv2d(x, w, o)).to_vector();
  kc::set_active_kernel_table(real);

  REQUIRE(got == ref);  // bitwise: the same kernels ran
  const std::string report = kc::kernel_profile_report();
  INFO(report);
  CHECK(report.find("METANAS_CPU_PROFILE:") != std::string::npos);
  CHECK(calls_of(report, "conv2d_forward dw 3x3 s1 d1 C3->3 6x6") == std::max(conv0, 0ll) + 3);
  CHECK(calls_of(report, "relu_forward") == std::max(relu0, 0ll) + 3);
  // Kernels that did not run while the table was active have no row.
  CHECK(calls_of(report, "conv2d_backward_weight dw 3x3 s1 d1 C3->3 6x6") == calls_of(before, "conv2d_backward_weight dw 3x3 s1 d1 C3->3 6x6"));
}
