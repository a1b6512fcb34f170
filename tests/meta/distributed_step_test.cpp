// Distributed meta-steps without MPI: the task-slot assignment, FOMAML's
// task-parallel semantics against a hand-written double-precision reference,
// and REPTILE / FOMAML on 2 and 3 simulated ranks (one thread each, a
// communicator over shared memory) bitwise equal to the single process; the
// all-reduce mode close to it.
#include <catch2/catch.hpp>
#include <omp.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "metanas/meta/dist/communicator.h"
#include "metanas/meta/dist/task_slots.h"
#include "metanas/meta/fomaml.h"
#include "metanas/meta/reptile.h"
#include "metanas/nas/search_network.h"
#include "tests/meta/fixtures.h"
#include "tests/meta/tiny_model.h"

using namespace metanas;
using namespace metanas::testing;

TEST_CASE("task slots: contiguous blocks in task order, the first B % N ranks one larger", "[meta][dist]") {
  for (int B = 1; B <= 11; ++B)
    for (int N = 1; N <= 5; ++N) {
      const meta::dist::TaskSlots s(B, N);
      int next = 0, total = 0;
      for (int r = 0; r < N; ++r) {
        CHECK(s.begin(r) == next);
        CHECK(s.count(r) == B / N + (r < B % N ? 1 : 0));
        CHECK(s.count(r) <= s.max_per_rank());
        for (int t = s.begin(r); t < s.end(r); ++t) {
          CHECK(s.owner(t) == r);
          CHECK(s.owns(r, t));
          CHECK(s.gathered_slot(t) == r * s.max_per_rank() + (t - s.begin(r)));
        }
        next = s.end(r);
        total += s.count(r);
      }
      CHECK(total == B);
    }
  const meta::dist::TaskSlots ten(10, 4);  // the example of task_slots.h
  CHECK((ten.begin(2) == 6 && ten.end(2) == 8 && ten.begin(3) == 8 && ten.max_per_rank() == 3));
}

TEST_CASE("task-parallel FOMAML equals a reference with per-task copies of the start state", "[meta][dist]") {
  constexpr int D = 3, K = 3;
  Rng rng(19);
  auto model = std::make_unique<TinyModel>(D, K, rng);
  meta::MetaConfig cfg = tiny_config(K);
  cfg.algorithm = meta::Algorithm::Fomaml;
  cfg.task.steps = 2;
  cfg.task.t_max = 1.0;
  cfg.task.t_min = 0.4;
  cfg.task.darts.w_lr = 0.1f;
  cfg.task.darts.a_lr = 0.05f;
  cfg.meta.optimizer = meta::MetaOptimizer::Sgd;
  cfg.meta.w_lr = 0.5f;
  cfg.meta.a_lr = 0.3f;
  cfg.meta.task_parallel = true;
  TinyParams meta_ref = TinyParams::of(*model);
  meta::Fomaml learner(cfg, std::move(model));
  RefAdam aw{0.1, 0.0, 0.999}, aa{0.05, 0.0, 0.999};
  aw.clip = cfg.task.darts.w_grad_clip;
  aa.wd = cfg.task.darts.a_weight_decay;
  for (int it = 0; it < 3; ++it) {
    std::vector<data::Episode> eps;
    for (int t = 0; t < 3; ++t) eps.push_back(tiny_episode(D, K, 2, 2, rng));
    TinyParams gsum = meta_ref;
    for (auto* v : gsum.all()) *v = 0;
    std::vector<RefAdam> end_w(eps.size(), aw), end_a(eps.size(), aa);
    for (size_t t = eps.size(); t-- > 0;) {  // reverse order: the tasks are independent
      TinyParams p = meta_ref;
      const TinyBatch b = tiny_batch(eps[t].support_x, eps[t].support_y);
      for (int s = 0; s < 2; ++s) {
        const double T = s == 0 ? 1.0 : 0.4;
        end_a[t].step(tiny_a(p), tiny_grad(p, b, T, D, K).a);
        end_w[t].step(tiny_w(p), tiny_wg(tiny_grad(p, b, T, D, K)));
      }
      const TinyParams gq = tiny_grad(p, tiny_batch(eps[t].query_x, eps[t].query_y), 0.4, D, K);
      auto gs = gsum.all();
      auto gg = const_cast<TinyParams&>(gq).all();
      for (size_t i = 0; i < gs.size(); ++i) *gs[i] += *gg[i] / eps.size();
    }
    for (RefAdam* r : {&aw, &aa}) {
      std::vector<RefAdam>& ends = r == &aw ? end_w : end_a;
      r->t = ends[0].t;
      r->m.assign(ends[0].m.size(), 0.0);
      r->v.assign(ends[0].v.size(), 0.0);
      for (const RefAdam& e : ends)
        for (size_t i = 0; i < e.m.size(); ++i) r->m[i] += e.m[i] / ends.size(), r->v[i] += e.v[i] / ends.size();
    }
    auto pm = meta_ref.all(), gs = gsum.all();
    const size_t nw = meta_ref.W.size() + meta_ref.b.size();
    for (size_t i = 0; i < pm.size(); ++i) *pm[i] -= (i < nw ? 0.5 : 0.3) * *gs[i];
    learner.meta_step(eps);
    INFO("iteration " << it);
    CHECK(max_diff(learner.meta_model(), meta_ref) < 2e-5);
  }
  CHECK(learner.task_learner().darts()->w_optimizer().steps() == 3 * 2);
}

