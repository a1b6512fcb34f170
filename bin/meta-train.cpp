// meta-train: meta-learns an architecture (MetaNAS, T-NAS, Auto-MAML) or the
// weights of a fixed network (REPTILE / first-order MAML baselines) from a
// JSON configuration, with periodic validation, atomic checkpoints, exact
// --resume, a metrics JSONL file, a readable log and the final genotype as
// text, JSON and DOT. docs/cli.md documents every flag and key.
#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/alpha_snapshot.h"
#include "common/args.h"
#include "common/config.h"
#include "common/data.h"
#include "common/event_file.h"
#include "common/main.h"
#include "common/meta_rl_report.h"
#include "common/progress.h"
#include "common/ranks.h"
#include "common/run_folder.h"
#include "common/run_lock.h"
#include "metanas/datasets/episode.h"
#include "metanas/engine/autograd.h"
#include "metanas/engine/checkpoint.h"
#include "metanas/engine/device.h"
#include "metanas/engine/ops.h"
#include "metanas/meta/evaluator.h"
#include "metanas/meta/dist/task_slots.h"
#include "metanas/meta/atnas.h"
#include "metanas/meta/learner.h"
#include "metanas/nas/search_network.h"

using namespace metanas;
using namespace metanas::cli;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_signal(int sig) { g_signal = sig; }

const char* kProgram = "meta-train";

std::vector<FlagSpec> flags() {
  return {
      {"--config", "FILE", "JSON configuration (presets in configs/); missing keys keep their\ndefaults", "input and output"},
      {"--out", "DIR", "run folder (default runs/<config name>, or runs/meta-train)", "input and output"},
      {"--resume", "", "continue the run in --out DIR from its last checkpoint, exactly as\nif uninterrupted (configuration from DIR/config.json; only run.*\nkeys and meta.iterations may be overridden)", "input and output"},
      {"--overwrite", "", "start afresh in a folder that already holds a run (deletes its\ncheckpoints, metrics, log and genotype files)", "input and output"},
      {"--stop-after", "N", "stop after N iterations of this invocation, writing a checkpoint\n(as an interruption would; continue with --resume)", "input and output"},
      {"--quiet", "", "no progress lines on stdout (train.log still gets everything)", "input and output"},
      {"--print-config", "", "print the resolved configuration and exit", "input and output"},
      {"--list-keys", "", "print every configuration key with its default value and exit", "input and output"},
      {"--help", "", "this text", "input and output"},
      {"--ways", "N", "classes per episode (episodes.ways and the model's num_classes)", "common settings (each sets configuration keys)"},
      {"--shots", "K", "support images per class at validation/test (episodes.shots)", "common settings (each sets configuration keys)"},
      {"--query", "Q", "query images per class (episodes.queries)", "common settings (each sets configuration keys)"},
      {"--dataset", "NAME", "synthetic | omniglot | miniimagenet (data.dataset)", "common settings (each sets configuration keys)"},
      {"--data", "PATH", "dataset folder (data.root)", "common settings (each sets configuration keys)"},
      {"--algorithm", "NAME", "reptile (MetaNAS) | fomaml (T-NAS) | auto_maml | atnas (algorithm)", "common settings (each sets configuration keys)"},
      {"--device", "DEV", "cpu | cuda (run.device; cuda falls back to cpu with a notice)", "common settings (each sets configuration keys)"},
      {"--seed", "S", "seed of initialisation, task sampling and every random draw (seed)", "common settings (each sets configuration keys)"},
      {"--iterations", "N", "meta-iterations (meta.iterations)", "common settings (each sets configuration keys)"},
      {"--threads", "N", "CPU threads (run.threads; 0 = OMP_NUM_THREADS or all cores)", "common settings (each sets configuration keys)"},
      {"--task-streams", "", "per-task backend streams in the task-parallel meta-step\n(run.task_streams; needs meta.task_parallel)", "common settings (each sets configuration keys)"},
      {"--graphs", "", "capture and replay the inner steps as CUDA graphs (run.cuda_graphs)", "common settings (each sets configuration keys)"},
      {"--set", "KEY=VALUE", "set any configuration key by its dotted path, e.g.\n--set task.darts.w_lr=0.01 (repeatable)", "any configuration key"},
      {"--KEY", "VALUE", "the same as --set KEY=VALUE, e.g. --meta.meta_batch_size 5", "any configuration key"},
  };
}

