// CUDA vs CPU parity: every op of ops.h, forward and every input gradient
// (through backward() on both devices, with the same random upstream
// gradient), on fresh random inputs, against a tolerance stated per op; the
// optimizers on a ParamSet moved to the GPU; device-mixing errors; and
// determinism (bitwise-equal results run to run) of the reductions that could
// otherwise depend on scheduling. Runs only where a GPU is visible
// (cuda_main.cpp exits 77 otherwise).
//
// Tolerance: element i passes when |cuda_i - cpu_i| <= tol * (|cpu_i| + floor * max_j |cpu_j|);
// floor (default 1e-2) forgives relative noise on values that cancelled to
// near zero. Both sides compute in FP32 with double accumulators where the
// kernels use them (cuBLAS/cuDNN run in FP32 without TF32), so tolerances are
// a few float ulps scaled by the reduction length.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/optim.h"
#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"
#include "support/op_specs.h"

using namespace metanas;

namespace {

constexpr Device kGpu = Device::CUDA;

struct Tol {
  double tol;
  double floor = 1e-2;
};

// Elementwise comparison with the scaled error above; NaN must match NaN.
void expect_close(const Tensor& got, const Tensor& want, Tol t, const std::string& what) {
  INFO(what);
  REQUIRE(got.defined());
  REQUIRE(want.defined());
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  if (got.dtype() == DType::I32) {
    const auto a = got.to_int_vector(), b = want.to_int_vector();
    for (size_t i = 0; i < a.size(); ++i) {
      INFO("index " << i);
      REQUIRE(a[i] == b[i]);
    }
    return;
  }
  const auto a = got.to_vector(), b = want.to_vector();
  double maxref = 0;
  for (float v : b)
    if (std::isfinite(v)) maxref = std::max(maxref, static_cast<double>(std::fabs(v)));
  double worst = 0;
  size_t wi = 0;
  bool nan_mismatch = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      if (std::isnan(a[i]) != std::isnan(b[i])) {
        nan_mismatch = true;
        wi = i;
      }
      continue;
    }
    const double err = std::fabs(static_cast<double>(a[i]) - b[i]) /
                       (std::fabs(static_cast<double>(b[i])) + t.floor * maxref + 1e-30);
    if (err > worst) {
      worst = err;
      wi = i;
    }
  }
  INFO("worst scaled error " << worst << " (tolerance " << t.tol << ") at element " << wi << ": cuda "
                             << (a.empty() ? 0.f : a[wi]) << ", cpu " << (b.empty() ? 0.f : b[wi]) << "; max |cpu| "
                             << maxref);
  REQUIRE_FALSE(nan_mismatch);
  REQUIRE(worst <= t.tol);
}

std::vector<float> bits_of(const Tensor& t) { return t.to_vector(); }
bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct In {
  Tensor value;  // CPU tensor
  bool grad = true;
};

In randn_in(const Shape& s, Rng& rng, float stddev = 1.f, bool grad = true) {
  return In{Tensor::randn(s, rng, stddev), grad};
}

// Runs f on copies of the inputs on the CPU and on the GPU, compares the
// outputs, then backpropagates the same random upstream gradient on both and
// compares the gradient of every input that wants one.
void check_parity(const std::string& name, const Fn& f, const std::vector<In>& ins, Tol fwd, Tol bwd,
                  uint64_t seed = 99) {
  std::vector<Tensor> cpu, gpu;
  for (const auto& in : ins) {
    Tensor c = in.value.clone(), g = in.value.to(kGpu);
    if (in.grad) {
      c.set_requires_grad();
      g.set_requires_grad();
    }
    cpu.push_back(c);
    gpu.push_back(g);
  }
  const Tensor yc = f(cpu), yg = f(gpu);
  REQUIRE(yg.device() == kGpu);
  expect_close(yg, yc, fwd, name + ": forward");
  if (!yc.requires_grad()) return;
  Rng rng(seed);
  const Tensor up = Tensor::randn(yc.shape(), rng);
  yc.backward(up);
  yg.backward(up.to(kGpu));
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i].grad) continue;
    expect_close(gpu[i].grad(), cpu[i].grad(), bwd, name + ": gradient of input " + std::to_string(i));
  }
}

}  // namespace

