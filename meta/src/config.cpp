// MetaConfig: enum names, validation, JSON round trip (unknown keys rejected
// with their key path), and building the configured model.
#include "metanas/meta/config.h"

#include <charconv>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "metanas/engine/error.h"
#include "metanas/nas/discrete_network.h"
#include "metanas/nas/search_network.h"

namespace metanas::meta {

using nlohmann::json;

// ---- enum names ----

const char* algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::Reptile: return "reptile";
    case Algorithm::Fomaml: return "fomaml";
    case Algorithm::AutoMaml: return "auto_maml";
  }
  return "?";
}

Algorithm parse_algorithm(const std::string& s) {
  if (s == "reptile" || s == "metanas") return Algorithm::Reptile;
  if (s == "fomaml" || s == "tnas" || s == "t-nas" || s == "t_nas") return Algorithm::Fomaml;
  if (s == "auto_maml" || s == "auto-maml" || s == "automaml") return Algorithm::AutoMaml;
  MN_THROW("unknown meta-learning algorithm '", s, "' (valid: reptile, fomaml, auto_maml)");
}

const char* model_kind_name(ModelKind k) {
  switch (k) {
    case ModelKind::Search: return "search";
    case ModelKind::ConvNet4: return "convnet4";
    case ModelKind::Discrete: return "discrete";
  }
  return "?";
}

ModelKind parse_model_kind(const std::string& s) {
  if (s == "search") return ModelKind::Search;
  if (s == "convnet4") return ModelKind::ConvNet4;
  if (s == "discrete") return ModelKind::Discrete;
  MN_THROW("unknown model kind '", s, "' (valid: search, convnet4, discrete)");
}

const char* inner_optimizer_name(InnerOptimizer o) { return o == InnerOptimizer::Adam ? "adam" : "sgd"; }

InnerOptimizer parse_inner_optimizer(const std::string& s) {
  if (s == "adam" || s == "darts") return InnerOptimizer::Adam;
  if (s == "sgd") return InnerOptimizer::Sgd;
  MN_THROW("unknown inner optimizer '", s, "' (valid: adam, sgd)");
}

const char* meta_optimizer_name(MetaOptimizer o) { return o == MetaOptimizer::Sgd ? "sgd" : "adam"; }

MetaOptimizer parse_meta_optimizer(const std::string& s) {
  if (s == "sgd") return MetaOptimizer::Sgd;
  if (s == "adam") return MetaOptimizer::Adam;
  MN_THROW("unknown meta optimizer '", s, "' (valid: sgd, adam)");
}

// ---- validation ----

