// meta-test: loads a meta-training checkpoint and meta-tests it: N tasks
// drawn from a dataset split (or a folder of one-shot runs), each adapted
// from the meta parameters (architecture + weights, then weights) and scored
// on its query set; prints mean accuracy with a 95% confidence interval and
// the chance level, and writes a JSON report. docs/cli.md has every flag.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/config.h"
#include "common/data.h"
#include "common/main.h"
#include "common/meta_rl_report.h"
#include "common/progress.h"
#include "common/ranks.h"
#include "metanas/datasets/episode.h"
#include "metanas/datasets/oneshot_runs.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/device.h"
#include "metanas/meta/dist/task_slots.h"
#include "metanas/meta/ensemble.h"
#include "metanas/meta/atnas.h"
#include "metanas/meta/atnas_split.h"
#include "metanas/meta/evaluator.h"
#include "metanas/meta/learner.h"
#include "metanas/meta/retrain_evaluator.h"

using namespace metanas;
using namespace metanas::cli;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kProgram = "meta-test";

std::vector<FlagSpec> flags() {
  const std::string io = "input and output", ev = "what to evaluate",
                    common = "common settings (each sets configuration keys)";
  return {
      {"--run", "DIR", "a meta-train run folder: evaluates DIR/checkpoint.mnck and writes\nDIR/report.json", io},
      {"--checkpoint", "FILE", "evaluate this checkpoint instead (e.g. DIR/checkpoint.prev.mnck)", io},
      {"--config", "FILE", "JSON keys applied on top of the configuration stored in the\ncheckpoint (e.g. other eval.* settings or another dataset)", io},
      {"--out", "DIR", "folder for the report (default: the run folder / the checkpoint's\nfolder)", io},
      {"--report", "FILE", "report path (default <out>/report.json)", io},
      {"--quiet", "", "print only the summary", io},
      {"--print-config", "", "print the resolved configuration and exit", io},
      {"--list-keys", "", "print every configuration key with its default value and exit", io},
      {"--help", "", "this text", io},
      {"--split", "NAME", "train | val | test (default test): the dataset split tasks come from", ev},
      {"--runs", "DIR", "evaluate the one-shot runs in DIR (run01/, run02/, ... as in Lake\net al.'s Omniglot runs) instead of sampled tasks", ev},
      {"--tasks", "N", "number of tasks (eval.tasks)", ev},
      {"--ensemble", "FILES", "comma-separated further checkpoints of the same model (e.g. the\nbest validation ones): every model adapts to each task and the\naveraged class probabilities decide (MAML++'s ensemble)", ev},
      {"--seed", "S", "seed of the test tasks and of their adaptation (default 0: every\ncheckpoint is scored on the same tasks)", ev},
      {"--ways", "N", "classes per task (must match the model: episodes.ways)", common},
      {"--shots", "K", "support images per class (episodes.shots)", common},
      {"--query", "Q", "query images per class (episodes.queries)", common},
      {"--dataset", "NAME", "synthetic | omniglot | miniimagenet (data.dataset)", common},
      {"--data", "PATH", "dataset folder (data.root)", common},
      {"--device", "DEV", "cpu | cuda (run.device)", common},
      {"--threads", "N", "CPU threads (run.threads)", common},
      {"--set", "KEY=VALUE", "set any configuration key, e.g. --set eval.arch_steps=20\n(repeatable)", "any configuration key"},
      {"--KEY", "VALUE", "the same as --set KEY=VALUE, e.g. --eval.weight_steps 50", "any configuration key"},
  };
}

const char* kDescription =
    "Meta-tests a checkpoint written by meta-train. Each task starts from the meta\n"
    "parameters (and the meta-training task-optimizer state, eval.restore_task_optimizer),\n"
    "adapts architecture and weights for eval.arch_steps steps, then the weights for\n"
    "eval.weight_steps steps, and is scored on its query set. The configuration is the\n"
    "one stored in the checkpoint, with --config / --KEY changes on top.";

const char* kEpilog =
    "Examples:\n"
    "  meta-test --run runs/quick\n"
    "  meta-test --run runs/og1 --data ~/data/omniglot --tasks 1000 --shots 5\n"
    "  meta-test --run runs/og1 --runs ~/data/omniglot/all_runs\n"
    "The report format is described in docs/cli.md.";

