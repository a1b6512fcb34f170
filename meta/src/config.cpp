// MetaConfig: enum names, validation, JSON round trip (unknown keys rejected
// with their key path), and building the configured model.
#include "metanas/meta/config.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <type_traits>

#include "metanas/engine/error.h"
#include "metanas/nas/builtin_genotypes.h"
#include "metanas/nas/discrete_network.h"
#include "metanas/nas/search_network.h"

namespace metanas::meta {

using nlohmann::json;

// ---- enum names ----

namespace {

// Each enum's names: the first entry of a value is the name it is written
// as (and listed in errors), later ones are accepted aliases.
template <typename E>
struct EnumName {
  E value;
  const char* name;
};

constexpr EnumName<Algorithm> kAlgorithmNames[] = {
    {Algorithm::Reptile, "reptile"},    {Algorithm::Reptile, "metanas"},    {Algorithm::Fomaml, "fomaml"},
    {Algorithm::Fomaml, "tnas"},        {Algorithm::Fomaml, "t-nas"},       {Algorithm::Fomaml, "t_nas"},
    {Algorithm::AutoMaml, "auto_maml"}, {Algorithm::AutoMaml, "auto-maml"}, {Algorithm::AutoMaml, "automaml"},
    {Algorithm::Atnas, "atnas"},        {Algorithm::Atnas, "at-nas"},       {Algorithm::Atnas, "at_nas"}};
constexpr EnumName<ModelKind> kModelKindNames[] = {
    {ModelKind::Search, "search"}, {ModelKind::ConvNet4, "convnet4"}, {ModelKind::Discrete, "discrete"},
    {ModelKind::ConvNet4pp, "convnet4pp"}};
constexpr EnumName<InnerOptimizer> kInnerOptimizerNames[] = {
    {InnerOptimizer::Adam, "adam"}, {InnerOptimizer::Adam, "darts"}, {InnerOptimizer::Sgd, "sgd"}};
constexpr EnumName<MetaOptimizer> kMetaOptimizerNames[] = {{MetaOptimizer::Sgd, "sgd"},
                                                           {MetaOptimizer::Adam, "adam"}};
constexpr EnumName<EvalMode> kEvalModeNames[] = {{EvalMode::Soft, "soft"}, {EvalMode::Retrain, "retrain"}};
constexpr EnumName<AutoMamlSplit> kAutoMamlSplitNames[] = {{AutoMamlSplit::None, "none"},
                                                           {AutoMamlSplit::Images, "images"}};

template <typename E, size_t N>
const char* name_of(const EnumName<E> (&names)[N], E v) {
  for (const auto& n : names)
    if (n.value == v) return n.name;
  return "?";
}

template <typename E, size_t N>
E parse_name(const EnumName<E> (&names)[N], const std::string& s, const char* what) {
  for (const auto& n : names)
    if (s == n.name) return n.value;
  std::string valid;  // the written names only
  for (size_t i = 0; i < N; ++i) {
    bool first = true;
    for (size_t j = 0; j < i; ++j) first = first && names[j].value != names[i].value;
    if (first) valid += (valid.empty() ? "" : ", ") + std::string(names[i].name);
  }
  MN_THROW("unknown ", what, " '", s, "' (valid: ", valid, ")");
}

}  // namespace

const char* algorithm_name(Algorithm a) { return name_of(kAlgorithmNames, a); }
Algorithm parse_algorithm(const std::string& s) { return parse_name(kAlgorithmNames, s, "meta-learning algorithm"); }

const char* model_kind_name(ModelKind k) { return name_of(kModelKindNames, k); }
ModelKind parse_model_kind(const std::string& s) { return parse_name(kModelKindNames, s, "model kind"); }

const char* inner_optimizer_name(InnerOptimizer o) { return name_of(kInnerOptimizerNames, o); }
InnerOptimizer parse_inner_optimizer(const std::string& s) {
  return parse_name(kInnerOptimizerNames, s, "inner optimizer");
}

const char* meta_optimizer_name(MetaOptimizer o) { return name_of(kMetaOptimizerNames, o); }
MetaOptimizer parse_meta_optimizer(const std::string& s) {
  return parse_name(kMetaOptimizerNames, s, "meta optimizer");
}

const char* eval_mode_name(EvalMode m) { return name_of(kEvalModeNames, m); }
EvalMode parse_eval_mode(const std::string& s) { return parse_name(kEvalModeNames, s, "evaluation mode"); }

const char* auto_maml_split_name(AutoMamlSplit s) { return name_of(kAutoMamlSplitNames, s); }
AutoMamlSplit parse_auto_maml_split(const std::string& s) {
  return parse_name(kAutoMamlSplitNames, s, "Auto-MAML split");
}

// ---- validation ----

namespace {
// The MAML++ options and what they need (errors name the key).
void validate_mamlpp(const MetaConfig& c) {
  const char* w = "MetaConfig";
  const MamlppSection& p = c.mamlpp;
  MN_CHECK(p.msl_epochs >= 0, w, ": mamlpp.msl_epochs must be >= 0, got ", p.msl_epochs);
  MN_CHECK(p.epoch_iterations >= 1, w, ": mamlpp.epoch_iterations must be >= 1, got ", p.epoch_iterations);
  MN_CHECK(p.min_w_lr >= 0.f, w, ": mamlpp.min_w_lr must be >= 0");
  MN_CHECK(p.fd_eps > 0.f, w, ": mamlpp.fd_eps must be > 0, got ", p.fd_eps);
  MN_CHECK(p.meta_grad_clamp >= 0.f, w, ": mamlpp.meta_grad_clamp must be >= 0 (0 = off)");
  const bool pp_model = c.model.kind == ModelKind::ConvNet4pp;
  if (p.enabled() || pp_model) {
    const char* why = p.enabled() ? "the mamlpp options" : "model.kind 'convnet4pp' (outer-only per-step BN)";
    MN_CHECK(c.algorithm != Algorithm::Reptile, w, ": ", why, " need algorithm 'fomaml' or 'auto_maml', not 'reptile'");
    MN_CHECK(c.task.optimizer == InnerOptimizer::Sgd, w, ": ", why, " need task.optimizer 'sgd' (plain gradient steps)");
    MN_CHECK(c.task.sgd_w_grad_clip == 0.f, w, ": ", why, " do not support task.sgd_w_grad_clip");
  }
  if (p.second_order) {
    MN_CHECK(c.task.drop_path_prob == 0.f && c.task.normalizer != nas::Normalizer::GumbelSoftmax, w,
             ": mamlpp.second_order needs a deterministic support forward (task.drop_path_prob 0, no gumbel_softmax): "
             "its Hessian-vector products re-evaluate the support loss");
  }
  if (pp_model)
    MN_CHECK(c.model.convnet4pp.bn_steps >= c.task.steps, w, ": model.convnet4pp.bn_steps (",
             c.model.convnet4pp.bn_steps, ") must cover task.steps (", c.task.steps, ")");
}
}  // namespace
// AT-NAS's section and the settings it needs (meta/src/atnas_config.cpp).
void validate_atnas(const MetaConfig& c);

void MetaConfig::validate() const {
  const char* w = "MetaConfig";
  switch (model.kind) {
    case ModelKind::Search: model.search.validate(); break;
    case ModelKind::ConvNet4: model.convnet4.validate(); break;
    case ModelKind::ConvNet4pp: model.convnet4pp.validate(); break;
    case ModelKind::Discrete:
      model.discrete.validate();
      // Checked before the genotype's own validation, whose "no nodes" would
      // not say that the genotype is simply missing.
      MN_CHECK(!model.genotype.normal.empty() && !model.genotype.reduce.empty(), w,
               ": model.kind is 'discrete' but no genotype is given: set model.genotype (JSON or the text of a "
               "run's genotype.txt, e.g. --model.genotype \"$(cat runs/X/genotype.txt)\")");
      model.genotype.validate();
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
  MN_CHECK(!meta.cosine_power || (!meta.w_anneal && !meta.a_anneal), w,
           ": meta.cosine_power replaces meta.w_anneal / a_anneal; set only one");
  MN_CHECK(meta.cosine_power_exponent >= 1.f && meta.cosine_power_min_lr >= 0.f, w,
           ": meta.cosine_power_exponent must be >= 1 and cosine_power_min_lr >= 0");
  if (task.reg.any() || task.reg.aux_beta_schedule != "linear")
    MN_CHECK(model.kind == ModelKind::Search || (task.reg.stages == 1 && task.reg.skip_limit < 0 && task.reg.tse_steps == 0),
             w, ": task.reg stages / skip_limit / tse_steps need model.kind 'search'");
  MN_CHECK(task.reg.tse_steps == 0 || task.optimizer == InnerOptimizer::Adam, w,
           ": task.reg.tse_steps needs the adam (DARTS) inner optimizer");
  MN_CHECK(meta.adam_beta1 >= 0.f && meta.adam_beta1 < 1.f && meta.adam_beta2 >= 0.f &&
               meta.adam_beta2 < 1.f && meta.adam_eps > 0.f,
           w, ": meta Adam betas must be in [0, 1) and eps > 0");
  MN_CHECK(meta.a_adam_beta1 >= 0.f && meta.a_adam_beta1 < 1.f && meta.a_adam_beta2 >= 0.f &&
               meta.a_adam_beta2 < 1.f,
           w, ": meta.a_adam_beta1 / a_adam_beta2 must be in [0, 1)");
  MN_CHECK(meta.a_weight_decay >= 0.f, w, ": meta.a_weight_decay must be >= 0");
  MN_CHECK(meta.w_weight_decay >= 0.f, w, ": meta.w_weight_decay must be >= 0");
  MN_CHECK(meta.w_weight_decay == 0.f || meta.optimizer == MetaOptimizer::Adam, w,
           ": meta.w_weight_decay applies to the meta Adam on the weights; it needs meta.optimizer 'adam'");
  MN_CHECK(meta.prune_threshold >= 0.f && meta.prune_threshold < 1.f, w,
           ": meta.prune_threshold must be in [0, 1)");
  MN_CHECK(meta.prune_every >= 0, w, ": meta.prune_every must be >= 0 (0 = never)");
  if (meta_rl.agent != rl::AgentKind::None) {
    MN_CHECK(model.kind == ModelKind::Search, w, ": meta_rl.agent '", rl::agent_kind_name(meta_rl.agent),
             "' edits architecture weights: it needs model.kind 'search'");
    MN_CHECK(!meta.task_parallel, w, ": meta_rl.agent needs sequential tasks (meta.task_parallel false): the agent "
             "learns from one task to the next");
  }
  try {
    meta_rl.agent_opt.validate();
    meta_rl.env.validate();
  } catch (const Error& e) {
    MN_THROW(w, ": ", e.what());
  }
  MN_CHECK(eval.tasks >= 1, w, ": eval.tasks must be >= 1, got ", eval.tasks);
  MN_CHECK(eval.arch_steps >= 0 && eval.weight_steps >= 0 && eval.arch_steps + eval.weight_steps >= 1,
           w, ": eval.arch_steps and weight_steps must be >= 0 with at least one step (got ",
           eval.arch_steps, " + ", eval.weight_steps, ")");
  MN_CHECK(eval.batch_size >= 0, w, ": eval.batch_size must be >= 0 (0 = whole support set)");
  MN_CHECK(eval.top_genotypes >= 0, w, ": eval.top_genotypes must be >= 0");
  if (algorithm == Algorithm::AutoMaml)
    MN_CHECK(model.kind == ModelKind::Search, w,
             ": auto_maml meta-learns a shared architecture and needs model.kind 'search'");
  validate_mamlpp(*this);
  MN_CHECK(meta.auto_maml_split == AutoMamlSplit::None || algorithm == Algorithm::AutoMaml, w,
           ": meta.auto_maml_split '", auto_maml_split_name(meta.auto_maml_split),
           "' is an Auto-MAML option but the algorithm is '", algorithm_name(algorithm), "'");
  MN_CHECK(meta.auto_maml_train_portion > 0.0 && meta.auto_maml_train_portion < 1.0, w,
           ": meta.auto_maml_train_portion must be in (0, 1), got ", meta.auto_maml_train_portion);
  if (eval.mode == EvalMode::Retrain) {
    MN_CHECK(model.kind == ModelKind::Search, w,
             ": eval.mode 'retrain' decodes an adapted architecture and needs model.kind 'search' (got '",
             model_kind_name(model.kind), "')");
    const RetrainSection& r = eval.retrain;
    MN_CHECK(r.steps >= 1, w, ": eval.retrain.steps must be >= 1, got ", r.steps);
    MN_CHECK(r.lr > 0.f, w, ": eval.retrain.lr must be > 0, got ", r.lr);
    MN_CHECK(r.batch_size >= 0, w, ": eval.retrain.batch_size must be >= 0 (0 = whole support set)");
    MN_CHECK(r.meta_iterations >= 0, w, ": eval.retrain.meta_iterations must be >= 0");
    MN_CHECK(r.meta_batch_size >= 1, w, ": eval.retrain.meta_batch_size must be >= 1");
    MN_CHECK(r.meta_lr >= 0.f, w, ": eval.retrain.meta_lr must be >= 0");
    MN_CHECK(r.meta_weight_decay >= 0.f, w, ": eval.retrain.meta_weight_decay must be >= 0");
    MN_CHECK(r.task_steps >= 1, w, ": eval.retrain.task_steps must be >= 1");
    MN_CHECK(r.cache >= 1, w, ": eval.retrain.cache must be >= 1");
  }
  if (algorithm == Algorithm::Atnas) validate_atnas(*this);
}

int MetaConfig::num_classes() const {
  switch (model.kind) {
    case ModelKind::Search: return model.search.num_classes;
    case ModelKind::ConvNet4: return model.convnet4.num_classes;
    case ModelKind::Discrete: return model.discrete.num_classes;
    case ModelKind::ConvNet4pp: return model.convnet4pp.num_classes;
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
        // A double beyond float's range would silently become inf.
        if constexpr (std::is_same_v<T, float>)
          MN_CHECK(std::fabs(v.get<double>()) <= std::numeric_limits<float>::max(), v.dump(),
                   " is out of the float range (|x| <= 3.4e38)");
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

// The keys of each part of the configuration, listed once: reading, writing
// and the known-key lists all walk these lists. A visitor V has field (a
// plain value), named (an enum by name), nested (a NAS struct with its own
// JSON form), genotype and section (a sub-object with its own list).
const auto kModelFields = [](auto& v, auto& m) {
  v.named("kind", m.kind, model_kind_name, parse_model_kind);
  v.nested("search", m.search);
  v.nested("convnet4", m.convnet4);
  v.nested("discrete", m.discrete);
  v.genotype("genotype", m.genotype);
  v.nested("convnet4pp", m.convnet4pp);
};

const auto kEpisodeFields = [](auto& v, auto& e) {
  v.field("ways", e.ways);
  v.field("shots", e.shots);
  v.field("train_shots", e.train_shots);
  v.field("queries", e.queries);
};

const auto kTaskFields = [](auto& v, auto& t) {
  v.field("steps", t.steps);
  v.field("batch_size", t.batch_size);
  v.field("with_replacement", t.with_replacement);
  v.named("optimizer", t.optimizer, inner_optimizer_name, parse_inner_optimizer);
  v.nested("darts", t.darts);
  v.field("sgd_w_lr", t.sgd_w_lr);
  v.field("sgd_a_lr", t.sgd_a_lr);
  v.field("sgd_w_grad_clip", t.sgd_w_grad_clip);
  v.field("t_max", t.t_max);
  v.field("t_min", t.t_min);
  v.named("normalizer", t.normalizer, nas::normalizer_name, nas::parse_normalizer);
  v.field("prune_threshold", t.prune_threshold);
  v.field("drop_path_prob", t.drop_path_prob);
  v.nested("reg", t.reg);
};

const auto kMetaFields = [](auto& v, auto& m) {
  v.field("iterations", m.iterations);
  v.field("meta_batch_size", m.meta_batch_size);
  v.field("task_parallel", m.task_parallel);
  v.field("warmup_iterations", m.warmup_iterations);
  v.named("optimizer", m.optimizer, meta_optimizer_name, parse_meta_optimizer);
  v.field("w_lr", m.w_lr);
  v.field("a_lr", m.a_lr);
  v.field("w_anneal", m.w_anneal);
  v.field("a_anneal", m.a_anneal);
  v.field("cosine_power", m.cosine_power);
  v.field("cosine_power_exponent", m.cosine_power_exponent);
  v.field("cosine_power_min_lr", m.cosine_power_min_lr);
  v.field("adam_beta1", m.adam_beta1);
  v.field("adam_beta2", m.adam_beta2);
  v.field("adam_eps", m.adam_eps);
  v.field("a_adam_beta1", m.a_adam_beta1);
  v.field("a_adam_beta2", m.a_adam_beta2);
  v.field("a_weight_decay", m.a_weight_decay);
  v.field("w_weight_decay", m.w_weight_decay);
  v.field("prune_threshold", m.prune_threshold);
  v.field("prune_every", m.prune_every);
  v.field("query_eval", m.query_eval);
  v.named("auto_maml_split", m.auto_maml_split, auto_maml_split_name, parse_auto_maml_split);
  v.field("auto_maml_train_portion", m.auto_maml_train_portion);
};

const auto kRetrainFields = [](auto& v, auto& r) {
  v.field("steps", r.steps);
  v.field("lr", r.lr);
  v.field("batch_size", r.batch_size);
  v.field("meta_iterations", r.meta_iterations);
  v.field("meta_batch_size", r.meta_batch_size);
  v.field("meta_lr", r.meta_lr);
  v.field("task_steps", r.task_steps);
  v.field("meta_weight_decay", r.meta_weight_decay);
  v.field("pool_bn", r.pool_bn);
  v.field("cache", r.cache);
};

const auto kEvalFields = [](auto& v, auto& e) {
  v.field("tasks", e.tasks);
  v.field("arch_steps", e.arch_steps);
  v.field("weight_steps", e.weight_steps);
  v.field("batch_size", e.batch_size);
  v.field("with_replacement", e.with_replacement);
  v.field("prune_threshold", e.prune_threshold);
  v.field("drop_path", e.drop_path);
  v.field("non_transductive_bn", e.non_transductive_bn);
  v.field("restore_task_optimizer", e.restore_task_optimizer);
  v.field("top_genotypes", e.top_genotypes);
  v.named("mode", e.mode, eval_mode_name, parse_eval_mode);
  v.section("retrain", e.retrain, kRetrainFields);
};

const auto kMetaRlFields = [](auto& v, auto& m) {
  v.named("agent", m.agent, rl::agent_kind_name, rl::parse_agent_kind);
  v.field("during_warmup", m.during_warmup);
  v.field("seed", m.seed);
  v.field("epochs", m.agent_opt.epochs);
  v.field("episodes", m.agent_opt.episodes);
  v.field("steps_per_epoch", m.agent_opt.steps_per_epoch);
  v.field("test_episodes", m.agent_opt.test_episodes);
  v.field("use_mask", m.agent_opt.use_mask);
  v.field("hidden", m.agent_opt.hidden);
  v.field("gamma", m.agent_opt.gamma);
  v.field("lambda", m.agent_opt.lambda);
  v.field("lr", m.agent_opt.lr);
  v.field("adam_eps", m.agent_opt.adam_eps);
  v.field("clip", m.agent_opt.clip);
  v.field("value_coef", m.agent_opt.value_coef);
  v.field("entropy_coef", m.agent_opt.entropy_coef);
  v.field("minibatches", m.agent_opt.minibatches);
  v.field("update_passes", m.agent_opt.update_passes);
  v.field("seq_len", m.agent_opt.seq_len);
  v.field("grad_clip", m.agent_opt.grad_clip);
  v.field("exploration", m.agent_opt.exploration);
  v.field("exploration_fraction", m.agent_opt.exploration_fraction);
  v.field("max_steps", m.env.max_steps);
  v.field("estimations", m.env.estimations);
  v.field("alpha_step", m.env.alpha_step);
  v.field("increase_only", m.env.increase_only);
  v.field("random_start", m.env.random_start);
  v.field("alpha_action_masking", m.env.alpha_action_masking);
  v.field("max_reward", m.env.max_reward);
  v.field("disable_pairwise_alphas", m.env.disable_pairwise_alphas);
};

const auto kMamlppFields = [](auto& v, auto& p) {
  v.field("lslr", p.lslr);
  v.field("msl", p.msl);
  v.field("msl_epochs", p.msl_epochs);
  v.field("second_order", p.second_order);
  v.field("first_order_epoch", p.first_order_epoch);
  v.field("epoch_iterations", p.epoch_iterations);
  v.field("cosine_per_epoch", p.cosine_per_epoch);
  v.field("min_w_lr", p.min_w_lr);
  v.field("fd_eps", p.fd_eps);
  v.field("meta_grad_clamp", p.meta_grad_clamp);
};

const auto kAtnasFields = [](auto& v, auto& a) {
  v.field("meta_update", a.meta_update);
  v.field("sampling", a.sampling);
  v.field("population", a.population);
  v.field("top_k", a.top_k);
  v.field("mutants", a.mutants);
  v.field("crossovers", a.crossovers);
  v.field("generations", a.generations);
  v.field("mutation_prob", a.mutation_prob);
  v.field("fitness", a.fitness);
  v.field("fitness_steps", a.fitness_steps);
  v.field("fitness_stem", a.fitness_stem);
  v.field("holdout_shots", a.holdout_shots);
  v.field("test_search", a.test_search);
};

const auto kConfigFields = [](auto& v, auto& c) {
  v.named("algorithm", c.algorithm, algorithm_name, parse_algorithm);
  v.field("seed", c.seed);
  v.section("model", c.model, kModelFields);
  v.section("episodes", c.episodes, kEpisodeFields);
  v.section("task", c.task, kTaskFields);
  v.section("meta", c.meta, kMetaFields);
  v.section("eval", c.eval, kEvalFields);
  v.section("meta_rl", c.meta_rl, kMetaRlFields);
  v.section("mamlpp", c.mamlpp, kMamlppFields);
  v.section("atnas", c.atnas, kAtnasFields);
};

struct KeyLister {
  std::set<std::string> keys;
  template <typename... A>
  void field(const char* k, A&&...) { keys.insert(k); }
  template <typename... A>
  void named(const char* k, A&&...) { keys.insert(k); }
  template <typename... A>
  void nested(const char* k, A&&...) { keys.insert(k); }
  template <typename... A>
  void genotype(const char* k, A&&...) { keys.insert(k); }
  template <typename... A>
  void section(const char* k, A&&...) { keys.insert(k); }
};

// Reads the JSON object j (at key path `path`) into s.
template <typename S, typename Fields>
void read_object(const json& j, const std::string& path, S& s, Fields fields);

struct Reader {
  const Section& s;
  template <typename T>
  void field(const char* k, T& out) { s.read(k, out); }
  template <typename E, typename Name, typename Parse>
  void named(const char* k, E& out, Name, Parse parse) { s.read_enum(k, out, parse); }
  template <typename T>
  void nested(const char* k, T& out) { s.read_nested(k, out); }
  // A genotype object, its text form, or null (none).
  void genotype(const char* k, nas::Genotype& out) {
    if (!s.has(k)) return;
    const json& g = s.at(k);
    try {
      if (g.is_string() && nas::is_builtin_genotype(g.get<std::string>()))
        out = nas::builtin_genotype(g.get<std::string>());  // "metanas_og_v2", ...
      else if (g.is_string())
        out = nas::Genotype::from_text(g.get<std::string>());
      else if (g.is_object())
        out = nas::Genotype::from_json(g.dump());
      else if (g.is_null())
        out = nas::Genotype{};
      else
        MN_THROW("expected a genotype object or its text form, got ", g.type_name());
    } catch (const Error& e) {
      MN_THROW("MetaConfig: bad value for '", s.key_path(k), "': ", e.what());
    }
  }
  template <typename S, typename Fields>
  void section(const char* k, S& out, Fields fields) {
    if (s.has(k)) read_object(s.at(k), s.key_path(k), out, fields);
  }
};

template <typename S, typename Fields>
void read_object(const json& j, const std::string& path, S& s, Fields fields) {
  KeyLister known;
  fields(known, s);
  Section sec(j, path, known.keys);
  Reader r{sec};
  fields(r, s);
}

void apply_json(MetaConfig& c, const json& root) { read_object(root, "", c, kConfigFields); }

struct Writer {
  json j = json::object();
  template <typename T>
  void field(const char* k, const T& v) {
    if constexpr (std::is_same_v<T, float>)
      j[k] = num(v);
    else
      j[k] = v;
  }
  template <typename E, typename Name, typename Parse>
  void named(const char* k, const E& v, Name name, Parse) { j[k] = name(v); }
  template <typename T>
  void nested(const char* k, const T& v) {
    json n = json::parse(v.to_json());
    // The NAS structs write raw floats; rewrite them in their short form.
    for (json& x : n)
      if (x.is_number_float()) x = num(x.get<float>());
    j[k] = n;
  }
  // null when empty.
  void genotype(const char* k, const nas::Genotype& g) {
    j[k] = g.normal.empty() && g.reduce.empty() ? json(nullptr) : json::parse(g.to_json());
  }
  template <typename S, typename Fields>
  void section(const char* k, const S& s, Fields fields) {
    Writer w;
    fields(w, s);
    j[k] = std::move(w.j);
  }
};

json parse_text(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const std::exception& e) {
    MN_THROW(what, ": invalid JSON: ", e.what());
  }
}

json to_json_value(const MetaConfig& c) {
  Writer w;
  kConfigFields(w, c);
  return std::move(w.j);
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
    case ModelKind::ConvNet4pp: return std::make_unique<nas::ConvNet4pp>(m.convnet4pp, rng, device);
  }
  MN_THROW("build_model: unknown model kind");
}

}  // namespace metanas::meta