void MetaConfig::validate() const {
  const char* w = "MetaConfig";
  switch (model.kind) {
    case ModelKind::Search: model.search.validate(); break;
    case ModelKind::ConvNet4: model.convnet4.validate(); break;
    case ModelKind::Discrete:
      model.discrete.validate();
      model.genotype.validate();
      MN_CHECK(!model.genotype.normal.empty() && !model.genotype.reduce.empty(), w,
               ": model.kind is 'discrete' but model.genotype is empty");
      break;
  }
  MN_CHECK(episodes.ways >= 2, w, ": episodes.ways must be >= 2, got ", episodes.ways);
  MN_CHECK(episodes.ways == num_classes(), w, ": episodes.ways (", episodes.ways,
           ") differs from the model's number of classes (", num_classes(), ")");
  MN_CHECK(episodes.shots >= 1 && episodes.train_shots >= 1 && episodes.queries >= 1, w,
           ": episodes.shots, train_shots and queries must be >= 1 (got ", episodes.shots, ", ",
           episodes.train_shots, ", ", episodes.queries, ")");
  MN_CHECK(task.steps >= 1, w, ": task.steps must be >= 1, got ", task.steps);
  MN_CHECK(task.batch_size >= 0, w, ": task.batch_size must be >= 0 (0 = whole support set), got ",
           task.batch_size);
  task.darts.validate();
  MN_CHECK(task.sgd_w_lr >= 0.f && task.sgd_a_lr >= 0.f, w, ": task.sgd_w_lr / sgd_a_lr must be >= 0");
  MN_CHECK(task.sgd_w_grad_clip >= 0.f, w, ": task.sgd_w_grad_clip must be >= 0");
  MN_CHECK(task.t_min > 0 && task.t_max >= task.t_min, w, ": need task.t_max >= task.t_min > 0 (got ",
           task.t_max, ", ", task.t_min, ")");
  MN_CHECK(task.drop_path_prob >= 0.f && task.drop_path_prob < 1.f, w,
           ": task.drop_path_prob must be in [0, 1), got ", task.drop_path_prob);
  MN_CHECK(meta.iterations >= 0, w, ": meta.iterations must be >= 0, got ", meta.iterations);
  MN_CHECK(meta.meta_batch_size >= 1, w, ": meta.meta_batch_size must be >= 1, got ", meta.meta_batch_size);
  MN_CHECK(meta.warmup_iterations >= 0, w, ": meta.warmup_iterations must be >= 0");
  MN_CHECK(meta.w_lr >= 0.f && meta.a_lr >= 0.f, w, ": meta.w_lr / a_lr must be >= 0");
  MN_CHECK(meta.adam_beta1 >= 0.f && meta.adam_beta1 < 1.f && meta.adam_beta2 >= 0.f &&
               meta.adam_beta2 < 1.f && meta.adam_eps > 0.f,
           w, ": meta Adam betas must be in [0, 1) and eps > 0");
  MN_CHECK(meta.a_weight_decay >= 0.f, w, ": meta.a_weight_decay must be >= 0");
  MN_CHECK(meta.prune_threshold >= 0.f && meta.prune_threshold < 1.f, w,
           ": meta.prune_threshold must be in [0, 1)");
  MN_CHECK(meta.prune_every >= 0, w, ": meta.prune_every must be >= 0 (0 = never)");
  MN_CHECK(eval.tasks >= 1, w, ": eval.tasks must be >= 1, got ", eval.tasks);
  MN_CHECK(eval.arch_steps >= 0 && eval.weight_steps >= 0 && eval.arch_steps + eval.weight_steps >= 1,
           w, ": eval.arch_steps and weight_steps must be >= 0 with at least one step (got ",
           eval.arch_steps, " + ", eval.weight_steps, ")");
  MN_CHECK(eval.batch_size >= 0, w, ": eval.batch_size must be >= 0 (0 = whole support set)");
  MN_CHECK(eval.top_genotypes >= 0, w, ": eval.top_genotypes must be >= 0");
  if (algorithm == Algorithm::AutoMaml)
    MN_CHECK(model.kind == ModelKind::Search, w,
             ": auto_maml meta-learns a shared architecture and needs model.kind 'search'");
}

int MetaConfig::num_classes() const {
  switch (model.kind) {
    case ModelKind::Search: return model.search.num_classes;
    case ModelKind::ConvNet4: return model.convnet4.num_classes;
    case ModelKind::Discrete: return model.discrete.num_classes;
  }
  return 0;
}

nas::TemperatureSchedule MetaConfig::train_schedule() const {
  return nas::TemperatureSchedule{task.t_max, task.t_min, task.steps};
}

nas::TemperatureSchedule MetaConfig::eval_schedule() const {
  return nas::TemperatureSchedule{task.t_max, task.t_min, std::max(1, eval.arch_steps)};
}

// ---- JSON ----

