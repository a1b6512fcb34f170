// Per-task streams and CUDA-graph capture on the GPU (issue 16 items 2-3;
// they run in scripts/gpu-check.sh's parity steps, not yet on hardware):
// work issued on two streams between a fork and a join gives the default
// stream's bits, and a captured chain of ops replays on new inputs with the
// eager result; a readback inside a capture is refused and the capture
// dropped.
#include <catch2/catch.hpp>
#include <vector>

#include "metanas/engine/extension.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/optim.h"
#include "metanas/engine/random.h"
#include "metanas/engine/stream.h"
#include "metanas/engine/tensor.h"

using namespace metanas;

namespace {
constexpr Device kGpu = Device::CUDA;

// A small chain with a GEMM (cuBLAS on the stream's handle) and reductions.
Tensor chain(const Tensor& x, const Tensor& w) {
  Tensor h = relu(linear(x, w, Tensor()));
  return add(mul_scalar(h, 0.5f), linear(h, w, Tensor()));
}
}  // namespace

TEST_CASE("streams: two tasks on their own streams give the default stream's bits", "[cuda][streams]") {
  Rng rng(41);
  const Tensor x1 = Tensor::randn(Shape{64, 96}, rng).to(kGpu), x2 = Tensor::randn(Shape{64, 96}, rng).to(kGpu);
  const Tensor w = Tensor::randn(Shape{96, 96}, rng).to(kGpu);
  const std::vector<float> r1 = chain(x1, w).to_vector(), r2 = chain(x2, w).to_vector();
  Stream s1(kGpu), s2(kGpu);
  s1.fork();
  s2.fork();
  Tensor y1, y2;
  for (int rep = 0; rep < 3; ++rep) {  // blocks freed on a stream are reused by that stream only
    {
      StreamGuard g(&s1);
      y1 = chain(x1, w);
    }
    {
      StreamGuard g(&s2);
      y2 = chain(x2, w);
    }
  }
  s1.join();
  s2.join();
  REQUIRE(y1.to_vector() == r1);
  REQUIRE(y2.to_vector() == r2);
}

TEST_CASE("graphs: a captured chain replays on new inputs; a readback inside a capture is refused",
          "[cuda][graphs]") {
  Backend& b = backend(kGpu);
  REQUIRE(b.supports_graphs());
  Rng rng(43);
  Stream s(kGpu);
  s.fork();
  StreamGuard on(&s);
  Tensor x = Tensor::randn(Shape{32, 64}, rng).to(kGpu);
  const Tensor w = Tensor::randn(Shape{64, 64}, rng).to(kGpu);
  (void)chain(x, w).to_vector();  // warm (cuBLAS, the allocator)
  const uint64_t syncs0 = b.host_syncs();
  b.begin_capture();
  Tensor y = chain(x, w);  // recorded; y lives in the graph's pool
  const int g = b.end_capture();
  REQUIRE(b.host_syncs() == syncs0);
  for (int rep = 0; rep < 3; ++rep) {
    const Tensor xn = Tensor::randn(Shape{32, 64}, rng);
    x.copy_(xn);  // the graph reads x's buffer: new contents, same address
    b.replay(g);
    REQUIRE(y.to_vector() == chain(x, w).to_vector());
  }
  b.destroy_graph(g);

  b.begin_capture();
  Tensor z = chain(x, w);
  REQUIRE_THROWS_WITH(z.to_vector(), Catch::Contains("inside a graph capture"));
  b.abort_capture();
  REQUIRE(chain(x, w).to_vector().size() == 32u * 64u);  // the stream works after the dropped capture
}

TEST_CASE("graphs: a captured Adam step and drop-path replay at later counts and for another task's words",
          "[cuda][graphs]") {
  // Adam's count and bias corrections and the drop-path seed and task are
  // read on the device (issue 16, "graph keys that repeat"): replaying one
  // captured step must give the eager steps at t = 2, 3, 4 (the CPU's Adam
  // within float rounding of its bias corrections) and the CPU's masks for
  // new words, bit for bit.
  Backend& b = backend(kGpu);
  REQUIRE(b.supports_graphs());
  Rng rng(47);
  auto make = [&](Device d) {
    ParamSet ps(d);
    ps.add("w", {300});
    ps.finalize();
    return ps;
  };
  ParamSet pg = make(kGpu), pc = make(Device::CPU);
  const Tensor v0 = Tensor::randn(Shape{300}, rng);
  pg.values().copy_(v0);
  pc.values().copy_(v0);
  Adam ag(pg, 0.01f, 0.9f, 0.99f), ac(pc, 0.01f, 0.9f, 0.99f);
  Tensor x = Tensor::randn(Shape{40, 8}, rng).to(kGpu);
  Tensor words = Tensor::from_ints({11, 12, 3}, Shape{3}).to(kGpu);
  const PhiloxKey step_key{0, 0, 2, 5};  // seed and task come from the words
  auto grad = [&](int s) { return Tensor::full(Shape{300}, 0.1f * static_cast<float>(s + 1)); };
  pg.grads().copy_(grad(0));
  pc.grads().copy_(grad(0));
  ag.step();  // t = 1, eager (creates the state)
  ac.step();
  Stream s(kGpu);
  s.fork();
  StreamGuard on(&s);
  b.begin_capture();
  ag.step();
  Tensor y = drop_path(x, 0.4f, step_key, words);
  const int g = b.end_capture();
  for (int t = 2; t <= 4; ++t) {
    pg.grads().copy_(grad(t - 1));
    pc.grads().copy_(grad(t - 1));
    const int32_t task = 3 + t;
    words.copy_(Tensor::from_ints({11 * t, 12, task}, Shape{3}));
    b.replay(g);
    if (t > 2) ag.count_replayed_step();  // the capture ran step 2's host code
    ac.step();
    REQUIRE(ag.steps() == t);
    REQUIRE(ag.device_count().to_int_vector() == std::vector<int32_t>{t, 0});
    const std::vector<float> gv = pg.values().to_vector(), cv = pc.values().to_vector();
    for (size_t i = 0; i < gv.size(); ++i) REQUIRE(gv[i] == Approx(cv[i]).epsilon(1e-5).margin(1e-6));
    const PhiloxKey k{static_cast<uint64_t>(11 * t) | uint64_t{12} << 32, static_cast<uint32_t>(task), 2, 5};
    REQUIRE(y.to_vector() == drop_path(x.to(Device::CPU), 0.4f, k).to_vector());
  }
  b.destroy_graph(g);
}
