// The backend stream API on the CPU (ids, the thread's current stream,
// waits), GraphCache's capture / replay / invalidation decisions, and the
// device-resident step state that lets a graph replay at another step count
// or for another task (Adam's count and bias corrections, drop-path words):
// re-issuing a step's launches with the host arguments of an earlier step
// (what a replay does) must give the eager step's bits.
#include <catch2/catch.hpp>
#include <cmath>
#include <thread>

#include "metanas/engine/checkpoint.h"
#include "metanas/engine/ops.h"
#include "metanas/engine/optim.h"
#include "metanas/engine/random.h"
#include "metanas/kernels/philox.h"

#include "metanas/engine/extension.h"
#include "metanas/engine/graph_cache.h"
#include "metanas/engine/stream.h"

using namespace metanas;

TEST_CASE("CPU streams: ids, the current stream per thread, waits, errors", "[engine][streams]") {
  Backend& b = backend(Device::CPU);
  const int live0 = b.live_streams();
  REQUIRE(b.current_stream() == 0);
  {
    Stream s1(Device::CPU), s2(Device::CPU);
    CHECK(s1.id() != 0);
    CHECK(s2.id() != s1.id());
    CHECK(b.live_streams() == live0 + 2);
    {
      StreamGuard g(&s1);
      CHECK(b.current_stream() == s1.id());
      {
        StreamGuard g2(&s2);
        CHECK(b.current_stream() == s2.id());
      }
      CHECK(b.current_stream() == s1.id());
      // Another thread starts on the default stream.
      int other = -1;
      std::thread([&] { other = b.current_stream(); }).join();
      CHECK(other == 0);
      // Work still runs (in issue order on the CPU).
      Tensor t = Tensor::from_vector({1.f, 2.f}, Shape{2});
      t.add_(t, 1.f);
      CHECK(t.to_vector() == std::vector<float>{2.f, 4.f});
    }
    CHECK(b.current_stream() == 0);
    const uint64_t w0 = b.stream_waits();
    s1.fork();
    s2.join();
    CHECK(b.stream_waits() == w0 + 2);
    StreamGuard null_guard(nullptr);  // no stream: no change
    CHECK(b.current_stream() == 0);
  }
  CHECK(b.live_streams() == live0);
  CHECK_THROWS_WITH(b.set_stream(63), Catch::Contains("not a live stream"));
  CHECK_THROWS_WITH(b.destroy_stream(0), Catch::Contains("default stream"));
  CHECK_THROWS_WITH(b.stream_wait(0, 62), Catch::Contains("not a live stream"));
  // Destroying the current stream returns the thread to the default stream.
  const int id = b.create_stream();
  b.set_stream(id);
  b.destroy_stream(id);
  CHECK(b.current_stream() == 0);
  // The CPU records no graphs.
  CHECK_FALSE(b.supports_graphs());
  CHECK_THROWS_WITH(b.begin_capture(), Catch::Contains("does not record graphs"));
}

TEST_CASE("GraphCache: eager, capture, replay; uncapturable keys; a new version drops the graphs",
          "[engine][graphs]") {
  using A = GraphCache::Action;
  GraphCache c(2);
  GraphKey k1, k2, k3;
  k1.add(1).add_float(0.5f);
  k2.add(2).add_float(0.5f);
  k3.add(3);
  CHECK_FALSE(k1 == k2);

  CHECK(c.decide(k1, 7) == A::Eager);
  c.after_eager(k1, true);
  CHECK(c.decide(k1, 7) == A::Capture);
  c.captured(k1, 11);
  CHECK(c.decide(k1, 7) == A::Replay);
  CHECK(c.graph_of(k1) == 11);
  CHECK(c.live_graphs() == 1);

  // A run that synchronised or uploaded is never captured.
  CHECK(c.decide(k2, 7) == A::Eager);
  c.after_eager(k2, false);
  CHECK(c.decide(k2, 7) == A::Eager);
  CHECK(c.decide(k2, 7) == A::Eager);
  CHECK(c.stats().uncapturable == 1);

  // A failed capture: eager for good.
  CHECK(c.decide(k3, 7) == A::Eager);
  c.after_eager(k3, true);
  CHECK(c.decide(k3, 7) == A::Capture);
  c.capture_failed(k3);
  CHECK(c.decide(k3, 7) == A::Eager);
  CHECK(c.take_retired().empty());

  // The plan changed: graph 11 is dropped, every key starts over.
  CHECK(c.decide(k1, 8) == A::Eager);
  CHECK(c.take_retired() == std::vector<int>{11});
  CHECK(c.take_retired().empty());
  CHECK(c.stats().invalidated == 1);
  CHECK(c.live_graphs() == 0);
  c.after_eager(k1, true);
  CHECK(c.decide(k2, 8) == A::Eager);  // the old verdict is gone too
  c.after_eager(k2, true);
  CHECK(c.decide(k3, 8) == A::Eager);
  c.after_eager(k3, true);

  // At most 2 live graphs: capturing a third drops the oldest.
  CHECK(c.decide(k1, 8) == A::Capture);
  c.captured(k1, 21);
  CHECK(c.decide(k2, 8) == A::Capture);
  c.captured(k2, 22);
  CHECK(c.decide(k3, 8) == A::Capture);
  c.captured(k3, 23);
  CHECK(c.take_retired() == std::vector<int>{21});
  CHECK(c.stats().evicted == 1);
  CHECK(c.decide(k1, 8) == A::Eager);  // evicted: starts over
  CHECK(c.decide(k3, 8) == A::Replay);
  c.clear();
  CHECK(c.take_retired() == std::vector<int>{22, 23});
  // Counts: 17 decisions above (k1 E C R, k2 E E E, k3 E C E; after the new
  // version k1 k2 k3 E, then C C C; k1 E, k3 R).
  const auto& s = c.stats();
  CHECK(s.eager == 10);
  CHECK(s.captures == 5);
  CHECK(s.replays == 2);
}

