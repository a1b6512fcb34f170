// meta-step-bench: seconds per meta-iteration of the MetaNAS Omniglot 20-way
// 1-shot preset (search network C=28, 4 cells, 3 nodes; meta-batch 10, 5
// inner steps, support mini-batches of 20, DARTS task optimizer, REPTILE meta
// update), on the CPU or CUDA. Two phases are timed:
//   search : after warm-up: each inner step = architecture step + weight step
//            (2 forward+backward), what ../shared/bench/metanas_torch.py times
//            with its default --inner-mode alternating;
//   warmup : during warm-up: weight steps only (1 forward+backward).
// Episodes come from the built-in synthetic dataset and are drawn outside
// the timed region; the timed region ends with a device synchronisation.
// Also reported: host synchronisations per inner step (host_syncs(): the
// meta-step's copies to the host, synchronize() calls and uploads that had to
// wait, divided by meta-batch x inner steps; on the CPU the calls that would
// synchronise on a GPU). Target: at most 1.
//
//   meta-step-bench [--device cpu|cuda] [--iters N] [--warmup N] [--threads N]
//                   [--phase search|warmup|both] [--config FILE] [--json FILE]
//
// Not a test: run it on a quiet machine and compare with the PyTorch
// reference at the same thread count (docs/results.md).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bin/common/args.h"
#include "bin/common/config.h"
#include "bin/common/main.h"
#include "metanas/datasets/episode.h"
#include "metanas/datasets/synthetic.h"
#include "metanas/engine/extension.h"
#include "metanas/engine/device.h"
#include "metanas/meta/learner.h"

using namespace metanas;
using namespace metanas::cli;
using nlohmann::json;