// ---------------------------------------------------------------- the op table

// Every op of the op table, through its spec (tests/support/op_specs.cpp):
// inputs drawn from the spec's pool, several draws each. An op added to the
// table without a spec fails here (and in the engine's fuzzer test).
TEST_CASE("parity: every op of the op table through its spec", "[cuda][parity]") {
  for (const auto& op : metanas::testing::table_ops()) {
    const metanas::testing::OpSpec* spec = metanas::testing::find_spec(op.name);
    INFO("op " << op.name);
    REQUIRE(spec != nullptr);
    for (uint64_t trial = 0; trial < 6; ++trial) {
      Rng rng(4242 + trial);
      metanas::testing::GraphBuilder gb(rng);
      metanas::testing::seed_pool(gb);
      const auto c = spec->build(gb);
      REQUIRE(c.has_value());
      std::vector<In> ins;
      for (int a : c->distinct_args()) ins.push_back(In{gb.values[static_cast<size_t>(a)], true});
      check_parity(op.name + " (draw " + std::to_string(trial) + ")", c->over_distinct(),
                   ins, Tol{spec->parity_fwd}, Tol{spec->parity_bwd});
    }
  }
}

TEST_CASE("shared gradient buffers on the GPU: the reported cases give 17 and 57", "[cuda][parity]") {
  for (int which = 0; which < 2; ++which) {
    ParamSet ps(Device::CPU);
    ps.add("x", {1});
    ps.finalize();
    ps.get("x").copy_(Tensor::from_vector({1.f}, {1}));
    ps.to(kGpu);
    Tensor x = ps.get("x"), a = x * 2.0f, b = x * 3.0f;
    if (which == 0) {
      sum(a * b + (a + b)).backward();
      REQUIRE(ps.grads().to_vector()[0] == Approx(17.f));
    } else {
      Tensor e = a + b;
      sum(e * a + e * b + (e + a)).backward();
      REQUIRE(ps.grads().to_vector()[0] == Approx(57.f));
    }
  }
}

// ---------------------------------------------------------------- element-wise

TEST_CASE("parity: element-wise ops", "[cuda][parity]") {
  Rng rng(1);
  const Shape s{20, 16, 7, 7};
  // Same float operations on both sides, up to FMA contraction on the GPU.
  const Tol exact{1e-5}, fwd{1e-5};
  check_parity("add", [](const std::vector<Tensor>& v) { return add(v[0], v[1]); },
               {randn_in(s, rng), randn_in(s, rng)}, fwd, exact);
  check_parity("sub", [](const std::vector<Tensor>& v) { return v[0] - v[1]; }, {randn_in(s, rng), randn_in(s, rng)},
               fwd, exact);
  check_parity("mul", [](const std::vector<Tensor>& v) { return mul(v[0], v[1]); },
               {randn_in(s, rng), randn_in(s, rng)}, fwd, exact);
  check_parity("mul (one side constant)", [](const std::vector<Tensor>& v) { return v[0] * v[1]; },
               {randn_in(s, rng), randn_in(s, rng, 1.f, false)}, fwd, exact);
  check_parity("add_scalar", [](const std::vector<Tensor>& v) { return add_scalar(v[0], 0.75f); },
               {randn_in(s, rng)}, fwd, exact);
  check_parity("mul_scalar", [](const std::vector<Tensor>& v) { return -1.5f * v[0]; }, {randn_in(s, rng)}, fwd,
               exact);
  check_parity("relu", [](const std::vector<Tensor>& v) { return relu(v[0]); }, {randn_in(s, rng)}, fwd, exact);
  check_parity("reshape", [](const std::vector<Tensor>& v) { return v[0].reshape(Shape{20, 784}); },
               {randn_in(s, rng)}, exact, exact);
}

