// The ISA variants of the CPU kernels (metanas/engine/cpu_isa.h): the choice
// from METANAS_CPU_ISA and the CPU's features (planted feature sets), and one
// table of ops run under every ISA this CPU supports: every op of the op table
// through its spec (tests/support/op_specs.cpp) plus the optimizers and a few
// MetaNAS-sized cases, forward and every input gradient, against the baseline
// ISA within the op's stated tolerance. A spy kernel table counts the calls,
// so the test fails when a kernel of the table never ran under some ISA.
// The baseline itself is checked against double-precision references by the
// per-op tests, which ctest also runs under each ISA (tests/CMakeLists.txt:
// "engine: every engine test with METANAS_CPU_ISA=...").
#include <catch2/catch.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "metanas/engine/cpu_isa.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/optim.h"
#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"
#include "support/op_specs.h"

using namespace metanas;
using Catch::Contains;
namespace kc = metanas::kernels::cpu;

namespace {

// ---- the spy table: counts each kernel's calls, then forwards to g_real.
enum KernelId {
#define MN_KERNEL(name, params, args) k_##name,
#include "metanas/kernels/op_table.def"
  kKernelCount
};
const char* const kKernelNames[] = {
#define MN_KERNEL(name, params, args) #name,
#include "metanas/kernels/op_table.def"
};
std::array<std::atomic<int64_t>, kKernelCount> g_calls;
const kc::KernelTable* g_real = nullptr;
const kc::KernelTable kSpy = {
#define MN_KERNEL(name, params, args) +[] params { ++g_calls[k_##name]; g_real->name args; },
#include "metanas/kernels/op_table.def"
};

// Runs the kernels of `isa` behind the spy for its lifetime, then restores the ISA in use before.
struct IsaScope {
  CpuIsa before;
  explicit IsaScope(CpuIsa isa) : before(cpu_isa()) {
    set_cpu_isa(isa);
    g_real = &kc::active_kernel_table();
    for (auto& c : g_calls) c = 0;
    kc::set_active_kernel_table(&kSpy);
  }
  ~IsaScope() { set_cpu_isa(before); }
};

// One result of the workload: a name, a tolerance and the values (floats or int32 as floats).
struct Result {
  std::string what;
  double tol;
  bool exact;
  std::vector<float> v;
};

// Scaled error as in tests/cuda/parity_test.cpp: |a - b| / (|b| + 1e-2 max|b|).
double worst_scaled_error(const std::vector<float>& a, const std::vector<float>& b, bool* nan_mismatch) {
  double maxref = 0, worst = 0;
  for (float x : b)
    if (std::isfinite(x)) maxref = std::max(maxref, static_cast<double>(std::fabs(x)));
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      if (std::isnan(a[i]) != std::isnan(b[i])) *nan_mismatch = true;
      continue;
    }
    const double err = std::fabs(static_cast<double>(a[i]) - b[i]) / (std::fabs(static_cast<double>(b[i])) +
                                                                        1e-2 * maxref + 1e-30);
    worst = std::max(worst, err);
  }
  return worst;
}

std::vector<float> values_of(const Tensor& t) {
  if (t.dtype() == DType::F32) return t.to_vector();
  const auto iv = t.to_int_vector();
  return std::vector<float>(iv.begin(), iv.end());
}

// f on fresh copies of ins (all differentiable), then backward of a seeded upstream gradient.
void run_case(std::vector<Result>& out, const std::string& name, double fwd_tol, double bwd_tol,
              const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& ins) {
  std::vector<Tensor> xs;
  for (const Tensor& in : ins) {
    Tensor c = in.clone();
    c.set_requires_grad();
    xs.push_back(c);
  }
  const Tensor y = f(xs);
  out.push_back(Result{name + ": forward", fwd_tol, y.dtype() == DType::I32, values_of(y)});
  if (!y.requires_grad()) return;
  Rng rng(99);
  y.backward(Tensor::randn(y.shape(), rng));
  for (size_t i = 0; i < xs.size(); ++i)
    if (xs[i].grad().defined())
      out.push_back(Result{name + ": gradient of input " + std::to_string(i), bwd_tol, false, xs[i].grad().to_vector()});
}