namespace {

// Floats as their shortest decimal form, so 0.005f is written "0.005" (and
// reads back as exactly 0.005f).
json num(float v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return json(std::stod(std::string(buf, r.ptr)));
}

// Reads the keys of one JSON object, checking them against the known ones;
// errors name the key path ("task.darts.w_lr").
class Section {
 public:
  Section(const json& j, std::string path, std::set<std::string> known) : j_(j), path_(std::move(path)) {
    MN_CHECK(j_.is_object(), "MetaConfig: '", path_.empty() ? "(top level)" : path_,
             "' must be a JSON object, got ", j_.type_name());
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!known.count(it.key())) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        MN_THROW("MetaConfig: unknown key '", key_path(it.key()), "' (valid keys",
                 path_.empty() ? "" : " in '" + path_ + "'", ": ", list, ")");
      }
    }
  }
  std::string key_path(const std::string& k) const { return path_.empty() ? k : path_ + "." + k; }
  bool has(const char* k) const { return j_.contains(k); }
  const json& at(const char* k) const { return j_.at(k); }

  template <typename T>
  void read(const char* k, T& out) const {
    if (!has(k)) return;
    const json& v = j_.at(k);
    try {
      if constexpr (std::is_same_v<T, bool>) {
        MN_CHECK(v.is_boolean(), "expected true/false, got ", v.dump());
      } else if constexpr (std::is_integral_v<T>) {
        MN_CHECK(v.is_number_integer(), "expected an integer, got ", v.dump());
        if constexpr (std::is_unsigned_v<T>) {
          MN_CHECK(v.is_number_unsigned(), "expected a non-negative integer, got ", v.dump());
        } else {
          const bool fits = v.is_number_unsigned()
                                ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                                : v.get<int64_t>() >= std::numeric_limits<T>::min() &&
                                      v.get<int64_t>() <= std::numeric_limits<T>::max();
          MN_CHECK(fits, "integer ", v.dump(), " out of range");
        }
      } else if constexpr (std::is_floating_point_v<T>) {
        MN_CHECK(v.is_number(), "expected a number, got ", v.dump());
      } else {
        MN_CHECK(v.is_string(), "expected a string, got ", v.dump());
      }
      out = v.get<T>();
    } catch (const Error& e) {
      MN_THROW("MetaConfig: bad value for '", key_path(k), "': ", e.what());
    } catch (const std::exception& e) {
      MN_THROW("MetaConfig: bad value for '", key_path(k), "': ", e.what());
    }
  }
  // A string parsed by `parse` (enum names).
  template <typename E, typename Parse>
  void read_enum(const char* k, E& out, Parse parse) const {
    if (!has(k)) return;
    std::string s;
    read(k, s);
    try {
      out = parse(s);
    } catch (const Error& e) {
      MN_THROW("MetaConfig: bad value for '", key_path(k), "': ", e.what());
    }
  }
  // A nested NAS configuration: its current JSON with this key's object
  // merged on top, parsed by its own from_json (which rejects unknown keys).
  template <typename T>
  void read_nested(const char* k, T& out) const {
    if (!has(k)) return;
    const json& v = j_.at(k);
    MN_CHECK(v.is_object(), "MetaConfig: '", key_path(k), "' must be a JSON object, got ", v.type_name());
    json base = json::parse(out.to_json());
    base.merge_patch(v);
    try {
      out = T::from_json(base.dump());
    } catch (const Error& e) {
      MN_THROW("MetaConfig: in '", key_path(k), "': ", e.what());
    }
  }

 private:
  const json& j_;
  std::string path_;
};