TEST_CASE("parity: full reductions (sum, mean, sum_squares) at several sizes", "[cuda][parity]") {
  Rng rng(2);
  // Double accumulation on both sides: only the final rounding differs.
  const Tol tol{1e-5, 0};
  for (int64_t n : {1, 7, 1000, 100003, 1 << 20}) {
    INFO("n = " << n);
    check_parity("sum", [](const std::vector<Tensor>& v) { return sum(v[0]); }, {randn_in(Shape{n}, rng)}, tol,
                 Tol{1e-6});
    check_parity("mean", [](const std::vector<Tensor>& v) { return mean(v[0]); }, {randn_in(Shape{n}, rng)}, tol,
                 Tol{1e-6});
    check_parity("sum_squares", [](const std::vector<Tensor>& v) { return sum_squares(v[0]); },
                 {randn_in(Shape{n}, rng)}, tol, Tol{1e-6});
  }
}

// ---------------------------------------------------------------- mixed op

TEST_CASE("parity: weighted_sum (mixed op) forward, every dx_k and dw", "[cuda][parity]") {
  Rng rng(3);
  struct Case {
    Shape shape;
    int K;
  };
  // MetaNAS shapes (K = 7, float4 path), an odd size (scalar path), K > 8 (chunked launches).
  for (const Case& cs : {Case{{20, 16, 28, 28}, 7}, Case{{20, 32, 7, 7}, 8}, Case{{3, 5, 7, 9}, 7},
                         Case{{2, 3, 5, 5}, 11}, Case{{1, 1, 1, 1}, 1}}) {
    INFO("shape " << cs.shape.str() << " K " << cs.K);
    std::vector<In> ins;
    for (int k = 0; k < cs.K; ++k) ins.push_back(randn_in(cs.shape, rng, 1.f, /*grad=*/k % 3 != 1));
    ins.push_back(In{Tensor::rand_uniform(Shape{cs.K}, rng, 0.f, 1.f), true});
    const int K = cs.K;
    // dw sums N products: relative error grows like sqrt(N) ulps.
    check_parity("weighted_sum",
                 [K](const std::vector<Tensor>& v) {
                   return weighted_sum(std::vector<Tensor>(v.begin(), v.begin() + K), v[static_cast<size_t>(K)]);
                 },
                 ins, Tol{1e-4}, Tol{1e-3});
  }
}

// ---------------------------------------------------------------- softmax

TEST_CASE("parity: softmax with temperature on architecture rows, with outliers", "[cuda][parity]") {
  Rng rng(4);
  for (float T : {1.f, 0.3f, 5.f}) {
    for (int64_t cols : {1, 2, 3, 4, 5, 6, 7, 33, 1000}) {
      Tensor a = Tensor::randn(Shape{14, cols}, rng);
      // Planted outliers: large logits that overflow exp() without the max shift.
      std::vector<float> v = a.to_vector();
      v[0] = 40.f;
      if (v.size() > 3) v[3] = -60.f;
      if (cols > 2) v[static_cast<size_t>(cols + 1)] = 95.f;
      a = Tensor::from_vector(v, a.shape());
      INFO("T " << T << " cols " << cols);
      check_parity("softmax", [T](const std::vector<Tensor>& x) { return softmax(x[0], T); }, {In{a, true}},
                   Tol{1e-5}, Tol{1e-4});
    }
  }
}

TEST_CASE("parity: select_row of architecture weights", "[cuda][parity]") {
  Rng rng(5);
  check_parity("select_row", [](const std::vector<Tensor>& v) { return softmax(select_row(v[0], 3), 0.5f); },
               {randn_in(Shape{14, 7}, rng)}, Tol{1e-5}, Tol{1e-4});
}