// The table of ops: the same work, whatever the ISA.
std::vector<Result> run_workload() {
  std::vector<Result> out;
  // Every op of the op table through its spec, several draws (shapes, options).
  for (const auto& op : testing::table_ops()) {
    const testing::OpSpec* spec = testing::find_spec(op.name);
    REQUIRE(spec != nullptr);
    for (uint64_t draw = 0; draw < 8; ++draw) {
      Rng rng(777 + draw);
      testing::GraphBuilder gb(rng);
      testing::seed_pool(gb);
      const auto c = spec->build(gb);
      REQUIRE(c.has_value());
      std::vector<Tensor> ins;
      for (int a : c->distinct_args()) ins.push_back(gb.values[static_cast<size_t>(a)]);
      run_case(out, op.name + " (draw " + std::to_string(draw) + ")", spec->parity_fwd, spec->parity_bwd,
               c->over_distinct(),
               ins);
    }
  }
  // MetaNAS-sized planes (the vectorised paths need rows of 14..28 floats).
  Rng rng(5);
  const Tensor x = Tensor::randn(Shape{2, 8, 28, 28}, rng), x14 = Tensor::randn(Shape{2, 8, 14, 14}, rng);
  const Tensor wdw = Tensor::randn(Shape{8, 1, 3, 3}, rng, 0.3f), w15 = Tensor::randn(Shape{8, 8, 1, 5}, rng, 0.2f);
  for (int64_t dil : {1, 2})
    for (int64_t stride : {1, 2}) {
      Conv2dOptions o = Conv2dOptions::same(stride, dil, dil, 8);
      o.relu_input = true;
      run_case(out, "dwconv 3x3 relu s" + std::to_string(stride) + " dil" + std::to_string(dil), 1e-5, 1e-4,
               [o](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], o); }, {x, wdw});
    }
  {
    Conv2dOptions o;
    o.pad_left = o.pad_right = 2;
    run_case(out, "conv 1x5", 1e-5, 1e-4, [o](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], o); },
             {x14, w15});
  }
  for (int64_t k : {2, 3})
    for (int64_t s : {1, 2}) {
      const int64_t pad = k == 3 ? 1 : 0;
      run_case(out, "max_pool " + std::to_string(k) + " s" + std::to_string(s), 0, 1e-6,
               [k, s, pad](const std::vector<Tensor>& v) { return max_pool2d(v[0], k, s, pad); }, {x});
      run_case(out, "avg_pool " + std::to_string(k) + " s" + std::to_string(s), 1e-6, 1e-6,
               [k, s, pad](const std::vector<Tensor>& v) { return avg_pool2d(v[0], k, s, pad); }, {x});
    }
  run_case(out, "batch_norm 2x8x28x28", 1e-5, 1e-4,
           [](const std::vector<Tensor>& v) { return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor()); },
           {x});
  {
    std::vector<Tensor> ins;
    for (int kk = 0; kk < 7; ++kk) ins.push_back(Tensor::randn(Shape{2, 8, 14, 14}, rng));
    ins.push_back(Tensor::rand_uniform(Shape{7}, rng, 0.f, 1.f));
    run_case(out, "weighted_sum K=7", 1e-5, 1e-4,
             [](const std::vector<Tensor>& v) {
               return weighted_sum(std::vector<Tensor>(v.begin(), v.begin() + 7), v[7]);
             },
             ins);
  }
  // The optimizers (sgd_step, adam_step, clip_scale): three steps on a 1000-element set.
  for (int which = 0; which < 2; ++which) {
    ParamSet ps;
    ps.add("w", {1000});
    ps.finalize();
    Rng r(11);
    ps.values().copy_(Tensor::randn(Shape{1000}, r));
    std::unique_ptr<Optimizer> opt;
    if (which == 0)
      opt = std::make_unique<Sgd>(ps, 0.1f, 0.9f, 1e-3f);
    else
      opt = std::make_unique<Adam>(ps, 0.01f, 0.9f, 0.999f, 1e-8f, 1e-3f);
    opt->max_grad_norm = 5.f;
    for (int step = 0; step < 3; ++step) {
      ps.grads().copy_(Tensor::randn(Shape{1000}, r));
      opt->step();
    }
    // axpby (REPTILE's interpolation towards the adapted weights).
    Tensor t = Tensor::randn(Shape{1000}, r);
    ps.values().add_(t, 0.3f);
    out.push_back(Result{which == 0 ? "sgd steps" : "adam steps", 1e-5, false, ps.values().to_vector()});
  }
  return out;
}

}  // namespace