// eval.mode = retrain: every task's decoded genotype is retrained and scored
// (meta::RetrainEvaluator); the report holds both scores per task. Returns
// the headline.
std::string retrain_evaluation(const ProgramConfig& cfg, const meta::MetaConfig& mc, const std::string& split,
                               uint64_t test_seed, Device device, const Checkpoint& ck, const nas::Model& meta_model,
                               bool warmup, bool quiet, Stopwatch& clock, json& report,
                               meta::dist::Communicator& comm) {
  const data::Dataset ds = load_split(cfg.data, split);
  check_model_fits(mc, ds, "the " + split + " split");
  data::EpisodeSampler sampler(ds, mc.episodes.ways, mc.episodes.shots, mc.episodes.queries,
                               mix_seed(test_seed, kTestTasks), device);
  const meta::RetrainSection& rt = mc.eval.retrain;
  // The decoded networks meta-train on meta-train tasks (as the T-NAS code
  // trains each one from scratch with MAML).
  std::unique_ptr<data::EpisodeSampler> train_sampler;
  meta::TaskSource source;
  data::Dataset train_ds;
  if (rt.meta_iterations > 0) {
    train_ds = load_split(cfg.data, "train");
    check_model_fits(mc, train_ds, "the training split");
    train_sampler = std::make_unique<data::EpisodeSampler>(train_ds, mc.episodes.ways, mc.episodes.train_shots,
                                                           mc.episodes.queries, mix_seed(test_seed, kRetrainTasks),
                                                           device);
    source = [&] { return train_sampler->sample(); };
  }
  meta::RetrainEvaluator ev(meta_model, mc, mix_seed(test_seed, kTestAdapt), source);
  if (mc.eval.restore_task_optimizer) ev.soft().set_task_optimizer_state(ck, "task_opt.");
  ev.soft().set_warmup(warmup);
  const int n = mc.eval.tasks;
  if (!quiet) {
    std::printf("meta-test: %d tasks, %d-way %d-shot, %d queries per class, from the %s split of %s (%d classes)\n"
                "           decode and retrain: %d + %d one-shot adaptation steps, then the decoded network from\n"
                "           scratch: %lld FOMAML iterations on meta-train tasks, %d SGD steps (lr %g) on the support set\n",
                n, mc.episodes.ways, mc.episodes.shots, mc.episodes.queries, split.c_str(), cfg.data.dataset.c_str(),
                ds.num_classes(), mc.eval.arch_steps, mc.eval.weight_steps, static_cast<long long>(rt.meta_iterations),
                rt.steps, static_cast<double>(rt.lr));
    ev.on_new_network([&](const std::string& g, int64_t iters) {
      std::printf("  retraining network %d (%lld FOMAML iterations): %s\n", ev.networks_built() + 1,
                  static_cast<long long>(iters), g.c_str());
      std::fflush(stdout);
    });
  }
  const int every = std::max(1, n / 10);
  const int mine = mc.meta.task_parallel ? meta::dist::TaskSlots(n, comm.size()).count(comm.rank()) : n;
  double sum = 0, sum_soft = 0;
  auto progress = [&](int done, const meta::RetrainTaskResult& t) {
    sum += t.retrained.accuracy;
    sum_soft += t.soft.accuracy;
    if (!quiet && (done % every == 0 || done == mine)) {
      const double rate = done / std::max(1e-9, clock.seconds());
      std::printf("  task %d/%d: running accuracy %s retrained, %s soft | %.2f tasks/s | ETA %s\n", done, mine,
                  format_percent(sum / done).c_str(), format_percent(sum_soft / done).c_str(), rate,
                  format_duration((mine - done) / rate).c_str());
      std::fflush(stdout);
    }
  };
  // Task-parallel: the tasks split across the ranks; each genotype's network
  // meta-trains on its own stream of meta-train tasks (seeded by the
  // genotype), so the scores do not depend on the split.
  auto genotype_tasks = [&](const std::string& g) -> meta::TaskSource {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : g) h = (h ^ c) * 1099511628211ull;
    auto s = std::make_shared<data::EpisodeSampler>(train_ds, mc.episodes.ways, mc.episodes.train_shots,
                                                    mc.episodes.queries, mix_seed(mix_seed(test_seed, kRetrainTasks), h),
                                                    device);
    return [s] { return s->sample(); };
  };
  const meta::RetrainReport r = mc.meta.task_parallel ? ev.evaluate_split(sampler, n, comm, genotype_tasks, progress)
                                                      : ev.evaluate(sampler, n, progress);
  if (!quiet) std::fputs(r.summary().c_str(), stdout);
  report["source"] = {{"dataset", cfg.data.dataset}, {"root", cfg.data.root}, {"split", split},
                      {"classes", ds.num_classes()}};
  report["ways"] = mc.episodes.ways;
  report["shots"] = mc.episodes.shots;
  report["queries"] = mc.episodes.queries;
  report["tasks"] = r.retrained.tasks.size();
  report["accuracy"] = r.retrained.mean_accuracy;
  report["ci95"] = r.retrained.ci95;
  report["std"] = r.retrained.std_accuracy;
  report["soft_accuracy"] = r.soft.mean_accuracy;
  report["soft_ci95"] = r.soft.ci95;
  report["result"] = json::parse(r.to_json());
  return str_cat("accuracy ", format_percent(r.retrained.mean_accuracy), " +- ", format_percent(r.retrained.ci95),
                 " decoded and retrained (soft one-shot ", format_percent(r.soft.mean_accuracy), " +- ",
                 format_percent(r.soft.ci95), "; 95% CI over ", r.retrained.tasks.size(), " tasks); chance ",
                 format_percent(1.0 / mc.episodes.ways));
}