const char* kDescription =
    "Meta-trains the model a configuration describes on episodes of its dataset's\n"
    "training split. The run folder receives config.json (the resolved configuration),\n"
    "train.log, metrics.jsonl, checkpoint.mnck (+ checkpoint.prev.mnck) and, at the end,\n"
    "genotype.txt / genotype.json / genotype.dot (+ genotype.svg when Graphviz is\n"
    "installed), and TensorBoard event files in tb/. Evaluate it with: meta-test --run DIR;\n"
    "look at it with: meta-report DIR (-> DIR/report.html) or tensorboard --logdir DIR/tb.\n"
    "The folder is locked while meta-train runs (a second one on it is refused).";

const char* kEpilog =
    "Examples:\n"
    "  meta-train --config configs/synthetic-quick.json --out runs/quick\n"
    "  meta-train --config configs/omniglot-20w1s.json --data ~/data/omniglot --out runs/og1\n"
    "  meta-train --config configs/omniglot-20w5s.json --data ~/data/omniglot --shots 5 \\\n"
    "             --set meta.meta_batch_size=5 --device cuda\n"
    "  meta-train --out runs/og1 --resume\n"
    "Every key and the output folder are documented in docs/cli.md.";

// Running sums of the logged statistics over the current log window, kept on
// the device (no synchronisation per iteration). Checkpoints carry the sums
// of an unfinished window, so a resumed run logs exactly what an
// uninterrupted one does.
struct Window {
  static constexpr int kStats = 4;  // query loss, query acc, support loss, support acc
  Tensor sums[kStats];
  float carried[kStats] = {0, 0, 0, 0};
  bool has_carried[kStats] = {false, false, false, false};
  int n = 0, pruned = 0;
  int n_here = 0;  // iterations added by this invocation (for the rate)

  static const Tensor& stat(const meta::MetaStepStats& s, int k) {
    return k == 0 ? s.query_loss : k == 1 ? s.query_acc : k == 2 ? s.support_loss : s.support_acc;
  }
  void add(const meta::MetaStepStats& s) {
    NoGradGuard ng;
    for (int k = 0; k < kStats; ++k) {
      const Tensor& v = stat(s, k);
      if (!v.defined()) continue;
      if (sums[k].defined())
        sums[k] = metanas::add(sums[k], v.detach());
      else if (has_carried[k])
        sums[k] = metanas::add(Tensor::full(v.shape(), carried[k], v.device()), v.detach());
      else
        sums[k] = v.detach();
    }
    ++n;
    ++n_here;
    pruned += s.pruned;
  }
  double sum(int k) const {
    if (sums[k].defined()) return sums[k].item();
    return has_carried[k] ? carried[k] : std::nan("");
  }
  double mean(int k) const { return n > 0 ? sum(k) / n : std::nan(""); }
  json save() const {
    json s = json::array();
    for (int k = 0; k < kStats; ++k) {
      const double v = sum(k);
      s.push_back(std::isfinite(v) ? json(v) : json(nullptr));
    }
    return {{"n", n}, {"pruned", pruned}, {"sums", s}};
  }
  void load(const json& j) {
    *this = Window{};
    n = j.at("n").get<int>();
    pruned = j.at("pruned").get<int>();
    for (int k = 0; k < kStats; ++k) {
      const json& v = j.at("sums").at(k);
      if (v.is_null()) continue;
      carried[k] = static_cast<float>(v.get<double>());
      has_carried[k] = true;
    }
  }
  void clear() { *this = Window{}; }
};

json nan_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// A float as its shortest decimal form (0.6f is logged as 0.6, not 0.6000000238).
json f32(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  for (int prec = 1; prec <= 9; ++prec) {
    char b[32];
    std::snprintf(b, sizeof b, "%.*g", prec, v);
    if (std::strtof(b, nullptr) == v) return json(std::strtod(b, nullptr));
  }
  return json(std::strtod(buf, nullptr));
}

