// The backend stream API on the CPU (ids, the thread's current stream,
// waits) and GraphCache's capture / replay / invalidation decisions.
#include <catch2/catch.hpp>
#include <thread>

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