void apply_json(MetaConfig& c, const json& root) {
  Section top(root, "", {"algorithm", "seed", "model", "episodes", "task", "meta", "eval"});
  top.read_enum("algorithm", c.algorithm, parse_algorithm);
  top.read("seed", c.seed);

  if (top.has("model")) {
    Section s(top.at("model"), "model", {"kind", "search", "convnet4", "discrete", "genotype"});
    s.read_enum("kind", c.model.kind, parse_model_kind);
    s.read_nested("search", c.model.search);
    s.read_nested("convnet4", c.model.convnet4);
    s.read_nested("discrete", c.model.discrete);
    if (s.has("genotype")) {
      const json& g = s.at("genotype");
      try {
        if (g.is_string())
          c.model.genotype = nas::Genotype::from_text(g.get<std::string>());
        else if (g.is_object())
          c.model.genotype = nas::Genotype::from_json(g.dump());
        else if (g.is_null())
          c.model.genotype = nas::Genotype{};
        else
          MN_THROW("expected a genotype object or its text form, got ", g.type_name());
      } catch (const Error& e) {
        MN_THROW("MetaConfig: bad value for 'model.genotype': ", e.what());
      }
    }
  }
  if (top.has("episodes")) {
    Section s(top.at("episodes"), "episodes", {"ways", "shots", "train_shots", "queries"});
    s.read("ways", c.episodes.ways);
    s.read("shots", c.episodes.shots);
    s.read("train_shots", c.episodes.train_shots);
    s.read("queries", c.episodes.queries);
  }
  if (top.has("task")) {
    Section s(top.at("task"), "task",
              {"steps", "batch_size", "with_replacement", "optimizer", "darts", "sgd_w_lr", "sgd_a_lr",
               "sgd_w_grad_clip", "t_max", "t_min", "normalizer", "prune_threshold", "drop_path_prob"});
    auto& t = c.task;
    s.read("steps", t.steps);
    s.read("batch_size", t.batch_size);
    s.read("with_replacement", t.with_replacement);
    s.read_enum("optimizer", t.optimizer, parse_inner_optimizer);
    s.read_nested("darts", t.darts);
    s.read("sgd_w_lr", t.sgd_w_lr);
    s.read("sgd_a_lr", t.sgd_a_lr);
    s.read("sgd_w_grad_clip", t.sgd_w_grad_clip);
    s.read("t_max", t.t_max);
    s.read("t_min", t.t_min);
    s.read_enum("normalizer", t.normalizer, nas::parse_normalizer);
    s.read("prune_threshold", t.prune_threshold);
    s.read("drop_path_prob", t.drop_path_prob);
  }
  if (top.has("meta")) {
    Section s(top.at("meta"), "meta",
              {"iterations", "meta_batch_size", "warmup_iterations", "optimizer", "w_lr", "a_lr",
               "w_anneal", "a_anneal", "adam_beta1", "adam_beta2", "adam_eps", "a_weight_decay",
               "prune_threshold", "prune_every", "query_eval"});
    auto& m = c.meta;
    s.read("iterations", m.iterations);
    s.read("meta_batch_size", m.meta_batch_size);
    s.read("warmup_iterations", m.warmup_iterations);
    s.read_enum("optimizer", m.optimizer, parse_meta_optimizer);
    s.read("w_lr", m.w_lr);
    s.read("a_lr", m.a_lr);
    s.read("w_anneal", m.w_anneal);
    s.read("a_anneal", m.a_anneal);
    s.read("adam_beta1", m.adam_beta1);
    s.read("adam_beta2", m.adam_beta2);
    s.read("adam_eps", m.adam_eps);
    s.read("a_weight_decay", m.a_weight_decay);
    s.read("prune_threshold", m.prune_threshold);
    s.read("prune_every", m.prune_every);
    s.read("query_eval", m.query_eval);
  }
  if (top.has("eval")) {
    Section s(top.at("eval"), "eval",
              {"tasks", "arch_steps", "weight_steps", "batch_size", "with_replacement", "prune_threshold",
               "drop_path", "non_transductive_bn", "restore_task_optimizer", "top_genotypes"});
    auto& e = c.eval;
    s.read("tasks", e.tasks);
    s.read("arch_steps", e.arch_steps);
    s.read("weight_steps", e.weight_steps);
    s.read("batch_size", e.batch_size);
    s.read("with_replacement", e.with_replacement);
    s.read("prune_threshold", e.prune_threshold);
    s.read("drop_path", e.drop_path);
    s.read("non_transductive_bn", e.non_transductive_bn);
    s.read("restore_task_optimizer", e.restore_task_optimizer);
    s.read("top_genotypes", e.top_genotypes);
  }
}

json parse_text(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const std::exception& e) {
    MN_THROW(what, ": invalid JSON: ", e.what());
  }
}