// Whether every parameter of the model is finite (one norm per set; a NaN or
// inf anywhere makes the norm non-finite).
bool finite_params(const nas::Model& m) {
  if (!std::isfinite(m.weights().norm())) return false;
  return !m.alphas() || std::isfinite(m.alphas()->norm());
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// How many op logits of the meta model meta-model pruning has left (a search
// network's candidate ops still computed); null for fixed architectures.
json active_op_count(const nas::Model& m) {
  if (!m.alphas()) return nullptr;
  const ParamSet& a = *m.alphas();
  const std::vector<float> v = a.values().to_vector();
  int64_t alive = 0;
  for (int i = 0; i < a.size(); ++i) {
    if (a.name(i).rfind("alpha_", 0) != 0) continue;  // op logits, not pair weights
    for (int64_t k = 0; k < a.shape(i).numel(); ++k)
      if (v[a.offset(i) + k] > -1e8f) ++alive;  // pruning sets logits to -1e9
  }
  return alive;
}

// The meta model's genotype as a PNG image summary (rendered by Graphviz's
// dot; skipped with one log line when dot is missing).
void write_genotype_image(const nas::Model& m, tb::EventWriter& tbw, int64_t it, const std::string& tb_dir,
                          Log& log) {
  const auto* net = dynamic_cast<const nas::SearchNetwork*>(&m);
  if (!net) return;
  const std::string stem = (fs::path(tb_dir) / "genotype-tmp").string();
  const nas::RenderResult r = net->genotype().render(stem, {"png"});
  std::error_code ec;
  if (r.rendered) {
    std::ifstream f(stem + ".png", std::ios::binary);
    const std::string png((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!png.empty()) tbw.png("genotype", it, png, wall_seconds());
  } else {
    static bool told = false;
    if (!told) log.file_only("no genotype image in TensorBoard: " + r.message);
    told = true;
  }
  fs::remove(stem + ".png", ec);
  fs::remove(stem + ".dot", ec);
}

// The final genotype of a search network (or the fixed one of a discrete
// network) in text, JSON and DOT (+ SVG when Graphviz's dot is installed).
void write_genotype(const meta::MetaLearner& learner, const meta::MetaConfig& cfg, const std::string& dir,
                    Log& log) {
  const std::optional<nas::Genotype> arch = learner.meta_model().architecture();
  if (!arch) {
    log.line("no genotype: the model (" + learner.meta_model().kind() + ") has a fixed architecture");
    return;
  }
  const nas::Genotype& g = *arch;
  const std::string stem = (fs::path(dir) / "genotype").string();
  {
    std::ofstream f(stem + ".txt", std::ios::trunc);
    f << g.to_text() << "\n";
    MN_CHECK(f, "cannot write '", stem, ".txt'");
  }
  {
    std::ofstream f(stem + ".json", std::ios::trunc);
    f << json::parse(g.to_json()).dump(2) << "\n";
    MN_CHECK(f, "cannot write '", stem, ".json'");
  }
  const nas::RenderResult r = g.render(stem, {"svg"});
  log.line("genotype: " + g.to_text());
  log.line("genotype files: " + stem + ".txt, .json, .dot" +
           (r.rendered ? ", .svg" : " (no .svg: " + r.message + ")"));
}

int run(int argc, char** argv) {
  ArgParser args(kProgram, "[--config FILE] [--out DIR] [--resume] [options] [--KEY VALUE ...]", kDescription,
                 flags(), kEpilog);
  args.parse(argc, argv);
  if (args.has("--help")) {
    std::fputs(args.help().c_str(), stdout);
    return 0;
  }
  if (args.has("--list-keys")) {
    std::fputs(keys_listing(ProgramConfig{}).c_str(), stdout);
    return 0;
  }
  std::string config_path = args.get("--config");
  for (const auto& p : args.positional()) {
    MN_USAGE_CHECK(config_path.empty() && p.size() > 5 && p.substr(p.size() - 5) == ".json",
                   "unexpected argument '", p, "'");
    config_path = p;
  }
  const bool resume = args.has("--resume");
  std::string out = args.get("--out");
  if (out.empty()) {
    MN_USAGE_CHECK(!resume, "--resume needs the run folder: --out DIR --resume");
    out = "runs/" + (config_path.empty() ? std::string("meta-train") : fs::path(config_path).stem().string());
  }
  int64_t stop_after = -1;
  if (args.has("--stop-after")) {
    stop_after = parse_int_flag("--stop-after", args.get("--stop-after"));
    MN_USAGE_CHECK(stop_after >= 1, "--stop-after must be >= 1");
  }

  // ---- configuration: file (or the run's config.json) + overrides ----
  const std::string config_json = (fs::path(out) / "config.json").string();
  ProgramConfig cfg;
  if (resume) {
    MN_USAGE_CHECK(config_path.empty(), "--resume reads the configuration from ", config_json,
                   "; drop --config (overrides of run.* keys and meta.iterations are allowed)");
    MN_USAGE_CHECK(fs::exists(config_json), "cannot resume: ", config_json, " does not exist");
    cfg = ProgramConfig::from_file(config_json);
  } else if (!config_path.empty()) {
    cfg = ProgramConfig::from_file(config_path);
  }
  OverrideSet ov(cfg);
  for (const char* f : {"--ways", "--shots", "--query", "--dataset", "--data", "--algorithm", "--device", "--seed",
                        "--iterations", "--threads"})
    if (args.has(f)) apply_named_flag(ov, f, args.get(f));
  if (args.has("--task-streams")) ov.set("run.task_streams", "true", "--task-streams");
  if (args.has("--graphs")) ov.set("run.cuda_graphs", "true", "--graphs");
  for (const auto& [k, v] : args.overrides()) ov.set(k, v);
  if (resume)
    for (const auto& k : ov.keys())
      MN_USAGE_CHECK(resumable_key(k), "cannot change '", k,
                     "' when resuming (the continued run would differ from the interrupted one); only "
                     "run.* keys and meta.iterations may change");
  const int64_t old_iterations = cfg.meta.meta.iterations;
  apply_overrides(cfg, ov);
  if (args.has("--print-config")) {
    std::printf("%s\n", cfg.to_text().c_str());
    return 0;
  }
  const meta::MetaConfig& mc = cfg.meta;

  // ---- ranks (docs/distributed.md): one process unless started by mpirun ----
  // (before any CUDA use: a CUDA run picks each rank's GPU here)
  const auto comm = meta::dist::world(parse_device(cfg.run.device) == Device::CUDA);
  const int ranks = comm->size();
  const bool lead = comm->rank() == 0;  // only rank 0 touches the run folder
  MN_USAGE_CHECK(mc.algorithm != meta::Algorithm::Atnas || !mc.meta.task_parallel,
                 "atnas meta-trains its meta-batch's tasks in order (the population's candidates are scored one "
                 "after another): meta.task_parallel (and so mpirun) is for atnas meta-testing only");
  if (ranks > 1) {
    MN_USAGE_CHECK(mc.meta.task_parallel, "a distributed run (", ranks,
                   " ranks) needs the task-parallel semantics: --set meta.task_parallel=true");
    MN_USAGE_CHECK(ranks <= mc.meta.meta_batch_size, ranks, " ranks for a meta-batch of ",
                   mc.meta.meta_batch_size, " tasks: use at most meta.meta_batch_size ranks");
  }

  // ---- run folder: locked for this process's lifetime ----
  // Nothing in it is changed until everything the run needs (data, model,
  // checkpoint) has been loaded and checked.
  std::error_code ec;
  RunLock lock;
  if (lead) {
    fs::create_directories(out, ec);
    MN_CHECK(!ec, "cannot create the run folder '", out, "': ", ec.message());
    lock.acquire(out, kProgram);
  }
  const bool used = lead && (fs::exists(checkpoint_path(out)) || fs::exists(fs::path(out) / "metrics.jsonl"));
  if (!resume && used)
    MN_USAGE_CHECK(args.has("--overwrite"), "'", out, "' already holds a run; continue it with --out ", out,
                   " --resume, or start afresh with --overwrite (or choose another --out)");

  Log log;
  log.set_quiet(args.has("--quiet") || !lead);
  JsonlWriter metrics;
  const std::string metrics_path = (fs::path(out) / "metrics.jsonl").string();

  // The checkpoint to resume from, and its configuration against the folder's.
  Checkpoint resume_ck;
  std::string resume_path;
  json resume_meta;
  if (resume) {
    resume_path = checkpoint_path(out);
    try {
      resume_ck = Checkpoint::load(resume_path);
    } catch (const Error& e) {
      const std::string prev = previous_checkpoint_path(out);
      MN_CHECK(fs::exists(prev), "cannot resume: ", e.what(),
               fs::exists(previous_run_dir(out))
                   ? str_cat("; the run replaced by an --overwrite that never reached its first checkpoint is "
                             "kept in ", previous_run_dir(out), " (move its files back to resume it)")
                   : std::string());
      log.line(str_cat("warning: ", e.what(), "; resuming from ", prev));
      resume_path = prev;
      resume_ck = Checkpoint::load(resume_path);
    }
    resume_meta = json::parse(resume_ck.metadata_json());
    MN_CHECK(resume_meta.contains("program") && resume_meta["program"].contains("train_sampler") &&
                 resume_meta["program"].contains("config"),
             resume_path, ": no configuration or sampler state (not written by meta-train?)");
    check_resume_config(cfg, resume_meta["program"]["config"], config_json, resume_path);
  }

  const int threads = set_threads(cfg.run.threads);
  const Device device = resolve_device(parse_device(cfg.run.device));
  log.line(str_cat(kProgram, " ", resume ? "resuming" : "starting", " in ", out, ": ",
                   meta::algorithm_name(mc.algorithm), ", model ", meta::model_kind_name(mc.model.kind), ", ",
                   mc.episodes.ways, "-way, train ", mc.episodes.train_shots, "-shot / eval ", mc.episodes.shots,
                   "-shot, ", mc.episodes.queries, " queries, device ", device_name(device), ", ", threads,
                   " threads"));
  if (resume && old_iterations != mc.meta.iterations)
    log.line(str_cat("note: meta.iterations changed from ", old_iterations, " to ", mc.meta.iterations,
                     " (annealed learning rates follow the new total)"));

  // ---- data ----
  Stopwatch load_timer;
  const data::Dataset train_ds = load_split(cfg.data, "train");
  check_model_fits(mc, train_ds, "the training split");
  log.line(str_cat("data: ", cfg.data.dataset, " train split, ", train_ds.num_classes(), " classes, ",
                   train_ds.num_images(), " images ", train_ds.channels(), "x", train_ds.height(), "x",
                   train_ds.width(), " (", train_ds.provenance(), ", ", format_float(load_timer.seconds(), 1),
                   " s)"));
  data::Dataset val_ds;
  if (cfg.run.val_every > 0) {
    val_ds = load_split(cfg.data, cfg.run.val_split);
    check_model_fits(mc, val_ds, "the validation split");
    log.line(str_cat("data: ", cfg.run.val_split, " split for validation, ", val_ds.num_classes(), " classes, ",
                     val_ds.num_images(), " images (every ", cfg.run.val_every, " iterations, ",
                     cfg.run.val_tasks, " tasks)"));
  }

  // ---- learner and task sampler ----
  auto learner = meta::make_meta_learner(mc, device);
  // Auto-MAML's split (the T-NAS code's train_portion): w meta-learns on the
  // first part of every class's images, theta on the held rest.
  const bool split = learner->wants_search_tasks();
  MN_USAGE_CHECK(!split || ranks == 1, "meta.auto_maml_split runs in one process (got ", ranks, " ranks)");
  const double portion = mc.meta.auto_maml_train_portion;
  const data::Dataset w_ds = split ? train_ds.split_images(0.0, portion) : train_ds;
  data::EpisodeSampler sampler(w_ds, mc.episodes.ways, mc.episodes.train_shots, mc.episodes.queries,
                               mix_seed(mc.seed, kTrainTasks), device);
  std::unique_ptr<data::EpisodeSampler> search_sampler;
  if (split) {
    search_sampler = std::make_unique<data::EpisodeSampler>(train_ds.split_images(portion, 1.0), mc.episodes.ways,
                                                            mc.episodes.train_shots, mc.episodes.queries,
                                                            mix_seed(mc.seed, kSearchTasks), device);
    log.line(str_cat("auto_maml split: weights from images [0, ", portion, ") of each training class, the "
                     "architecture from the rest (", search_sampler->dataset().num_images(), " images)"));
  }
  {
    const auto& m = learner->meta_model();
    log.line(str_cat("model: ", m.weights().numel(), " weights",
                     m.alphas() ? str_cat(", ", m.alphas()->numel(), " architecture parameters") : std::string(),
                     "; ", mc.meta.iterations, " meta-iterations (", mc.meta.warmup_iterations,
                     " warm-up), meta-batch ", mc.meta.meta_batch_size, ", ", mc.task.steps, " inner steps"));
  }
  // AT-NAS: one line per scored generation of the population carried across meta-batches.
  if (auto* at = dynamic_cast<meta::Atnas*>(learner.get()))
    at->on_generation([&log, at](const nas::Evolution& ev) {
      double best = -1e300, sum = 0;
      for (const auto& c : ev.generation()) {
        best = std::max(best, c.fitness);
        sum += c.fitness;
      }
      log.line(str_cat("atnas: generation ", ev.generation_index(), " at iteration ", at->iteration(), ": ",
                       ev.generation().size(), " subnets, fitness best ", format_float(static_cast<float>(best)),
                       " mean ", format_float(static_cast<float>(sum / std::max<size_t>(1, ev.generation().size())))));
    });
  double elapsed_before = 0;  // training seconds of earlier invocations
  json resume_window;         // the unfinished log window of the checkpoint
  if (resume) {
    learner->load_state(resume_ck);
    const json& prog = resume_meta["program"];
    sampler.set_state(prog["train_sampler"].get<std::string>());
    if (search_sampler) {
      MN_CHECK(prog.contains("search_sampler"), resume_path, ": no search-task sampler state (meta.auto_maml_split)");
      search_sampler->set_state(prog["search_sampler"].get<std::string>());
    }
    elapsed_before = prog.value("elapsed_s", 0.0);
    if (prog.contains("log_window")) resume_window = prog["log_window"];
  }

  // Every rank must run the same binary on the same configuration and state
  // (this collective also keeps rank 0 from changing the folder before the
  // others have read the checkpoint).
  learner->set_communicator(comm, cfg.run.dist_reduce == "ordered");
  try {
    learner->set_execution(meta::ExecutionOptions{cfg.run.task_streams, cfg.run.cuda_graphs});
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (ranks > 1) {
    meta::dist::check_same_on_all_ranks(
        *comm, str_cat(binary_hash(), " ", cfg.to_json().dump(), " ", out, " ", learner->iteration()),
        "binary, configuration and resume-state hash");
    log.line(str_cat("distributed: ", ranks, " ranks (", comm->name(), "), meta-batch tasks per rank ",
                     meta::dist::TaskSlots(mc.meta.meta_batch_size, ranks).max_per_rank(), ", reduction ",
                     cfg.run.dist_reduce));
  }

  // ---- everything checked: now the folder changes (rank 0 only) ----
  const bool aside = !resume && used;
  if (aside) {
    set_aside_previous_run(out);
    log.line(str_cat("the previous run is kept in ", previous_run_dir(out),
                     " until this run writes its first checkpoint"));
  }
  const std::string tb_dir = (fs::path(out) / "tb").string();
  tb::EventWriter tbw;
  if (lead) {
    cfg.save(config_json);
    log.open((fs::path(out) / "train.log").string(), resume);
    if (resume) {
      JsonlWriter::truncate_after(metrics_path, learner->iteration());
      log.line(str_cat("resumed from ", resume_path, " at iteration ", learner->iteration()));
    }
    metrics.open(metrics_path, resume);
    // TensorBoard: one event file per invocation in DIR/tb/ (a resumed run adds
    // a file; TensorBoard merges a folder's files by step).
    fs::create_directories(tb_dir, ec);
    MN_CHECK(!ec, "cannot create '", tb_dir, "': ", ec.message());
    tbw.open(tb_dir, wall_seconds());
    log.line("TensorBoard: tensorboard --logdir " + tb_dir);
  }

  Stopwatch clock;  // this invocation
  Window win;
  if (!resume_window.is_null()) win.load(resume_window);
  int64_t last_checkpoint = resume ? learner->iteration() : -1;
  bool previous_run_pending = aside;
  auto save_checkpoint = [&](const char* why) {
    if (!lead) {
      last_checkpoint = learner->iteration();
      return;
    }
    Checkpoint ck;
    json meta = {{"program",
                  {{"name", kProgram},
                   {"iteration", learner->iteration()},
                   {"train_sampler", sampler.state()},
                   {"search_sampler", search_sampler ? search_sampler->state() : std::string()},
                   {"log_window", win.save()},
                   {"config", cfg.to_json()},
                   {"elapsed_s", elapsed_before + clock.seconds()},
                   {"saved_at", timestamp()}}}};
    ck.set_metadata_json(meta.dump());
    learner->save_state(ck);
    save_rotating(ck, out);
    last_checkpoint = learner->iteration();
    log.file_only(str_cat("checkpoint (", why, ") at iteration ", learner->iteration()));
    if (previous_run_pending) {
      drop_previous_run(out);
      previous_run_pending = false;
      log.file_only("removed the previous run (" + previous_run_dir(out) + ")");
    }
  };

  int64_t last_val = -1;
  auto validate = [&]() {
    Stopwatch t;
    meta::Evaluator ev(learner->meta_model(), mc, mix_seed(mc.seed, kValAdapt));
    // During warm-up MetaNAS evaluates without architecture adaptation.
    ev.set_warmup(learner->in_warmup());
    Checkpoint task_state;
    learner->task_learner().save_state(task_state, "task_opt.");
    ev.set_task_optimizer_state(task_state, "task_opt.");
    if (const meta::TaskPreOptimizer* pre = learner->task_learner().pre_optimizer()) {
      pre->save_state(task_state, "meta_rl.");
      ev.set_pre_optimizer_state(task_state, "meta_rl.");
    }
    ev.copy_inner_lrs(learner->task_learner());
    data::EpisodeSampler vs(val_ds, mc.episodes.ways, mc.episodes.shots, mc.episodes.queries,
                            mix_seed(mc.seed, kValTasks), device);
    // Task-parallel runs split the validation tasks across the ranks.
    const meta::EvalReport r = mc.meta.task_parallel ? ev.evaluate_split(vs, cfg.run.val_tasks, *comm)
                                                      : ev.evaluate(vs, cfg.run.val_tasks);
    const int64_t it = learner->iteration();
    last_val = it;
    const json val_rl = meta_rl_summary(ev.task_learner().pre_optimizer());
    if (!val_rl.is_null()) log.line("validation " + meta_rl_line(val_rl));
    log.line(str_cat("validation at iteration ", it, ": accuracy ", format_percent(r.mean_accuracy), " +- ",
                     format_percent(r.ci95), " (", r.tasks.size(), " ", mc.episodes.ways, "-way ",
                     mc.episodes.shots, "-shot tasks of the ", cfg.run.val_split, " split; chance ",
                     format_percent(1.0 / mc.episodes.ways), learner->in_warmup() ? "; warm-up: weights only" : "",
                     "), query loss ", format_float(r.mean_loss),
                     ", sparse params ", static_cast<int64_t>(r.sparse_mean), ", ", format_float(t.seconds(), 1),
                     " s"));
    json rec = {{"type", "val"},
                {"iteration", it},
                {"split", cfg.run.val_split},
                {"tasks", r.tasks.size()},
                {"accuracy", r.mean_accuracy},
                {"ci95", r.ci95},
                {"std", r.std_accuracy},
                {"loss", r.mean_loss},
                {"sparse_params_mean", r.sparse_mean},
                {"seconds", t.seconds()}};
    if (!r.genotype_counts.empty()) rec["top_genotype"] = r.genotype_counts.front().first;
    const json alphas = alpha_snapshot(learner->meta_model());
    if (!alphas.is_null()) rec["alphas"] = alphas;
    metrics.write(rec);
    const double now = wall_seconds();
    tbw.scalar("val/accuracy", it, static_cast<float>(r.mean_accuracy), now);
    tbw.scalar("val/ci95", it, static_cast<float>(r.ci95), now);
    tbw.scalar("val/accuracy_low", it, static_cast<float>(r.mean_accuracy - r.ci95), now);
    tbw.scalar("val/accuracy_high", it, static_cast<float>(r.mean_accuracy + r.ci95), now);
    tbw.scalar("val/loss", it, static_cast<float>(r.mean_loss), now);
    tbw.scalar("val/sparse_params", it, static_cast<float>(r.sparse_mean), now);
    if (lead) write_genotype_image(learner->meta_model(), tbw, it, tb_dir, log);
  };

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  const int64_t total = mc.meta.iterations;
  const int64_t start_it = learner->iteration();
  if (start_it >= total) log.line(str_cat("the run is complete (", start_it, " of ", total, " iterations)"));
  Stopwatch win_clock;
  std::vector<data::Episode> tasks(mc.meta.meta_batch_size), search_tasks(split ? mc.meta.meta_batch_size : 0);
  const meta::dist::TaskSlots slots(mc.meta.meta_batch_size, ranks);
  double comm_sum = 0;  // seconds in the meta-steps' collectives over the log window
  bool stopped = false;
  while (learner->iteration() < total) {
    // Every rank draws every task (the sampler's stream is the single
    // process's); only this rank's slots are built.
    for (int i = 0; i < mc.meta.meta_batch_size; ++i) {
      if (slots.owns(comm->rank(), i)) {
        tasks[i] = sampler.sample();
      } else {
        sampler.skip();
        tasks[i] = data::Episode{};
      }
    }
    for (auto& t : search_tasks) t = search_sampler->sample();
    // A diverging run (learning rate too high) turns parameters into NaN/inf;
    // it stops with that diagnosis instead of a later op's complaint, and
    // without overwriting the last good checkpoint.
    const int64_t failing = learner->iteration() + 1;
    auto diverged = [&] {
      return str_cat("loss became NaN/inf at iteration ", failing,
                     " (learning rate too high?); the parameters are no longer finite. ",
                     last_checkpoint >= 0 ? str_cat("The last good checkpoint (iteration ", last_checkpoint,
                                                    ") is kept in ", checkpoint_path(out))
                                          : std::string("No checkpoint had been written yet"));
    };
    inject_test_fault(comm->rank(), failing);
    meta::MetaStepStats st;
    try {
      st = split ? learner->meta_step_split(tasks, search_tasks) : learner->meta_step(tasks);
    } catch (const Error& e) {
      if (!finite_params(learner->meta_model()) || !finite_params(learner->task_learner().model()))
        throw Error(diverged());
      throw;
    }
    if (!finite_params(learner->meta_model())) throw Error(diverged());
    comm_sum += learner->last_comm_seconds();
    win.add(st);
    const int64_t it = learner->iteration();
    const bool last = it == total;
    bool stop_now = g_signal != 0 || (stop_after > 0 && it - start_it >= stop_after);
    // The ranks stop together (a signal may reach them at different iterations).
    if (ranks > 1)
      for (const std::string& f : comm->allgather_bytes(stop_now ? "1" : "0")) stop_now = stop_now || f == "1";

    // A stop between log points prints a line but keeps the window (saved in
    // the checkpoint), so that the resumed run logs what this one would have.
    const bool log_point = it % cfg.run.log_every == 0 || last;
    if (log_point || stop_now) {
      const double rate = win.n_here / std::max(1e-9, win_clock.seconds());
      const double overall = (it - start_it) / std::max(1e-9, clock.seconds());
      const double ql = win.mean(0), qa = win.mean(1), sl = win.mean(2), sa = win.mean(3);
      const bool have_q = std::isfinite(qa);
      log.line(str_cat("it ", it, "/", total, " (", format_float(100.0 * it / std::max<int64_t>(1, total), 1), "%)",
                       st.warmup ? " warm-up" : "", " | ", have_q ? "query" : "support", " loss ",
                       format_float(have_q ? ql : sl), " acc ", format_percent(have_q ? qa : sa), " | ",
                       format_rate(rate), " | elapsed ", format_duration(elapsed_before + clock.seconds()),
                       " | ETA ", format_duration((total - it) / std::max(1e-9, overall))));
      if (log_point) {
        // The meta-RL agent's episodes since the last log point.
        const json rl = meta_rl_summary(learner->task_learner().pre_optimizer());
        if (!rl.is_null()) {
          log.line(meta_rl_line(rl));
          json rec = rl;
          rec["type"] = "meta_rl";
          rec["iteration"] = it;
          metrics.write(rec);
        }
        // The softmax temperature of the last architecture step of each task.
        const float temperature = st.warmup ? mc.task.t_max : mc.task.t_min;
        const json active = active_op_count(learner->meta_model());
        metrics.write({{"type", "train"},
                       {"iteration", it},
                       {"warmup", st.warmup},
                       {"w_lr", f32(st.w_lr)},
                       {"a_lr", f32(st.a_lr)},
                       {"temperature", f32(temperature)},
                       {"active_ops", active},
                       {"query_loss", nan_null(ql)},
                       {"query_acc", nan_null(qa)},
                       {"support_loss", nan_null(sl)},
                       {"support_acc", nan_null(sa)},
                       {"pruned", win.pruned},
                       {"iterations_averaged", win.n},
                       {"it_per_s", rate},
                       {"elapsed_s", elapsed_before + clock.seconds()}});
        if (ranks > 1)
          metrics.write({{"type", "dist"},
                         {"iteration", it},
                         {"ranks", ranks},
                         {"comm_seconds", comm_sum / std::max(1, win.n_here)}});
        comm_sum = 0;
        const double now = wall_seconds();
        const std::pair<const char*, double> scalars[] = {
            {"train/query_loss", ql},     {"train/query_acc", qa},   {"train/support_loss", sl},
            {"train/support_acc", sa},    {"lr/meta_w", st.w_lr},    {"lr/meta_a", st.a_lr},
            {"train/temperature", temperature}, {"train/pruned_ops", win.pruned}, {"train/it_per_s", rate}};
        for (const auto& [tag, v] : scalars)
          if (std::isfinite(v)) tbw.scalar(tag, it, static_cast<float>(v), now);
        if (active.is_number()) tbw.scalar("train/active_ops", it, active.get<float>(), now);
        win.clear();
        win_clock.reset();
      }
    }
    if (cfg.run.val_every > 0 && (it % cfg.run.val_every == 0 || last)) validate();
    if ((cfg.run.checkpoint_every > 0 && it % cfg.run.checkpoint_every == 0) || last || stop_now)
      save_checkpoint(last ? "final" : stop_now ? "stop" : "periodic");
    if (stop_now && !last) {
      stopped = true;
      break;
    }
  }
  if (start_it >= total && lead && !fs::exists(checkpoint_path(out))) save_checkpoint("final");

  if (stopped) {
    const bool sig = g_signal != 0;
    log.line(str_cat(sig ? "interrupted" : "stopped (--stop-after)", " at iteration ", learner->iteration(), " of ",
                     total, "; checkpoint saved. Continue with: meta-train --out ", out, " --resume"));
    return sig ? 130 : 0;
  }
  if (lead) write_genotype(*learner, mc, out, log);
  log.line(str_cat("done: ", learner->iteration(), " iterations, ",
                   format_duration(elapsed_before + clock.seconds()), " of training in total. Evaluate with: meta-test --run ",
                   out, "; HTML report: meta-report ", out));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main_ranks(kProgram, [&] { return run(argc, argv); });
}