TEST_CASE("parity: cross_entropy (fused log-softmax + NLL), argmax and accuracy", "[cuda][parity]") {
  Rng rng(6);
  struct Case {
    int64_t rows, cols;
  };
  for (const Case cs : {Case{25, 5}, Case{100, 20}, Case{64, 1000}, Case{3, 1}}) {
    INFO("rows " << cs.rows << " cols " << cs.cols);
    Tensor logits = Tensor::randn(Shape{cs.rows, cs.cols}, rng, 3.f);
    std::vector<float> v = logits.to_vector();
    v[0] = 80.f;  // outliers
    v[static_cast<size_t>(cs.cols)] = -80.f;
    // A row with a tied maximum: argmax must pick the first.
    if (cs.cols >= 3 && cs.rows > 2) {
      v[static_cast<size_t>(2 * cs.cols + 1)] = 50.f;
      v[static_cast<size_t>(2 * cs.cols + 2)] = 50.f;
    }
    logits = Tensor::from_vector(v, logits.shape());
    std::vector<int32_t> lab(static_cast<size_t>(cs.rows));
    for (auto& l : lab) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(cs.cols)));
    const Tensor labels = Tensor::from_ints(lab, Shape{cs.rows});
    check_parity("cross_entropy",
                 [labels](const std::vector<Tensor>& x) { return cross_entropy(x[0], labels.to(x[0].device())); },
                 {In{logits, true}}, Tol{1e-5, 0}, Tol{1e-4});
    expect_close(argmax(logits.to(kGpu)), argmax(logits), Tol{0}, "argmax");
    expect_close(accuracy(logits.to(kGpu), labels.to(kGpu)), accuracy(logits, labels), Tol{1e-7, 0}, "accuracy");
  }
}

// ---------------------------------------------------------------- convolution

namespace {
struct ConvCase {
  const char* name;
  int64_t N, Cin, H, W, Cout, KH, KW;
  Conv2dOptions opt;
};
Conv2dOptions opts(int64_t s, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t d, int64_t groups, bool relu) {
  Conv2dOptions o;
  o.stride_h = o.stride_w = s;
  o.pad_top = pt;
  o.pad_bottom = pb;
  o.pad_left = pl;
  o.pad_right = pr;
  o.dil_h = o.dil_w = d;
  o.groups = groups;
  o.relu_input = relu;
  return o;
}
}  // namespace

TEST_CASE("parity: conv2d on every path (depthwise kernel, cuBLAS 1x1, cuDNN)", "[cuda][parity]") {
  Rng rng(7);
  const std::vector<ConvCase> cases = {
      // hand-written depthwise kernel: the MetaNAS set, ReLU fused
      {"dw 3x3 s1", 4, 16, 28, 28, 16, 3, 3, opts(1, 1, 1, 1, 1, 1, 16, true)},
      {"dw 3x3 s1 no relu", 4, 16, 14, 14, 16, 3, 3, opts(1, 1, 1, 1, 1, 1, 16, false)},
      {"dw 3x3 s2", 4, 16, 28, 28, 16, 3, 3, opts(2, 1, 1, 1, 1, 1, 16, true)},
      {"dw 3x3 dil2", 4, 16, 14, 14, 16, 3, 3, opts(1, 2, 2, 2, 2, 2, 16, true)},
      {"dw 3x3 dil2 s2", 4, 8, 15, 15, 8, 3, 3, opts(2, 2, 2, 2, 2, 2, 8, true)},
      {"dw 5x5", 3, 8, 14, 14, 8, 5, 5, opts(1, 2, 2, 2, 2, 1, 8, true)},
      {"dw 5x5 dil2 s2", 3, 8, 21, 21, 8, 5, 5, opts(2, 4, 4, 4, 4, 2, 8, true)},
      {"dw 1x5", 4, 8, 14, 14, 8, 1, 5, opts(1, 0, 0, 2, 2, 1, 8, true)},
      {"dw 5x1", 4, 8, 14, 14, 8, 5, 1, opts(1, 2, 2, 0, 0, 1, 8, true)},
      {"dw 1x5 s2", 4, 8, 14, 14, 8, 1, 5, opts(2, 0, 0, 2, 2, 1, 8, false)},
      {"dw 5x1 s2", 4, 8, 14, 14, 8, 5, 1, opts(2, 2, 2, 0, 0, 1, 8, true)},
      {"dw 3x3 asymmetric pad", 2, 8, 9, 10, 8, 3, 3, opts(2, 0, 1, 1, 0, 1, 8, true)},
      {"dw 7x7 (runtime window)", 2, 4, 12, 12, 4, 7, 7, opts(1, 3, 3, 3, 3, 1, 4, true)},
      {"dw large plane", 2, 4, 84, 84, 4, 3, 3, opts(1, 1, 1, 1, 1, 1, 4, true)},
      // cuBLAS 1x1
      {"1x1", 4, 16, 14, 14, 24, 1, 1, opts(1, 0, 0, 0, 0, 1, 1, false)},
      {"1x1 relu", 4, 16, 7, 7, 8, 1, 1, opts(1, 0, 0, 0, 0, 1, 1, true)},
      {"1x1 N=1", 1, 12, 9, 9, 6, 1, 1, opts(1, 0, 0, 0, 0, 1, 1, false)},
      // cuDNN
      {"dense 3x3", 4, 8, 14, 14, 16, 3, 3, opts(1, 1, 1, 1, 1, 1, 1, false)},
      {"dense 3x3 relu s2", 4, 8, 14, 14, 16, 3, 3, opts(2, 1, 1, 1, 1, 1, 1, true)},
      {"dense 3x3 dil2", 2, 4, 12, 12, 6, 3, 3, opts(1, 2, 2, 2, 2, 2, 1, false)},
      {"dense asymmetric pad", 2, 4, 9, 9, 6, 3, 3, opts(1, 0, 2, 2, 1, 1, 1, true)},
      {"dense 1x1 stride 2", 4, 8, 14, 14, 16, 1, 1, opts(2, 0, 0, 0, 0, 1, 1, true)},
      {"first layer 3->32 on 84x84", 2, 3, 84, 84, 32, 3, 3, opts(1, 1, 1, 1, 1, 1, 1, false)},
      {"grouped 2", 2, 8, 10, 10, 8, 3, 3, opts(1, 1, 1, 1, 1, 1, 2, false)},
      {"depthwise multiplier 2", 2, 4, 10, 10, 8, 3, 3, opts(1, 1, 1, 1, 1, 1, 4, true)},
  };
  for (const auto& cs : cases) {
    INFO(cs.name);
    const Shape xs{cs.N, cs.Cin, cs.H, cs.W}, ws{cs.Cout, cs.Cin / cs.opt.groups, cs.KH, cs.KW};
    const Conv2dOptions o = cs.opt;
    // Sums of Cin/groups*KH*KW products forward, N*OH*OW for dw.
    check_parity(cs.name, [o](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], o); },
                 {randn_in(xs, rng), randn_in(ws, rng, 0.3f)}, Tol{1e-4}, Tol{1e-3});
  }
}