json to_json_value(const MetaConfig& c) {
  json j;
  j["algorithm"] = algorithm_name(c.algorithm);
  j["seed"] = c.seed;
  json genotype = nullptr;
  if (!c.model.genotype.normal.empty() || !c.model.genotype.reduce.empty())
    genotype = json::parse(c.model.genotype.to_json());
  j["model"] = {{"kind", model_kind_name(c.model.kind)},
                {"search", json::parse(c.model.search.to_json())},
                {"convnet4", json::parse(c.model.convnet4.to_json())},
                {"discrete", json::parse(c.model.discrete.to_json())},
                {"genotype", genotype}};
  j["episodes"] = {{"ways", c.episodes.ways},
                   {"shots", c.episodes.shots},
                   {"train_shots", c.episodes.train_shots},
                   {"queries", c.episodes.queries}};
  const auto& t = c.task;
  j["task"] = {{"steps", t.steps},
               {"batch_size", t.batch_size},
               {"with_replacement", t.with_replacement},
               {"optimizer", inner_optimizer_name(t.optimizer)},
               {"darts", json::parse(t.darts.to_json())},
               {"sgd_w_lr", num(t.sgd_w_lr)},
               {"sgd_a_lr", num(t.sgd_a_lr)},
               {"sgd_w_grad_clip", num(t.sgd_w_grad_clip)},
               {"t_max", t.t_max},
               {"t_min", t.t_min},
               {"normalizer", nas::normalizer_name(t.normalizer)},
               {"prune_threshold", num(t.prune_threshold)},
               {"drop_path_prob", num(t.drop_path_prob)}};
  // DartsOptions writes raw floats; rewrite them in their short form.
  for (auto& [k, v] : j["task"]["darts"].items())
    if (v.is_number_float()) v = num(v.get<float>());
  const auto& m = c.meta;
  j["meta"] = {{"iterations", m.iterations},
               {"meta_batch_size", m.meta_batch_size},
               {"warmup_iterations", m.warmup_iterations},
               {"optimizer", meta_optimizer_name(m.optimizer)},
               {"w_lr", num(m.w_lr)},
               {"a_lr", num(m.a_lr)},
               {"w_anneal", m.w_anneal},
               {"a_anneal", m.a_anneal},
               {"adam_beta1", num(m.adam_beta1)},
               {"adam_beta2", num(m.adam_beta2)},
               {"adam_eps", num(m.adam_eps)},
               {"a_weight_decay", num(m.a_weight_decay)},
               {"prune_threshold", num(m.prune_threshold)},
               {"prune_every", m.prune_every},
               {"query_eval", m.query_eval}};
  const auto& e = c.eval;
  j["eval"] = {{"tasks", e.tasks},
               {"arch_steps", e.arch_steps},
               {"weight_steps", e.weight_steps},
               {"batch_size", e.batch_size},
               {"with_replacement", e.with_replacement},
               {"prune_threshold", num(e.prune_threshold)},
               {"drop_path", e.drop_path},
               {"non_transductive_bn", e.non_transductive_bn},
               {"restore_task_optimizer", e.restore_task_optimizer},
               {"top_genotypes", e.top_genotypes}};
  return j;
}

}  // namespace

std::string MetaConfig::to_json() const { return to_json_value(*this).dump(2); }

MetaConfig MetaConfig::from_json(const std::string& text) {
  MetaConfig c;
  c.merge_json(text);
  return c;
}

void MetaConfig::merge_json(const std::string& text) {
  MetaConfig c = *this;
  apply_json(c, parse_text(text, "MetaConfig"));
  c.validate();
  *this = c;
}

MetaConfig MetaConfig::load(const std::string& path) {
  std::ifstream f(path);
  MN_CHECK(f, "MetaConfig::load: cannot open '", path, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return from_json(ss.str());
  } catch (const Error& e) {
    MN_THROW(path, ": ", e.what());
  }
}

void MetaConfig::save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    MN_CHECK(f, "MetaConfig::save: cannot write '", tmp, "'");
    f << to_json() << "\n";
    f.close();
    MN_CHECK(f, "MetaConfig::save: writing '", tmp, "' failed");
  }
  MN_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "MetaConfig::save: cannot rename '", tmp,
           "' to '", path, "'");
}

bool MetaConfig::operator==(const MetaConfig& o) const {
  // The JSON form holds every field (floats in a form that reads back exactly).
  return to_json_value(*this) == to_json_value(o);
}

// ---- model ----

std::unique_ptr<nas::Model> build_model(const ModelSection& m, Rng& rng, Device device) {
  switch (m.kind) {
    case ModelKind::Search: return std::make_unique<nas::SearchNetwork>(m.search, rng, device);
    case ModelKind::ConvNet4: return std::make_unique<nas::ConvNet4>(m.convnet4, rng, device);
    case ModelKind::Discrete:
      return std::make_unique<nas::DiscreteNetwork>(m.discrete, m.genotype, rng, device);
  }
  MN_THROW("build_model: unknown model kind");
}

}  // namespace metanas::meta
