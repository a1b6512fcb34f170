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