// ---------------------------------------------------------------- pooling

TEST_CASE("parity: max / average pooling and global average pooling", "[cuda][parity]") {
  Rng rng(8);
  struct P {
    int64_t k, s, pad;
  };
  for (const P p : {P{3, 1, 1}, P{3, 2, 1}, P{2, 2, 0}, P{5, 1, 2}}) {
    for (const Shape& s : {Shape{20, 16, 28, 28}, Shape{3, 4, 9, 7}}) {
      INFO("k " << p.k << " stride " << p.s << " pad " << p.pad << " x " << s.str());
      check_parity("max_pool2d", [p](const std::vector<Tensor>& v) { return max_pool2d(v[0], p.k, p.s, p.pad); },
                   {randn_in(s, rng)}, Tol{0}, Tol{1e-4});
      check_parity("avg_pool2d", [p](const std::vector<Tensor>& v) { return avg_pool2d(v[0], p.k, p.s, p.pad); },
                   {randn_in(s, rng)}, Tol{1e-4}, Tol{1e-4});
    }
  }
  check_parity("global_avg_pool", [](const std::vector<Tensor>& v) { return global_avg_pool(v[0]); },
               {randn_in(Shape{20, 64, 7, 7}, rng)}, Tol{1e-5}, Tol{1e-5});
  check_parity("global_avg_pool 1x1", [](const std::vector<Tensor>& v) { return global_avg_pool(v[0]); },
               {randn_in(Shape{5, 3, 1, 1}, rng)}, Tol{1e-5}, Tol{1e-5});
}

// ---------------------------------------------------------------- batch norm