namespace {

// N ranks as threads of this process: collectives over shared memory.
class SharedMemory {
 public:
  explicit SharedMemory(int n) : n_(n), floats_(n), bytes_(n) {}
  void barrier() {
    std::unique_lock<std::mutex> l(m_);
    const int gen = gen_;
    if (++waiting_ == n_) {
      waiting_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(l, [&] { return gen_ != gen; });
    }
  }
  int n_;
  std::vector<std::vector<float>> floats_;
  std::vector<std::string> bytes_;

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int waiting_ = 0, gen_ = 0;
};

class ThreadRank final : public meta::dist::Communicator {
 public:
  ThreadRank(SharedMemory& s, int rank) : s_(s), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return s_.n_; }
  std::string name() const override { return "threads"; }
  void allgather(const Tensor& send, Tensor& recv) override {
    s_.floats_[rank_] = send.to_vector();
    s_.barrier();
    std::vector<float> all;
    for (const auto& v : s_.floats_) all.insert(all.end(), v.begin(), v.end());
    s_.barrier();
    recv.copy_(Tensor::from_vector(all, recv.shape()));
  }
  void allreduce_sum(Tensor& buf) override {
    s_.floats_[rank_] = buf.to_vector();
    s_.barrier();
    std::vector<float> sum(s_.floats_[0].size(), 0.f);
    for (int r = s_.n_; r-- > 0;)  // another order than the gather's
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += s_.floats_[r][i];
    s_.barrier();
    buf.copy_(Tensor::from_vector(sum, buf.shape()));
  }
  std::vector<std::string> allgather_bytes(const std::string& mine) override {
    s_.bytes_[rank_] = mine;
    s_.barrier();
    std::vector<std::string> all = s_.bytes_;
    s_.barrier();
    return all;
  }
  [[noreturn]] void abort(int) override { std::abort(); }

 private:
  SharedMemory& s_;
  int rank_;
};

// Every parameter after 3 task-parallel meta-steps of a 3-task meta-batch on
// a small search network (drop-path, random batches), on `ranks` ranks.
std::vector<float> run_ranks(meta::Algorithm alg, int ranks, bool ordered) {
  SharedMemory shm(ranks);
  std::vector<std::vector<float>> out(ranks);
  auto body = [&](int rank) {
    omp_set_num_threads(1);
    Rng rng(29);
    meta::MetaConfig cfg = tiny_config(3);
    cfg.algorithm = alg;
    cfg.task.drop_path_prob = 0.2f;
    cfg.task.prune_threshold = 0.01f;
    cfg.task.steps = 2;
    cfg.task.batch_size = 4;
    cfg.meta.meta_batch_size = 3;
    cfg.meta.query_eval = true;
    cfg.meta.task_parallel = true;
    if (alg == meta::Algorithm::Fomaml) cfg.meta.optimizer = meta::MetaOptimizer::Adam, cfg.meta.w_lr = 0.01f;
    auto net = std::make_unique<nas::SearchNetwork>(tiny_search_config(1, 2), rng);
    auto learner = meta::make_meta_learner(cfg, std::move(net));
    learner->set_communicator(std::make_shared<ThreadRank>(shm, rank), ordered);
    const meta::dist::TaskSlots slots(3, ranks);
    float loss_sum = 0;
    for (int it = 0; it < 3; ++it) {
      std::vector<data::Episode> eps(3);
      for (int t = 0; t < 3; ++t) {
        data::Episode e = random_episode(rng, {0, 0, 1, 1, 2, 2}, {0, 1, 2});  // every rank draws every task
        if (slots.owns(rank, t)) eps[t] = e;
      }
      loss_sum += learner->meta_step(eps).query_loss_value();
    }
    std::vector<float> v = learner->meta_model().weights().values().to_vector();
    const std::vector<float> a = learner->meta_model().alphas()->values().to_vector();
    v.insert(v.end(), a.begin(), a.end());
    Checkpoint ck;
    learner->task_learner().save_state(ck, "");
    for (const auto& n : ck.names())
      if (ck.get(n).dtype() == DType::F32) {
        const std::vector<float> s = ck.get(n).to_vector();
        v.insert(v.end(), s.begin(), s.end());
      }
    v.push_back(loss_sum);
    out[rank] = v;
  };
  std::vector<std::thread> th;
  for (int r = 0; r < ranks; ++r) th.emplace_back(body, r);
  for (auto& t : th) t.join();
  for (int r = 1; r < ranks; ++r) REQUIRE(out[r] == out[0]);  // every rank holds the same state
  return out[0];
}

}  // namespace

TEST_CASE("REPTILE and FOMAML on 2 and 3 simulated ranks equal the single process bitwise", "[meta][dist]") {
  for (meta::Algorithm alg : {meta::Algorithm::Reptile, meta::Algorithm::Fomaml}) {
    INFO(meta::algorithm_name(alg));
    const std::vector<float> one = run_ranks(alg, 1, true);
    CHECK(run_ranks(alg, 2, true) == one);
    CHECK(run_ranks(alg, 3, true) == one);
    // All-reduce: the same up to rounding.
    const std::vector<float> red = run_ranks(alg, 3, false);
    REQUIRE(red.size() == one.size());
    double md = 0, scale = 0;
    for (size_t i = 0; i < one.size(); ++i)
      md = std::max(md, double(std::abs(red[i] - one[i]))), scale = std::max(scale, double(std::abs(one[i])));
    CHECK(md <= 1e-4 * std::max(1.0, scale));
  }
}

TEST_CASE("a distributed learner needs the task-parallel semantics", "[meta][dist]") {
  SharedMemory shm(2);
  Rng rng(3);
  meta::MetaConfig cfg = tiny_config(3);
  auto learner = meta::make_meta_learner(cfg, std::make_unique<TinyModel>(3, 3, rng));
  CHECK_THROWS_WITH(learner->set_communicator(std::make_shared<ThreadRank>(shm, 0)),
                    Catch::Contains("meta.task_parallel"));
}