namespace {

ParamSet small_set() {
  ParamSet ps;
  ps.add("w", {5});
  ps.add("b", {3});
  ps.finalize();
  std::vector<float> v(8);
  for (int i = 0; i < 8; ++i) v[i] = 0.3f * std::cos(1.f + i) - 0.1f;
  ps.values().copy_(Tensor::from_vector(v, Shape{8}));
  return ps;
}

void set_grad(ParamSet& ps, int s) {
  std::vector<float> g(8);
  for (int i = 0; i < 8; ++i) g[i] = std::sin(0.7f * i + 1.3f * s) * (1.f + 0.5f * i);
  ps.grads().copy_(Tensor::from_vector(g, Shape{8}));
}

std::vector<int32_t> count_of(const Adam& o) { return o.device_count().to_int_vector(); }

}  // namespace

TEST_CASE("Adam's step count and bias corrections live on the device; a re-issued step equals an eager one",
          "[engine][graphs]") {
  Backend& be = backend(Device::CPU);
  ParamSet pa = small_set(), pb = small_set(), pc = small_set();
  Adam a(pa, 0.01f, 0.9f, 0.99f, 1e-8f, 0.01f), b(pb, 0.01f, 0.9f, 0.99f, 1e-8f, 0.01f);
  CHECK_FALSE(a.device_count().defined());
  set_grad(pa, 0);
  a.step();
  CHECK(count_of(a) == std::vector<int32_t>{1, 0});
  // The bias corrections of t = 1 exactly as the host formula (double pow).
  CHECK(a.device_bias().to_vector() ==
        std::vector<float>{static_cast<float>(1.0 - std::pow(static_cast<double>(0.9f), 1.0)), static_cast<float>(1.0 - std::pow(static_cast<double>(0.99f), 1.0))});
  set_grad(pb, 0);
  b.step();
  // The launches of a's step 2, recorded with their host arguments ...
  const float lr = a.lr(), b1 = a.beta1, b2 = a.beta2, eps = a.eps, wd = a.weight_decay;
  int32_t* cnt = const_cast<int32_t*>(a.device_count().data_i32());
  float* bias = const_cast<float*>(a.device_bias().data());
  auto reissue = [&] {
    be.adam_count(cnt, b1, b2, bias);
    be.adam_step_biased(pa.values().data(), pa.grads().data(), const_cast<float*>(a.exp_avg().data()),
                        const_cast<float*>(a.exp_avg_sq().data()), pa.numel(), lr, b1, b2, eps, wd, bias, nullptr);
    a.count_replayed_step();
  };
  // ... and re-issued at steps 2..5 (a replay: no host code) give b's eager bits.
  for (int s = 1; s < 5; ++s) {
    set_grad(pa, s);
    set_grad(pb, s);
    reissue();
    b.step();
    INFO("step " << s + 1);
    REQUIRE(pa.values().to_vector() == pb.values().to_vector());
    REQUIRE(a.exp_avg_sq().to_vector() == b.exp_avg_sq().to_vector());
    REQUIRE(count_of(a) == count_of(b));
    REQUIRE(a.steps() == b.steps());
  }
  CHECK(count_of(a) == std::vector<int32_t>{5, 0});
  // The CPU bits are the host-scalar kernel's (the update before issue 16's
  // device count): five adam_step calls with host bias corrections.
  {
    Tensor m = Tensor::zeros(Shape{8}), v = Tensor::zeros(Shape{8});
    for (int s = 0; s < 5; ++s) {
      set_grad(pc, s);
      const double t = s + 1;
      be.adam_step(pc.values().data(), pc.grads().data(), m.data(), v.data(), 8, 0.01f, 0.9f, 0.99f, 1e-8f, 0.01f,
                   static_cast<float>(1.0 - std::pow(static_cast<double>(0.9f), t)), static_cast<float>(1.0 - std::pow(static_cast<double>(0.99f), t)), nullptr);
    }
    CHECK(pc.values().to_vector() == pb.values().to_vector());
  }
  // A loaded count lands in the live device count (its address kept).
  Checkpoint ck;
  b.save_state(ck, "o.");
  const int32_t* addr = a.device_count().data_i32();
  a.reset_state();
  set_grad(pa, 0);
  a.step();  // a fresh state: the count restarts at 1, same buffer
  CHECK(count_of(a) == std::vector<int32_t>{1, 0});
  CHECK(a.device_count().data_i32() == addr);
  a.load_state(ck, "o.");
  CHECK(count_of(a) == std::vector<int32_t>{5, 0});
  CHECK(a.device_count().data_i32() == addr);
  ParamSet pd = small_set();
  Adam d(pd, 0.5f);
  d.load_state(ck, "o.");  // never stepped: the count is made from the loaded one
  CHECK(count_of(d) == std::vector<int32_t>{5, 0});
  pa.values().copy_(pb.values());
  pd.values().copy_(pb.values());
  set_grad(pa, 5);
  set_grad(pb, 5);
  set_grad(pd, 5);
  a.step();
  b.step();
  d.step();
  CHECK(pa.values().to_vector() == pb.values().to_vector());
  CHECK(pd.values().to_vector() == pb.values().to_vector());
  CHECK(count_of(d) == std::vector<int32_t>{6, 0});
  // The high word carries (counts past 2^32, as the checkpoint stores them).
  int32_t w[2] = {-1, 0};  // 2^32 - 1
  float bc[2];
  be.adam_count(w, 0.9f, 0.999f, bc);
  CHECK(w[0] == 0);
  CHECK(w[1] == 1);
  CHECK(bc[0] == 1.f);
}