TEST_CASE("parity: batch_norm train / eval, affine / non-affine, running statistics", "[cuda][parity]") {
  Rng rng(9);
  for (const Shape& s : {Shape{20, 16, 28, 28}, Shape{20, 64, 7, 7}, Shape{5, 3, 2, 3}, Shape{32, 10}}) {
    const int64_t C = s[1];
    INFO("x " << s.str());
    // Training, affine, running statistics updated on both devices.
    Tensor rm_c = Tensor::randn(Shape{C}, rng, 0.1f), rv_c = Tensor::rand_uniform(Shape{C}, rng, 0.5f, 2.f);
    Tensor rm_g = rm_c.to(kGpu), rv_g = rv_c.to(kGpu);
    check_parity("batch_norm train affine",
                 [&](const std::vector<Tensor>& v) {
                   const bool gpu = v[0].device() == kGpu;
                   return batch_norm(v[0], v[1], v[2], gpu ? rm_g : rm_c, gpu ? rv_g : rv_c, BatchNormOptions{});
                 },
                 {randn_in(s, rng, 2.f), In{Tensor::rand_uniform(Shape{C}, rng, 0.5f, 1.5f), true},
                  randn_in(Shape{C}, rng)},
                 Tol{1e-4}, Tol{1e-3});
    expect_close(rm_g, rm_c, Tol{1e-5}, "running_mean after a training step");
    expect_close(rv_g, rv_c, Tol{1e-5}, "running_var (unbiased) after a training step");
    // Training, non-affine, no running statistics (MetaNAS's BN).
    check_parity("batch_norm train non-affine",
                 [](const std::vector<Tensor>& v) {
                   return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{});
                 },
                 {randn_in(s, rng, 0.5f)}, Tol{1e-4}, Tol{1e-3});
    // Evaluation with running statistics.
    BatchNormOptions eval;
    eval.training = false;
    check_parity("batch_norm eval",
                 [&](const std::vector<Tensor>& v) {
                   const bool gpu = v[0].device() == kGpu;
                   return batch_norm(v[0], v[1], v[2], gpu ? rm_g : rm_c, gpu ? rv_g : rv_c, eval);
                 },
                 {randn_in(s, rng), randn_in(Shape{C}, rng), randn_in(Shape{C}, rng)}, Tol{1e-4}, Tol{1e-3});
  }
}

// ---------------------------------------------------------------- layout, classifier, regularisation

TEST_CASE("parity: concat / slice channels, crop, flatten", "[cuda][parity]") {
  Rng rng(10);
  const Tol exact{0}, grad{1e-5};
  check_parity("concat_channels", [](const std::vector<Tensor>& v) { return concat_channels(v); },
               {randn_in(Shape{4, 3, 5, 6}, rng), randn_in(Shape{4, 5, 5, 6}, rng, 1.f, false),
                randn_in(Shape{4, 1, 5, 6}, rng)},
               exact, grad);
  check_parity("slice_channels", [](const std::vector<Tensor>& v) { return slice_channels(v[0], 2, 5); },
               {randn_in(Shape{4, 9, 5, 6}, rng)}, exact, grad);
  check_parity("crop2d", [](const std::vector<Tensor>& v) { return crop2d(v[0], 1, 2, 5, 3); },
               {randn_in(Shape{3, 4, 8, 7}, rng)}, exact, grad);
  check_parity("flatten", [](const std::vector<Tensor>& v) { return flatten(v[0]); },
               {randn_in(Shape{3, 4, 8, 7}, rng)}, exact, grad);
}

TEST_CASE("parity: linear with and without bias", "[cuda][parity]") {
  Rng rng(11);
  check_parity("linear", [](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); },
               {randn_in(Shape{25, 64}, rng), randn_in(Shape{5, 64}, rng, 0.2f), randn_in(Shape{5}, rng)}, Tol{1e-4},
               Tol{1e-4});
  check_parity("linear no bias", [](const std::vector<Tensor>& v) { return linear(v[0], v[1], Tensor()); },
               {randn_in(Shape{100, 800}, rng), randn_in(Shape{20, 800}, rng, 0.05f)}, Tol{1e-4}, Tol{1e-4});
}