namespace {

const char* kProgram = "meta-step-bench";

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int run(int argc, char** argv) {
  ArgParser args(kProgram, "[options]",
                 "Seconds per meta-iteration of the MetaNAS Omniglot 20-way 1-shot preset\n"
                 "(meta-batch 10, 5 inner steps, batch 20), after warm-up (architecture + weight\n"
                 "steps) and during warm-up (weight steps only).",
                 {{"--device", "DEV", "cpu | cuda (default cpu; cuda falls back to cpu with a notice)"},
                  {"--iters", "N", "timed meta-iterations per phase (default 3)"},
                  {"--warmup", "N", "untimed meta-iterations first (default 1)"},
                  {"--threads", "N", "CPU threads (default: OMP_NUM_THREADS or all cores)"},
                  {"--phase", "NAME", "search | warmup | both (default both)"},
                  {"--config", "FILE", "another configuration (default: the built-in MetaNAS Omniglot\n20-way 1-shot setting, which configs/omniglot-20w1s.json also holds)"},
                  {"--task-streams", "", "per-task streams (run.task_streams; turns meta.task_parallel on)"},
                  {"--graphs", "", "CUDA graphs of the inner steps (run.cuda_graphs)"},
                  {"--json", "FILE", "write the results as JSON"},
                  {"--help", "", "this text"}});
  args.parse(argc, argv);
  if (args.has("--help")) {
    std::fputs(args.help().c_str(), stdout);
    return 0;
  }
  MN_USAGE_CHECK(args.overrides().empty() && args.positional().empty(), "unknown option '",
                 args.overrides().empty() ? args.positional()[0] : "--" + args.overrides()[0].first, "'");
  const int iters = static_cast<int>(parse_int_flag("--iters", args.get("--iters", "3")));
  const int warm = static_cast<int>(parse_int_flag("--warmup", args.get("--warmup", "1")));
  MN_USAGE_CHECK(iters >= 1 && warm >= 0, "--iters must be >= 1 and --warmup >= 0");
  const int threads = set_threads(static_cast<int>(parse_int_flag("--threads", args.get("--threads", "0"))));
  const std::string phase = args.get("--phase", "both");
  MN_USAGE_CHECK(phase == "search" || phase == "warmup" || phase == "both", "--phase must be search, warmup or both");
  const Device device = resolve_device(parse_device(args.get("--device", "cpu")));

  meta::MetaConfig base;  // defaults = MetaNAS Omniglot 20-way 1-shot
  if (args.has("--config")) base = ProgramConfig::from_file(args.get("--config")).meta;
  const meta::ExecutionOptions exec{args.has("--task-streams"), args.has("--graphs")};
  if (exec.task_streams) base.meta.task_parallel = true;  // streams need the task-parallel semantics
  const auto [in_ch, size] = std::pair<int, int>(base.model.search.in_channels, base.model.search.image_size);

  // Synthetic episodes of the preset's shape (the pixels do not matter for timing).
  data::SyntheticOptions so;
  so.num_alphabets = 4;
  so.classes_per_alphabet = std::max(30, base.episodes.ways);
  so.drawers = std::max(20, base.episodes.train_shots + base.episodes.queries);
  so.size = size;
  data::Dataset ds = data::make_synthetic_split(so, "train");
  MN_CHECK(in_ch == 1 || base.model.kind != meta::ModelKind::Search,
           "meta-step-bench: the synthetic data is 1-channel; use a 1-channel configuration");

  std::printf("meta-step-bench: %s, %d threads; %d-way, support %d/class, batch %d, meta-batch %d, %d inner steps\n",
              device_name(device), threads, base.episodes.ways, base.episodes.train_shots, base.task.batch_size,
              base.meta.meta_batch_size, base.task.steps);
  json res = {{"device", device_name(device)},
              {"threads", threads},
              {"ways", base.episodes.ways},
              {"train_shots", base.episodes.train_shots},
              {"batch_size", base.task.batch_size},
              {"meta_batch_size", base.meta.meta_batch_size},
              {"inner_steps", base.task.steps},
              {"query_eval", base.meta.query_eval},
              {"iters", iters},
              {"warmup_iters", warm},
              {"task_parallel", base.meta.task_parallel},
              {"task_streams", exec.task_streams},
              {"cuda_graphs", exec.cuda_graphs}};

  for (const std::string ph : {"search", "warmup"}) {
    if (phase != "both" && phase != ph) continue;
    meta::MetaConfig cfg = base;
    cfg.meta.warmup_iterations = ph == "search" ? 0 : 1000000000;
    cfg.meta.iterations = std::max<int64_t>(cfg.meta.iterations, cfg.meta.warmup_iterations);
    cfg.meta.prune_every = 0;  // pruning would change the work done from one iteration to the next
    auto learner = meta::make_meta_learner(cfg, device);
    learner->set_execution(exec);
    data::EpisodeSampler sampler(ds, cfg.episodes.ways, cfg.episodes.train_shots, cfg.episodes.queries, 7, device);
    std::vector<double> times, syncs;
    for (int it = 0; it < warm + iters; ++it) {
      std::vector<data::Episode> tasks(cfg.meta.meta_batch_size);
      for (auto& t : tasks) t = sampler.sample();
      backend(device).synchronize();
      const double t0 = now_s();
      const uint64_t s0 = host_syncs(device);
      const meta::MetaStepStats st = learner->meta_step(tasks);
      const uint64_t s1 = host_syncs(device);
      backend(device).synchronize();
      const double t1 = now_s();
      const double per_step =
          static_cast<double>(s1 - s0) / std::max(1, cfg.meta.meta_batch_size * cfg.task.steps);
      std::printf("  %s meta-iteration %d (%s): %.3f s, %.2f host syncs per inner step (query loss %.3f)\n",
                  ph.c_str(), it, it < warm ? "untimed" : "timed", t1 - t0, per_step, st.query_loss_value());
      std::fflush(stdout);
      if (it >= warm) {
        times.push_back(t1 - t0);
        syncs.push_back(per_step);
      }
    }
    const double med = median(times);
    std::printf("%s phase: median %.3f s per meta-iteration (min %.3f, max %.3f, n=%d)\n", ph.c_str(), med,
                *std::min_element(times.begin(), times.end()), *std::max_element(times.begin(), times.end()),
                static_cast<int>(times.size()));
    std::printf("%s phase: %.2f host syncs per inner step (median)\n", ph.c_str(), median(syncs));
    res[ph] = {{"median_s", med}, {"times_s", times}, {"host_syncs_per_inner_step", median(syncs)}};
    if (exec.cuda_graphs) {
      const GraphCache::Stats gs = learner->graph_stats();
      const GraphCache::Stats* g = &gs;
      std::printf("%s phase: graphs: %llu eager, %llu captures, %llu replays, %llu not capturable%s\n", ph.c_str(),
                  static_cast<unsigned long long>(g->eager), static_cast<unsigned long long>(g->captures),
                  static_cast<unsigned long long>(g->replays), static_cast<unsigned long long>(g->uncapturable),
                  backend(device).supports_graphs() ? "" : " (this backend runs them eagerly)");
      res[ph]["graphs"] = {{"eager", g->eager}, {"captures", g->captures}, {"replays", g->replays},
                           {"uncapturable", g->uncapturable}, {"device_graphs", backend(device).supports_graphs()}};
    }
  }
  if (args.has("--json")) {
    std::ofstream f(args.get("--json"), std::ios::trunc);
    MN_CHECK(f, "cannot write '", args.get("--json"), "'");
    f << res.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main(kProgram, [&] { return run(argc, argv); });
}