TEST_CASE("drop-path with the key's seed and task as device words: the key's masks, re-issued for another task",
          "[engine][graphs]") {
  Rng rng(3);
  const Tensor x = Tensor::randn(Shape{64, 3}, rng);
  const PhiloxKey k1{0x0123456789abcdefull, 4, 2, 17}, k2{0xfedcba9876543210ull, 7, 2, 17};
  auto words = [](const PhiloxKey& k) {
    return Tensor::from_ints({static_cast<int32_t>(static_cast<uint32_t>(k.seed)),
                              static_cast<int32_t>(static_cast<uint32_t>(k.seed >> 32)), static_cast<int32_t>(k.task)},
                             Shape{3});
  };
  Tensor w = words(k1);
  // The host key's seed and task are ignored when words are given.
  PhiloxKey stale = k1;
  stale.seed = 99;
  stale.task = 0;
  const Tensor y1 = drop_path(x, 0.3f, stale, w);
  CHECK(y1.to_vector() == drop_path(x, 0.3f, k1).to_vector());
  // Another task's words in the same buffer, the same launch (step, op, the
  // buffer's address): the other key's masks.
  w.copy_(words(k2));
  const Tensor y2 = drop_path(x, 0.3f, stale, w);
  CHECK(y2.to_vector() == drop_path(x, 0.3f, k2).to_vector());
  CHECK(y2.to_vector() != y1.to_vector());
  // The kernel is the formula (philox_key_from_words).
  std::vector<float> sc(64);
  backend(Device::CPU).drop_path_scales_at(w.data_i32(), 2, 17, 0.3f, sc.data(), 64);
  for (uint32_t i = 0; i < 64; ++i) REQUIRE(sc[i] == kernels::drop_path_scale(k2, 0.3f, i));
  CHECK_THROWS_WITH(drop_path(x, 0.3f, k1, Tensor::zeros(Shape{3})), Catch::Contains("key words must be int32"));
}