TEST_CASE("parity: drop_path with the same mask stream", "[cuda][parity]") {
  Rng data(12);
  const In x = randn_in(Shape{20, 16, 7, 7}, data);
  Rng r_cpu(77), r_gpu(77);
  check_parity("drop_path",
               [&](const std::vector<Tensor>& v) { return drop_path(v[0], 0.3f, v[0].device() == kGpu ? r_gpu : r_cpu); },
               {x}, Tol{1e-5}, Tol{1e-5});
}

TEST_CASE("parity: a MetaNAS block chain (ReLU-depthwise-pointwise-BN) end to end", "[cuda][parity]") {
  Rng rng(13);
  const Conv2dOptions dw = opts(1, 1, 1, 1, 1, 1, 16, true);
  check_parity("sep-conv chain",
               [dw](const std::vector<Tensor>& v) {
                 Tensor h = conv2d(v[0], v[1], dw);
                 h = conv2d(h, v[2], Conv2dOptions{});
                 h = batch_norm(h, Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{});
                 return weighted_sum({h, max_pool2d(v[0], 3, 1, 1), avg_pool2d(v[0], 3, 1, 1)}, v[3]);
               },
               {randn_in(Shape{20, 16, 14, 14}, rng), randn_in(Shape{16, 1, 3, 3}, rng, 0.3f),
                randn_in(Shape{16, 16, 1, 1}, rng, 0.3f), In{Tensor::rand_uniform(Shape{3}, rng, 0.f, 1.f), true}},
               Tol{1e-3}, Tol{3e-3});
}

// ---------------------------------------------------------------- tensors and optimizers

TEST_CASE("parity: tensor copies and in-place helpers on the GPU", "[cuda][parity]") {
  Rng rng(14);
  const Tensor a = Tensor::randn(Shape{1000}, rng), b = Tensor::randn(Shape{1000}, rng);
  Tensor ga = a.to(kGpu);
  REQUIRE(ga.device() == kGpu);
  REQUIRE(bitwise_equal(ga.to_vector(), a.to_vector()));
  Tensor gc = ga.clone();
  gc.add_(b.to(kGpu), -0.5f).mul_(3.f);
  Tensor cc = a.clone();
  cc.add_(b, -0.5f).mul_(3.f);
  expect_close(gc, cc, Tol{1e-5}, "add_ / mul_");
  Tensor z = Tensor::zeros(Shape{17}, DType::F32, kGpu);
  z.fill_(2.5f);
  expect_close(z, Tensor::full(Shape{17}, 2.5f), Tol{0}, "fill_");
  z.zero_();
  expect_close(z, Tensor::zeros(Shape{17}), Tol{0}, "zero_");
  Tensor h = Tensor::zeros(Shape{1000});
  h.copy_(gc);  // device -> host
  expect_close(h, cc, Tol{1e-5}, "copy_ from the GPU");
  REQUIRE(Tensor::from_ints({3, -1, 7}, Shape{3}, kGpu).to_int_vector() == std::vector<int32_t>{3, -1, 7});
}

TEST_CASE("parity: SGD and Adam steps on a ParamSet moved to the GPU (with clipping)", "[cuda][parity]") {
  Rng rng(15);
  auto make = [](Device d) {
    ParamSet ps(d);
    ps.add("conv.w", Shape{16, 1, 3, 3});
    ps.add("bn.b", Shape{16});
    ps.add("fc.w", Shape{5, 64});
    ps.finalize();
    return ps;
  };
  const Tensor init = Tensor::randn(Shape{make(Device::CPU).numel()}, rng, 0.5f);
  for (int which = 0; which < 2; ++which) {
    ParamSet pc = make(Device::CPU), pg = make(Device::CPU);
    pc.values().copy_(init);
    pg.values().copy_(init);
    pg.to(kGpu);
    REQUIRE(pg.device() == kGpu);
    std::unique_ptr<Optimizer> oc, og;
    if (which == 0) {
      oc = std::make_unique<Sgd>(pc, 0.05f, 0.9f, 1e-3f);
      og = std::make_unique<Sgd>(pg, 0.05f, 0.9f, 1e-3f);
    } else {
      oc = std::make_unique<Adam>(pc, 0.01f, 0.9f, 0.99f, 1e-8f, 1e-3f);
      og = std::make_unique<Adam>(pg, 0.01f, 0.9f, 0.99f, 1e-8f, 1e-3f);
    }
    oc->max_grad_norm = og->max_grad_norm = 2.f;
    for (int step = 0; step < 5; ++step) {
      const Tensor g = Tensor::randn(Shape{pc.numel()}, rng, step == 2 ? 10.f : 0.5f);  // step 2 is clipped
      pc.grads().copy_(g);
      pg.grads().copy_(g);
      oc->step();
      og->step();
    }
    expect_close(pg.values(), pc.values(), Tol{1e-4}, which == 0 ? "SGD parameters" : "Adam parameters");
  }
}