int run(int argc, char** argv) {
  ArgParser args(kProgram, "--run DIR | --checkpoint FILE [options] [--KEY VALUE ...]", kDescription, flags(),
                 kEpilog);
  args.parse(argc, argv);
  if (args.has("--help")) {
    std::fputs(args.help().c_str(), stdout);
    return 0;
  }
  if (args.has("--list-keys")) {
    std::fputs(keys_listing(ProgramConfig{}).c_str(), stdout);
    return 0;
  }
  MN_USAGE_CHECK(args.positional().empty(), "unexpected argument '",
                 args.positional().empty() ? "" : args.positional()[0], "'");
  const std::string run_dir = args.get("--run");
  std::string ck_path = args.get("--checkpoint");
  MN_USAGE_CHECK(!run_dir.empty() || !ck_path.empty(), "give the run folder (--run DIR) or a checkpoint (--checkpoint FILE)");
  if (ck_path.empty()) ck_path = checkpoint_path(run_dir);
  MN_USAGE_CHECK(fs::exists(ck_path), "checkpoint '", ck_path, "' does not exist",
                 run_dir.empty() ? "" : " (has meta-train written a checkpoint into this folder yet?)");
  const std::string split = args.get("--split", "test");
  const std::string runs_dir = args.get("--runs");
  uint64_t test_seed = 0;
  if (args.has("--seed")) test_seed = parse_u64_flag("--seed", args.get("--seed"));

  // ---- checkpoint and configuration ----
  const Checkpoint ck = Checkpoint::load(ck_path);
  json meta;
  try {
    meta = json::parse(ck.metadata_json());
  } catch (const std::exception& e) {
    MN_THROW(ck_path, ": metadata is not valid JSON: ", e.what());
  }
  ProgramConfig cfg;
  if (meta.contains("program") && meta["program"].contains("config")) {
    cfg.merge(meta["program"]["config"]);
  } else {
    MN_CHECK(meta.contains("meta_learner") && meta["meta_learner"].contains("config"), ck_path,
             ": no configuration in the checkpoint (not written by meta-train or MetaLearner::save?)");
    // Only the library's part is stored: without the program's data section
    // the defaults would choose the test data, so the user must name it.
    MN_CHECK(args.has("--config") || args.has("--dataset") || !runs_dir.empty(), ck_path,
             ": the checkpoint has no program configuration (it was not written by meta-train), so it does "
             "not say which data it was trained on; name the test data with --dataset/--data, --config FILE "
             "or --runs DIR");
    cfg.merge(meta["meta_learner"]["config"]);
  }
  if (args.has("--config")) {
    const std::string p = args.get("--config");
    const json j = ProgramConfig::read_json_file(p);
    try {
      cfg.merge(j);
    } catch (const Error& e) {
      throw UsageError(str_cat(p, ": ", e.what()));
    }
  }
  const json stored_model = cfg.to_json()["model"];
  const std::string stored_algorithm = meta::algorithm_name(cfg.meta.algorithm);
  OverrideSet ov(cfg);
  for (const char* f : {"--ways", "--shots", "--query", "--dataset", "--data", "--device", "--threads", "--tasks"})
    if (args.has(f)) apply_named_flag(ov, f, args.get(f));
  for (const auto& [k, v] : args.overrides()) ov.set(k, v);
  apply_overrides(cfg, ov);
  // The model must be the one the checkpoint holds.
  {
    const json diff = json::diff(stored_model, cfg.to_json()["model"]);
    std::string keys;
    for (const auto& d : diff) keys += (keys.empty() ? "model" : ", model") + d.value("path", std::string());
    for (char& c : keys)
      if (c == '/') c = '.';
    MN_USAGE_CHECK(keys.empty(), "the checkpoint holds a different model: ", keys,
                   " would change (the model, and with it the number of ways, is fixed by meta-training)");
    MN_USAGE_CHECK(stored_algorithm == meta::algorithm_name(cfg.meta.algorithm),
                   "the checkpoint was meta-trained with '", stored_algorithm, "'; 'algorithm' cannot change");
  }
  if (args.has("--print-config")) {
    std::printf("%s\n", cfg.to_text().c_str());
    return 0;
  }
  const meta::MetaConfig& mc = cfg.meta;
  // Distributed (mpirun, docs/distributed.md): task-parallel runs split the
  // sampled test tasks across the ranks; rank 0 prints and writes the report.
  const auto comm = meta::dist::world(parse_device(cfg.run.device) == Device::CUDA);
  const bool lead = comm->rank() == 0;
  MN_USAGE_CHECK(comm->size() == 1 || mc.meta.task_parallel, "a distributed meta-test (", comm->size(),
                 " ranks) needs the task-parallel semantics: --set meta.task_parallel=true");
  if (comm->size() > 1)
    meta::dist::check_same_on_all_ranks(*comm, str_cat(binary_hash(), " ", cfg.to_json().dump(), " ", ck_path),
                                        "binary and configuration hash");
  const bool quiet = args.has("--quiet") || !lead;

  const int threads = set_threads(cfg.run.threads);
  const Device device = resolve_device(parse_device(cfg.run.device));
  auto learner = meta::make_meta_learner(mc, device);
  learner->load_state(ck);
  const int64_t iteration = learner->iteration();

  meta::Evaluator ev(learner->meta_model(), mc, mix_seed(test_seed, kTestAdapt));
  if (mc.eval.restore_task_optimizer) ev.set_task_optimizer_state(ck, "task_opt.");
  // The meta-trained agent (its test episodes run before each task's adaptation).
  if (ev.task_learner().pre_optimizer()) ev.set_pre_optimizer_state(ck, "meta_rl.");
  ev.copy_inner_lrs(learner->task_learner());  // MAML++ per-step rates (meta-learned)
  // A checkpoint from the warm-up phase is evaluated as MetaNAS does then:
  // weights only, T = t_max.
  ev.set_warmup(learner->in_warmup());
  if (learner->in_warmup() && !quiet)
    std::printf("note: the checkpoint is in meta-training warm-up (iteration %lld; warm-up lasts %lld): tasks adapt the weights "
                "only\n",
                static_cast<long long>(iteration), static_cast<long long>(mc.meta.warmup_iterations));

  // ---- ensemble members (--ensemble): the same configuration, their own state ----
  std::vector<std::string> ensemble_paths;
  {
    std::string list = args.get("--ensemble");
    size_t at = 0;
    while (!list.empty() && at <= list.size()) {
      const size_t comma = std::min(list.find(',', at), list.size());
      const std::string p = list.substr(at, comma - at);
      MN_USAGE_CHECK(!p.empty(), "--ensemble: empty checkpoint name in '", list, "'");
      MN_USAGE_CHECK(fs::exists(p), "--ensemble: checkpoint '", p, "' does not exist");
      ensemble_paths.push_back(p);
      at = comma + 1;
    }
  }
  MN_USAGE_CHECK(ensemble_paths.empty() || runs_dir.empty(), "--ensemble evaluates sampled tasks, not --runs");
  std::vector<std::unique_ptr<meta::MetaLearner>> member_learners;
  std::vector<std::unique_ptr<meta::Evaluator>> member_evs;
  for (const std::string& p : ensemble_paths) {
    const Checkpoint mck = Checkpoint::load(p);
    auto l = meta::make_meta_learner(mc, device);
    try {
      l->load_state(mck);
    } catch (const Error& e) {
      throw UsageError(str_cat("--ensemble: ", p, ": ", e.what()));
    }
    auto e = std::make_unique<meta::Evaluator>(l->meta_model(), mc, mix_seed(test_seed, kTestAdapt));
    if (mc.eval.restore_task_optimizer) e->set_task_optimizer_state(mck, "task_opt.");
    e->copy_inner_lrs(l->task_learner());
    e->set_warmup(l->in_warmup());
    member_learners.push_back(std::move(l));
    member_evs.push_back(std::move(e));
  }

  std::string out = args.get("--out");
  if (out.empty()) out = run_dir.empty() ? fs::path(ck_path).parent_path().string() : run_dir;
  if (out.empty()) out = ".";
  std::string report_path = args.get("--report");
  if (report_path.empty()) report_path = (fs::path(out) / "report.json").string();

  json report = {{"program", kProgram},
                 {"checkpoint", ck_path},
                 {"iteration", iteration},
                 {"algorithm", meta::algorithm_name(mc.algorithm)},
                 {"model", meta::model_kind_name(mc.model.kind)},
                 {"device", device_name(device)},
                 {"threads", threads},
                 {"seed", test_seed},
                 {"warmup_evaluation", learner->in_warmup()},
                 {"eval", json::parse(mc.to_json())["eval"]},
                 {"chance", 1.0 / mc.episodes.ways}};
  Stopwatch clock;
  std::string headline;
  const bool retrain = mc.eval.mode == meta::EvalMode::Retrain;
  MN_USAGE_CHECK(!retrain || runs_dir.empty(),
                 "eval.mode 'retrain' evaluates sampled tasks; --runs needs eval.mode 'soft'");
  MN_USAGE_CHECK(!retrain || mc.algorithm != meta::Algorithm::Atnas,
                 "eval.mode 'retrain' is not supported for atnas checkpoints (AT-NAS searches a subnet per task)");
  if (retrain) {
    report["mode"] = "retrain";
    headline = retrain_evaluation(cfg, mc, split, test_seed, device, ck, learner->meta_model(), learner->in_warmup(),
                                  quiet, clock, report, *comm);
  } else if (!runs_dir.empty()) {
    MN_USAGE_CHECK(mc.algorithm != meta::Algorithm::Atnas, "--runs is not supported for atnas checkpoints (its "
                   "per-task search needs tasks from --dataset/--config)");
    data::OneShotOptions oo;
    oo.root = runs_dir;
    oo.image_size = cfg.data.image_size > 0 ? cfg.data.image_size : model_input(mc).second;
    oo.invert = cfg.data.invert;
    oo.device = device;
    const auto runs = data::load_oneshot_runs(oo);
    MN_CHECK(!runs.empty(), "no one-shot runs in '", runs_dir, "'");
    std::vector<data::Episode> eps;
    std::vector<std::string> names;
    for (const auto& r : runs) {
      MN_USAGE_CHECK(r.episode.ways == mc.episodes.ways, runs_dir, "/", r.name, " is ", r.episode.ways,
                     "-way but the model classifies ", mc.episodes.ways, " classes");
      MN_USAGE_CHECK(r.episode.support_x.dim(1) == model_input(mc).first, runs_dir, "/", r.name, " has ",
                     r.episode.support_x.dim(1), "-channel images but the model expects ", model_input(mc).first);
      eps.push_back(r.episode);
      names.push_back(r.name);
    }
    if (!quiet)
      std::printf("meta-test: %zu one-shot runs from %s (checkpoint %s, iteration %lld)\n", runs.size(),
                  runs_dir.c_str(), ck_path.c_str(), static_cast<long long>(iteration));
    // Task-parallel runs split the one-shot runs across the ranks.
    const meta::RunsReport r =
        mc.meta.task_parallel ? ev.evaluate_runs_split(eps, names, *comm) : ev.evaluate_runs(eps, names);
    if (!quiet) std::fputs(r.summary().c_str(), stdout);
    headline = str_cat("accuracy ", format_percent(1.0 - r.overall_error), " (error ", format_percent(r.overall_error),
                       ", mean per-run error ", format_percent(r.mean_error), ") over ", r.runs.size(), " runs; chance ",
                       format_percent(1.0 / mc.episodes.ways));
    report["source"] = {{"runs", runs_dir}};
    report["ways"] = mc.episodes.ways;
    report["accuracy"] = 1.0 - r.overall_error;
    report["mean_error"] = r.mean_error;
    report["overall_error"] = r.overall_error;
    report["result"] = json::parse(r.to_json());
  } else {
    const data::Dataset ds = load_split(cfg.data, split);
    check_model_fits(mc, ds, "the " + split + " split");
    data::EpisodeSampler sampler(ds, mc.episodes.ways, mc.episodes.shots, mc.episodes.queries,
                                 mix_seed(test_seed, kTestTasks), device);
    const int n = mc.eval.tasks;
    if (!quiet)
      std::printf("meta-test: %d tasks, %d-way %d-shot, %d queries per class, from the %s split of %s (%d classes)\n"
                  "           checkpoint %s (iteration %lld, %s, %s model); %d + %d adaptation steps per task\n",
                  n, mc.episodes.ways, mc.episodes.shots, mc.episodes.queries, split.c_str(), cfg.data.dataset.c_str(),
                  ds.num_classes(), ck_path.c_str(), static_cast<long long>(iteration),
                  meta::algorithm_name(mc.algorithm), meta::model_kind_name(mc.model.kind), mc.eval.arch_steps,
                  mc.eval.weight_steps);
    if (mc.algorithm == meta::Algorithm::Atnas) {
      // AT-NAS: an evolutionary search of subnets per task (meta/atnas.h).
      auto& at = dynamic_cast<meta::Atnas&>(*learner);
      std::vector<nas::Encoding> seeds;
      for (const auto& c : at.evolution().elite()) seeds.push_back(c.encoding);
      // Task-parallel: one seeded searcher per task, the tasks split across the ranks.
      std::function<meta::AtnasReport(const std::function<void(int, const meta::AtnasTaskResult&)>&,
                                      const std::function<void(int, const nas::Evolution&)>&)>
          search = [&](const auto& d, const auto& p) {
            if (mc.meta.task_parallel)
              return meta::atnas_evaluate_split(at.supernet(), mc, mix_seed(test_seed, kTestAdapt), seeds, sampler, n,
                                                *comm, d, p);
            meta::AtnasSearcher searcher(at.supernet(), mc, mix_seed(test_seed, kTestAdapt), seeds);
            std::vector<data::Episode> eps;
            for (int i = 0; i < n; ++i) eps.push_back(sampler.sample());
            return searcher.evaluate(eps, d, p);
          };
      const meta::AtnasReport r = search(
          [&](int done, const meta::AtnasTaskResult& t) {
            if (!quiet)
              std::printf("  task %d/%d: accuracy %s, subnet %s (%lld params), %d generations, %.1f s (%.1f s CPU)\n",
                          done, n, format_percent(t.eval.accuracy).c_str(), t.best.to_text().c_str(),
                          static_cast<long long>(t.eval.sparse_params), t.generations, t.search_seconds,
                          t.search_cpu_seconds);
            std::fflush(stdout);
          },
          [&](int g, const nas::Evolution& e) {
            if (!quiet)
              std::printf("    generation %d: best held-out fitness %.4f, %lld subnets scored\n", g, e.best().fitness,
                          static_cast<long long>(e.evaluations()));
          });
      if (!quiet) std::fputs(r.summary_text().c_str(), stdout);
      headline = str_cat("accuracy ", format_percent(r.summary.mean_accuracy), " +- ", format_percent(r.summary.ci95),
                         " (95% CI over ", r.tasks.size(), " tasks); chance ", format_percent(1.0 / mc.episodes.ways),
                         "; search ", format_float(static_cast<float>(r.mean_search_seconds), 1), " s per task");
      report["source"] = {{"dataset", cfg.data.dataset}, {"root", cfg.data.root}, {"split", split},
                          {"classes", ds.num_classes()}};
      report["ways"] = mc.episodes.ways;
      report["shots"] = mc.episodes.shots;
      report["queries"] = mc.episodes.queries;
      report["tasks"] = r.tasks.size();
      report["accuracy"] = r.summary.mean_accuracy;
      report["ci95"] = r.summary.ci95;
      report["std"] = r.summary.std_accuracy;
      report["search_seconds_per_task"] = r.mean_search_seconds;
      report["search_cpu_seconds_per_task"] = r.mean_search_cpu_seconds;
      report["result"] = json::parse(r.to_json());
    } else {
    const int every = std::max(1, n / 10);
    double sum = 0;
    const int mine = meta::dist::TaskSlots(n, comm->size()).count(comm->rank());
    auto progress = [&](int done, const meta::TaskEvaluation& t) {
      sum += t.accuracy;
      if (!quiet && (done % every == 0 || done == mine)) {
        const double rate = done / std::max(1e-9, clock.seconds());
        std::printf("  task %d/%d: running accuracy %s | %.2f tasks/s | ETA %s\n", done, mine,
                    format_percent(sum / done).c_str(), rate, format_duration((mine - done) / rate).c_str());
        std::fflush(stdout);
      }
    };
    meta::EvalReport r;
    if (ensemble_paths.empty()) {
      r = mc.meta.task_parallel ? ev.evaluate_split(sampler, n, *comm, progress) : ev.evaluate(sampler, n, progress);
    } else {
      MN_CHECK(comm->size() == 1, "meta-test --ensemble runs in one process (got ", comm->size(), " ranks)");
      std::vector<meta::Evaluator*> members{&ev};
      for (auto& e : member_evs) members.push_back(e.get());
      meta::EnsembleEvaluator ens(members);
      r = ens.evaluate(sampler, n, progress);
      json mem = json::array();
      for (size_t i = 0; i < members.size(); ++i) {
        const meta::EvalReport own = meta::summarize(
            [&] {
              std::vector<meta::TaskEvaluation> v;
              for (double a : ens.member_accuracies()[i]) v.push_back(meta::TaskEvaluation{a});
              return v;
            }(),
            0);
        mem.push_back({{"checkpoint", i == 0 ? ck_path : ensemble_paths[i - 1]},
                       {"accuracy", own.mean_accuracy},
                       {"ci95", own.ci95}});
        if (!quiet)
          std::printf("  member %zu (%s): accuracy %s +- %s\n", i, (i == 0 ? ck_path : ensemble_paths[i - 1]).c_str(),
                      format_percent(own.mean_accuracy).c_str(), format_percent(own.ci95).c_str());
      }
      report["ensemble"] = {{"members", mem}};
    }
    if (!quiet) std::fputs(r.summary().c_str(), stdout);
    headline = str_cat(ensemble_paths.empty() ? "" : str_cat("ensemble of ", ensemble_paths.size() + 1, " checkpoints: "),
                       "accuracy ", format_percent(r.mean_accuracy), " +- ", format_percent(r.ci95),
                       " (95% CI over ", r.tasks.size(), " tasks); chance ", format_percent(1.0 / mc.episodes.ways));
    report["source"] = {{"dataset", cfg.data.dataset}, {"root", cfg.data.root}, {"split", split},
                        {"classes", ds.num_classes()}};
    report["ways"] = mc.episodes.ways;
    report["shots"] = mc.episodes.shots;
    report["queries"] = mc.episodes.queries;
    report["tasks"] = r.tasks.size();
    report["accuracy"] = r.mean_accuracy;
    report["ci95"] = r.ci95;
    report["std"] = r.std_accuracy;
    report["result"] = json::parse(r.to_json());
    }
  }
  {
    const json rl = meta_rl_summary(ev.task_learner().pre_optimizer());
    if (!rl.is_null()) {
      report["meta_rl"] = rl;
      if (!quiet) std::printf("%s\n", meta_rl_line(rl).c_str());
    }
  }
  report["seconds"] = clock.seconds();
  report["config"] = cfg.to_json();

  if (!lead) return 0;
  std::error_code ec;
  if (!fs::path(report_path).parent_path().empty()) fs::create_directories(fs::path(report_path).parent_path(), ec);
  {
    const std::string tmp = report_path + ".tmp";
    std::ofstream f(tmp, std::ios::trunc);
    MN_CHECK(f, "cannot write report '", tmp, "'");
    f << report.dump(2) << "\n";
    f.close();
    MN_CHECK(f, "writing '", tmp, "' failed");
    fs::rename(tmp, report_path, ec);
    MN_CHECK(!ec, "cannot rename '", tmp, "' to '", report_path, "': ", ec.message());
  }
  std::printf("%s%s\nreport: %s (%s)\n", quiet ? "" : "result: ", headline.c_str(), report_path.c_str(),
              format_duration(clock.seconds()).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main_ranks(kProgram, [&] { return run(argc, argv); });
}