TEST_CASE("cpu isa: METANAS_CPU_ISA values, unsupported requests and the automatic choice", "[cpu_isa]") {
  REQUIRE(parse_cpu_isa("baseline") == CpuIsa::Baseline);
  REQUIRE(parse_cpu_isa("avx2") == CpuIsa::Avx2);
  REQUIRE(parse_cpu_isa("avx512") == CpuIsa::Avx512);
  for (const char* bad : {"AVX2", "sse4", "avx", ""})
    REQUIRE_THROWS_WITH(parse_cpu_isa(bad), Contains("expected baseline, avx2 or avx512"));

  CpuFeatures none, v3, v4;
  v3.x86_64_v3 = true;
  v4.x86_64_v3 = v4.x86_64_v4 = true;
  // Unset or empty: avx2 on an x86-64-v3 (or v4) CPU when built, else baseline; avx512 is opt-in.
  const CpuIsa wide = cpu_isa_compiled(CpuIsa::Avx2) ? CpuIsa::Avx2 : CpuIsa::Baseline;
  REQUIRE(choose_cpu_isa(nullptr, none) == CpuIsa::Baseline);
  REQUIRE(choose_cpu_isa("", none) == CpuIsa::Baseline);
  REQUIRE(choose_cpu_isa(nullptr, v3) == wide);
  REQUIRE(choose_cpu_isa("", v3) == wide);
  REQUIRE(choose_cpu_isa(nullptr, v4) == wide);
  if (cpu_isa_compiled(CpuIsa::Avx2)) REQUIRE(choose_cpu_isa("avx2", v3) == CpuIsa::Avx2);
  REQUIRE(choose_cpu_isa("baseline", v4) == CpuIsa::Baseline);
  REQUIRE_THROWS_WITH(choose_cpu_isa("avx2", none), Contains("does not support x86-64-v3"));
  REQUIRE_THROWS_WITH(choose_cpu_isa("bogus", v4), Contains("unknown value 'bogus'"));
  if (cpu_isa_compiled(CpuIsa::Avx512)) {
    REQUIRE(choose_cpu_isa("avx512", v4) == CpuIsa::Avx512);
    REQUIRE_THROWS_WITH(choose_cpu_isa("avx512", v3), Contains("does not support x86-64-v4"));
  } else {
    REQUIRE_THROWS_WITH(choose_cpu_isa("avx512", v4), Contains("no such kernel variant"));
  }

  // This machine: baseline always, and the ISA in use is one of the supported ones.
  const auto sup = supported_cpu_isas();
  REQUIRE(!sup.empty());
  REQUIRE(sup.front() == CpuIsa::Baseline);
  REQUIRE(std::find(sup.begin(), sup.end(), cpu_isa()) != sup.end());
  const char* env = std::getenv("METANAS_CPU_ISA");
  REQUIRE(cpu_isa() == choose_cpu_isa(env, detect_cpu_features()));
  if (!detect_cpu_features().x86_64_v4) REQUIRE_THROWS_WITH(set_cpu_isa(CpuIsa::Avx512), Contains("not supported"));
}

TEST_CASE("cpu isa: every kernel of the op table under every supported ISA agrees with the baseline", "[cpu_isa]") {
  std::vector<Result> ref;
  for (CpuIsa isa : supported_cpu_isas()) {
    INFO("ISA " << cpu_isa_name(isa));
    std::vector<Result> got;
    {
      IsaScope scope(isa);
      got = run_workload();
      for (int k = 0; k < kKernelCount; ++k) {
        INFO("kernel " << kKernelNames[k] << " never ran");
        // fill_i32 has no caller in the engine's ops (a kernel for int tensors' zero-fill).
        if (std::string(kKernelNames[k]) != "fill_i32") CHECK(g_calls[static_cast<size_t>(k)] > 0);
      }
    }
    if (isa == CpuIsa::Baseline) {
      ref = got;
      continue;
    }
    REQUIRE(got.size() == ref.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO(got[i].what);
      REQUIRE(got[i].what == ref[i].what);
      REQUIRE(got[i].v.size() == ref[i].v.size());
      if (got[i].exact) {
        REQUIRE(got[i].v == ref[i].v);
        continue;
      }
      bool nan_mismatch = false;
      const double err = worst_scaled_error(got[i].v, ref[i].v, &nan_mismatch);
      INFO("worst scaled error " << err << " (tolerance " << got[i].tol << ")");
      REQUIRE_FALSE(nan_mismatch);
      REQUIRE(err <= got[i].tol);
    }
  }
}