TEST_CASE("mixing CPU and GPU tensors in one op is a clear error", "[cuda][parity]") {
  Rng rng(16);
  const Tensor a = Tensor::randn(Shape{4, 4}, rng), b = Tensor::randn(Shape{4, 4}, rng, 1.f, 0.f, kGpu);
  REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("different devices"));
  REQUIRE_THROWS_WITH(conv2d(a.reshape(Shape{1, 1, 4, 4}), b.reshape(Shape{1, 1, 4, 4})),
                      Catch::Contains("different devices"));
  REQUIRE_THROWS_AS(weighted_sum({a, a}, Tensor::ones(Shape{2}, kGpu)), Error);
}

// ---------------------------------------------------------------- determinism

TEST_CASE("determinism: mixed-op backward gives bitwise-equal dw run to run", "[cuda][determinism]") {
  Rng rng(17);
  const int K = 7;
  std::vector<Tensor> xs;
  for (int k = 0; k < K; ++k) xs.push_back(Tensor::randn(Shape{64, 32, 28, 28}, rng, 1.f, 0.f, kGpu));
  const Tensor up = Tensor::randn(Shape{64, 32, 28, 28}, rng, 1.f, 0.f, kGpu);
  const Tensor w0 = Tensor::rand_uniform(Shape{K}, rng, 0.f, 1.f, kGpu);
  std::vector<float> first;
  for (int run = 0; run < 3; ++run) {
    Tensor w = w0.clone();
    w.set_requires_grad();
    weighted_sum(xs, w).backward(up);
    const auto dw = bits_of(w.grad());
    if (run == 0)
      first = dw;
    else
      REQUIRE(bitwise_equal(dw, first));
  }
}

TEST_CASE("determinism: batch-norm, depthwise and reduction gradients are bitwise reproducible",
          "[cuda][determinism]") {
  Rng rng(18);
  const Tensor x0 = Tensor::randn(Shape{32, 16, 28, 28}, rng, 1.f, 0.f, kGpu);
  const Tensor w0 = Tensor::randn(Shape{16, 1, 3, 3}, rng, 0.3f, 0.f, kGpu);
  const Tensor g0 = Tensor::rand_uniform(Shape{16}, rng, 0.5f, 1.5f, kGpu);
  const Tensor up = Tensor::randn(Shape{32, 16, 28, 28}, rng, 1.f, 0.f, kGpu);
  std::vector<std::vector<float>> first;
  for (int run = 0; run < 3; ++run) {
    Tensor x = x0.clone(), w = w0.clone(), g = g0.clone();
    x.set_requires_grad();
    w.set_requires_grad();
    g.set_requires_grad();
    const Tensor h = conv2d(x, w, opts(1, 1, 1, 1, 1, 1, 16, true));
    const Tensor y = batch_norm(h, g, Tensor(), Tensor(), Tensor(), BatchNormOptions{});
    y.backward(up);
    NoGradGuard no_grad;
    const std::vector<std::vector<float>> got = {bits_of(y),      bits_of(x.grad()),      bits_of(w.grad()),
                                                 bits_of(g.grad()), bits_of(sum(y)), bits_of(sum_squares(x0))};
    if (run == 0) {
      first = got;
    } else {
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("result " << i << " (y, dx, dw, dgamma, sum, sum_squares)");
        REQUIRE(bitwise_equal(got[i], first[i]));
      }
    }
  }
}
