// TaskLearner: the inner loop (copy meta parameters in, adapt on the support
// set with the DARTS task optimizer or SGD, evaluate on the query set).
#include "metanas/meta/task_learner.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "metanas/engine/autograd.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::meta {

// ---- options ----

TaskLearnerOptions TaskLearnerOptions::for_training(const MetaConfig& cfg) {
  TaskLearnerOptions o;
  o.arch_steps = cfg.task.steps;
  o.weight_steps = 0;
  o.batch_size = cfg.task.batch_size;
  o.with_replacement = cfg.task.with_replacement;
  // Auto-MAML adapts only the weights inside a task.
  o.adapt_alphas = cfg.algorithm != Algorithm::AutoMaml && cfg.algorithm != Algorithm::Atnas;  // AT-NAS: fixed subnets
  o.optimizer = cfg.task.optimizer;
  o.darts = cfg.task.darts;
  o.darts.warmup = false;
  o.sgd_w_lr = cfg.task.sgd_w_lr;
  o.sgd_a_lr = cfg.task.sgd_a_lr;
  o.sgd_w_grad_clip = cfg.task.sgd_w_grad_clip;
  o.schedule = cfg.train_schedule();
  o.normalizer = cfg.task.normalizer;
  o.prune_threshold = cfg.task.prune_threshold;
  o.drop_path_prob = cfg.task.drop_path_prob;
  // MAML++ (and its network's outer-only BN): N + 1 rates per tensor.
  if (cfg.mamlpp.enabled() || cfg.model.kind == ModelKind::ConvNet4pp) o.lslr_values = cfg.task.steps + 1;
  o.reg = cfg.task.reg;
  return o;
}

TaskLearnerOptions TaskLearnerOptions::for_evaluation(const MetaConfig& cfg) {
  TaskLearnerOptions o = for_training(cfg);
  o.arch_steps = cfg.eval.arch_steps;
  o.weight_steps = cfg.eval.weight_steps;
  o.batch_size = cfg.eval.batch_size;
  o.with_replacement = cfg.eval.with_replacement;
  o.schedule = cfg.eval_schedule();
  o.prune_threshold = cfg.eval.prune_threshold;
  o.drop_path_prob = cfg.eval.drop_path ? cfg.task.drop_path_prob : 0.f;
  o.reg.skip_dropout.clear();  // P-DARTS skip dropout: meta-training only
  return o;
}

void TaskLearnerOptions::validate() const {
  const char* w = "TaskLearnerOptions";
  MN_CHECK(arch_steps >= 0 && weight_steps >= 0 && arch_steps + weight_steps >= 1, w,
           ": need arch_steps, weight_steps >= 0 and at least one step (got ", arch_steps, " + ",
           weight_steps, ")");
  MN_CHECK(batch_size >= 0, w, ": batch_size must be >= 0 (0 = whole support set), got ", batch_size);
  darts.validate();
  MN_CHECK(sgd_w_lr >= 0.f && sgd_a_lr >= 0.f && sgd_w_grad_clip >= 0.f, w,
           ": SGD learning rates and clip must be >= 0");
  MN_CHECK(drop_path_prob >= 0.f && drop_path_prob < 1.f, w, ": drop_path_prob must be in [0, 1)");
  MN_CHECK(lslr_values >= 0, w, ": lslr_values must be >= 0");
  MN_CHECK(lslr_values == 0 || (optimizer == InnerOptimizer::Sgd && sgd_w_grad_clip == 0.f), w,
           ": per-step rates (lslr_values > 0) need the Sgd inner optimizer without gradient clipping");
  reg.validate();
  nas::TemperatureSchedule s = schedule;
  s.steps = std::max(1, s.steps);
  s.validate();
}

// ---- batches ----

namespace {

// A view of `rows` consecutive rows starting at `row0` of a tensor whose
// first dimension indexes rows (no copy, no autograd).
Tensor rows_view(const Tensor& t, int64_t row0, int64_t rows) {
  std::vector<int64_t> dims = t.shape().dims();
  const int64_t per_row = dims[0] == 0 ? 0 : t.numel() / dims[0];
  dims[0] = rows;
  return t.view(row0 * per_row, Shape(dims));
}

void check_episode(const data::Episode& ep, const nas::Model& m, const char* who) {
  MN_CHECK(ep.support_x.defined() && ep.support_y.defined() && ep.query_x.defined() && ep.query_y.defined(),
           who, ": the episode has undefined support or query tensors");
  MN_CHECK(ep.support_x.ndim() == 4 && ep.query_x.ndim() == 4, who,
           ": support/query images must be [N, C, H, W], got ", ep.support_x.describe(), " and ",
           ep.query_x.describe());
  MN_CHECK(ep.support_x.dim(0) >= 1 && ep.support_y.numel() == ep.support_x.dim(0) &&
               ep.query_y.numel() == ep.query_x.dim(0),
           who, ": label counts do not match the images (support ", ep.support_x.describe(), " / ",
           ep.support_y.describe(), ", query ", ep.query_x.describe(), " / ", ep.query_y.describe(), ")");
  MN_CHECK(ep.support_y.dtype() == DType::I32 && ep.query_y.dtype() == DType::I32, who,
           ": labels must be int32");
  MN_CHECK(ep.support_x.device() == m.device() && ep.query_x.device() == m.device() &&
               ep.support_y.device() == m.device() && ep.query_y.device() == m.device(),
           who, ": the episode is on ", device_name(ep.support_x.device()), " but the model on ",
           device_name(m.device()), " (sample episodes on the model's device)");
}

}  // namespace

// All support batches of one task, drawn up front into one buffer (uploaded
// with one copy), as views per step.
struct TaskLearner::Batches {
  Tensor host_x, host_y;  // CPU staging (the buffer itself on CPU)
  Tensor dev_x, dev_y;    // device buffer (== host_* on CPU)
  std::vector<nas::Batch> for_alpha, for_weights;
  std::vector<int> rows_scratch;
  // Scratch for non-transductive evaluation: support + one query image.
  Tensor nt_x, nt_y;

  void prepare(const data::Episode& ep, const TaskLearnerOptions& opt, const std::vector<bool>& arch,
               Rng& rng, bool fixed_addresses) {
    const int steps = static_cast<int>(arch.size());
    const int64_t n = ep.support_x.dim(0);
    for_alpha.assign(steps, nas::Batch{});
    for_weights.assign(steps, nas::Batch{});
    // MetaNAS: no sampler when the batch is the whole support set.
    if (opt.batch_size == 0 || opt.batch_size == n) {
      nas::Batch whole{ep.support_x, ep.support_y};
      if (fixed_addresses) {
        // CUDA graphs bake in addresses: the same buffer for every task.
        if (!dev_x.defined() || dev_x.shape() != ep.support_x.shape() || dev_x.device() != ep.support_x.device()) {
          dev_x = Tensor::empty(ep.support_x.shape(), DType::F32, ep.support_x.device());
          dev_y = Tensor::empty(ep.support_y.shape(), DType::I32, ep.support_y.device());
        }
        dev_x.copy_(ep.support_x);
        dev_y.copy_(ep.support_y);
        whole = nas::Batch{dev_x, dev_y};
      }
      for (int s = 0; s < steps; ++s) {
        for_weights[s] = whole;
        if (arch[s]) for_alpha[s] = for_weights[s];
      }
      return;
    }
    MN_CHECK(opt.with_replacement || opt.batch_size <= n, "TaskLearner: batch_size ", opt.batch_size,
             " exceeds the support set (", n, " images) and drawing is without replacement");
    const int64_t B = opt.batch_size;
    int64_t nbatches = 0;
    for (int s = 0; s < steps; ++s) nbatches += arch[s] && opt.optimizer == InnerOptimizer::Adam ? 2 : 1;
    const int64_t per = ep.support_x.numel() / n;
    std::vector<int64_t> xdims = ep.support_x.shape().dims();
    xdims[0] = nbatches * B;
    const Shape xs(xdims), ys{nbatches * B};
    if (!host_x.defined() || host_x.shape() != xs) {
      host_x = Tensor::empty(xs, DType::F32, Device::CPU);
      host_y = Tensor::empty(ys, DType::I32, Device::CPU);
    }
    // Host copies of the support set (a GPU episode carries one).
    const float* sx = nullptr;
    std::vector<float> sx_copy;
    std::vector<int32_t> sy_copy;
    const int32_t* sy = nullptr;
    if (ep.support_x.device() == Device::CPU) {
      sx = ep.support_x.data();
      sy = ep.support_y.data_i32();
    } else {
      if (static_cast<int64_t>(ep.support_host.size()) == ep.support_x.numel()) {
        sx = ep.support_host.data();
      } else {
        sx_copy = ep.support_x.to_vector();
        sx = sx_copy.data();
      }
      if (static_cast<int64_t>(ep.support_y_host.size()) == ep.support_y.numel()) {
        sy = ep.support_y_host.data();  // no readback (the sampler kept the labels)
      } else {
        sy_copy = ep.support_y.to_int_vector();
        sy = sy_copy.data();
      }
    }
    float* hx = host_x.data();
    int32_t* hy = host_y.data_i32();
    int64_t b = 0;
    auto draw = [&]() {
      rows_scratch.resize(B);
      if (opt.with_replacement) {
        for (int64_t i = 0; i < B; ++i) rows_scratch[i] = static_cast<int>(rng.below(n));
      } else {
        // Partial Fisher-Yates: B distinct rows.
        std::vector<int> perm(n);
        std::iota(perm.begin(), perm.end(), 0);
        for (int64_t i = 0; i < B; ++i) {
          const int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(n - i)));
          std::swap(perm[i], perm[j]);
          rows_scratch[i] = perm[i];
        }
      }
      for (int64_t i = 0; i < B; ++i) {
        const int r = rows_scratch[i];
        std::memcpy(hx + (b * B + i) * per, sx + r * per, sizeof(float) * per);
        hy[b * B + i] = sy[r];
      }
      return b++;
    };
    std::vector<int64_t> a_idx(steps, -1), w_idx(steps, -1);
    for (int s = 0; s < steps; ++s) {
      // Drawn in MetaNAS's order: the architecture batch, then the weight batch.
      if (arch[s] && opt.optimizer == InnerOptimizer::Adam) a_idx[s] = draw();
      w_idx[s] = draw();
    }
    const Device dev = ep.support_x.device();
    if (dev == Device::CPU) {
      dev_x = host_x;
      dev_y = host_y;
    } else {
      if (!dev_x.defined() || dev_x.shape() != xs || dev_x.device() != dev) {
        dev_x = Tensor::empty(xs, DType::F32, dev);
        dev_y = Tensor::empty(ys, DType::I32, dev);
      }
      dev_x.copy_(host_x);
      dev_y.copy_(host_y);
    }
    auto batch = [&](int64_t i) { return nas::Batch{rows_view(dev_x, i * B, B), rows_view(dev_y, i * B, B)}; };
    for (int s = 0; s < steps; ++s) {
      for_weights[s] = batch(w_idx[s]);
      if (arch[s]) for_alpha[s] = a_idx[s] >= 0 ? batch(a_idx[s]) : for_weights[s];
    }
  }
};

// ---- TaskLearner ----

TaskLearner::TaskLearner(const nas::Model& meta_model, const TaskLearnerOptions& opt)
    : meta_(&meta_model), opt_(opt), batches_(std::make_unique<Batches>()) {
  opt_.validate();
  stage_len_ = opt_.arch_steps;
  opt_.arch_steps *= opt_.reg.stages;  // P-DARTS: the architecture steps repeat once per stage
  opt_.schedule.steps = std::max(1, opt_.arch_steps);
  model_ = meta_model.clone();
  if (opt_.optimizer == InnerOptimizer::Adam) {
    nas::DartsOptions d = opt_.darts;
    d.warmup = false;
    darts_ = std::make_unique<nas::DartsTaskOptimizer>(*model_, d);
  } else {
    sgd_w_ = std::make_unique<Sgd>(model_->weights(), opt_.sgd_w_lr);
    sgd_w_->max_grad_norm = opt_.sgd_w_grad_clip;
    if (ParamSet* a = model_->alphas()) sgd_a_ = std::make_unique<Sgd>(*a, opt_.sgd_a_lr);
  }
  bool outer_only = false;
  for (int i = 0; i < model_->weights().size(); ++i) outer_only = outer_only || model_->outer_only(i);
  MN_CHECK(!outer_only || opt_.lslr_values > 0, "TaskLearner: the ", model_->kind(),
           " model has outer-only weights: it needs per-step rates (the Sgd inner loop with lslr_values > 0)");
  if (opt_.lslr_values > 0)
    lrs_ = std::make_unique<InnerLrs>(*model_, opt_.lslr_values, opt_.sgd_w_lr, opt_.sgd_a_lr);
}

TaskLearner::~TaskLearner() { set_graphs(false); }

void TaskLearner::reset_to_meta() {
  model_->weights().copy_from(meta_->weights());
  const ParamSet* ma = meta_->alphas();
  ParamSet* ta = model_->alphas();
  MN_CHECK((ma == nullptr) == (ta == nullptr), "TaskLearner: the task model and the meta model differ in "
                                               "having architecture parameters");
  if (ta) ta->copy_from(*ma);
}

nas::ForwardContext TaskLearner::step_context(int step, bool warmup, Rng* rng) const {
  nas::ForwardContext ctx;
  ctx.normalizer = opt_.normalizer;
  ctx.prune_threshold = opt_.prune_threshold;
  ctx.drop_path_prob = opt_.drop_path_prob;
  ctx.training = true;
  ctx.rng = rng;
  ctx.step = step;
  ctx.plan_epoch = plan_epoch_;
  // Drop-path masks keyed by (seed, task, step, op): the same on every backend.
  if (ctx.drop_path_prob > 0.f) ctx.drop_key = PhiloxKey{drop_seed_, task_index_, static_cast<uint32_t>(step), 0};
  // The temperature anneals only while the architecture is adapted; without
  // architecture steps (warm-up, fixed alphas) it stays at t_max, as MetaNAS.
  const bool anneal = !warmup && opt_.adapt_alphas && opt_.arch_steps > 0 && model_->alphas();
  if (anneal)
    opt_.schedule.apply(ctx, std::min(step, opt_.arch_steps - 1), false);
  else
    opt_.schedule.apply(ctx, 0, true);
  apply_step_regularizers(ctx, step);
  return ctx;
}

nas::ForwardContext TaskLearner::final_context() const {
  nas::ForwardContext ctx = step_context(opt_.arch_steps + opt_.weight_steps - 1, last_warmup_, nullptr);
  ctx.drop_path_prob = 0.f;
  ctx.training = false;
  ctx.skip_dropout = 0.f;
  ctx.aux_skip_beta = opt_.reg.aux_beta_at(opt_.arch_steps, opt_.arch_steps);  // after the search
  return ctx;
}

AdaptResult TaskLearner::adapt(const data::Episode& ep, Rng& rng, bool warmup) {
  check_episode(ep, *model_, "TaskLearner::adapt");
  reset_to_meta();
  if (pre_) pre_->before_adapt(ep, warmup);
  dropped_ = nas::DroppedOps{};
  last_warmup_ = warmup;
  last_rng_ = &rng;
  const int steps = opt_.arch_steps + opt_.weight_steps;
  ParamSet* A = model_->alphas();
  std::vector<bool> arch(steps);
  for (int s = 0; s < steps; ++s) arch[s] = A && opt_.adapt_alphas && !warmup && s < opt_.arch_steps;
  batches_->prepare(ep, opt_, arch, rng, graphs_ != nullptr);
  // Within this task no meta-pruned logit is revived (only Adam steps touch
  // the alphas), so the plan's candidates are read once per task.
  plan_epoch_ = nas::next_plan_epoch();
  if (opt_.drop_path_prob > 0.f) {
    drop_seed_ = rng.next_u64();
    if (graphs_) {
      // Into the learner's fixed words before the steps (stream-ordered
      // upload, no wait): a graph captured for another task reads them.
      const Device dev = model_->device();
      if (!drop_words_.defined() || drop_words_.device() != dev)
        drop_words_ = Tensor::zeros(Shape{3}, DType::I32, dev);
      drop_words_.copy_(Tensor::from_ints({static_cast<int32_t>(static_cast<uint32_t>(drop_seed_)),
                                           static_cast<int32_t>(static_cast<uint32_t>(drop_seed_ >> 32)),
                                           static_cast<int32_t>(task_index_)},
                                          Shape{3}));
    }
  }

  AdaptResult r;
  r.steps = steps;
  for (int s = 0; s < steps; ++s) {
    nas::ForwardContext ctx = step_context(s, warmup, &rng);
    if (graphs_ && ctx.drop_key) ctx.drop_key_words = drop_words_;
    const nas::Batch& bw = batches_->for_weights[s];
    if (darts_) {
      darts_->set_warmup(!arch[s]);
      const nas::Batch& ba = arch[s] ? batches_->for_alpha[s] : bw;
      nas::DartsStepResult sr = graphs_ ? graphed_step(s, arch[s], ba, bw, ctx)
                                : arch[s] ? regularized_step(s, ba, bw, ctx)
                                          : darts_->step(ba, bw, ctx);
      r.last_support_loss = sr.w_loss;
      r.last_support_acc = sr.w_acc;
    } else {
      // One joint backward for weights (and alphas when adapted).
      ParamSet& W = model_->weights();
      W.zero_grad();
      if (arch[s]) A->zero_grad();
      {
        nas::FreezeParams fa(arch[s] ? nullptr : A);
        const nas::LossAcc la = model_->loss_backward(bw, ctx);
        r.last_support_loss = la.loss;
        r.last_support_acc = la.acc;
      }
      if (observer_) observer_->after_gradient(s, bw, ctx, arch[s]);
      if (lrs_) {
        lrs_->apply(*model_, s, arch[s]);
      } else {
        sgd_w_->step();
        if (arch[s]) sgd_a_->step();
      }
      if (observer_) observer_->after_update(s);
    }
    after_step(s, arch[s]);
  }
  finish_adapt();
  return r;
}

QueryResult TaskLearner::evaluate_query(const data::Episode& ep, bool non_transductive) {
  check_episode(ep, *model_, "TaskLearner::evaluate_query");
  MN_CHECK(ep.query_x.dim(0) >= 1, "TaskLearner::evaluate_query: the episode has no query images");
  prepare_query();
  nas::ForwardContext ctx = final_context();
  ctx.rng = last_rng_;  // gumbel-softmax draws noise in every forward
  QueryResult q;
  if (!non_transductive) {
    Tensor logits = model_->forward(ep.query_x, ctx);
    q.loss = cross_entropy(logits, ep.query_y);
    q.acc = accuracy(logits.detach(), ep.query_y);
    return q;
  }
  // Each query image in one batch with the support set, so batch-norm
  // statistics never combine query images. Device-side copies only.
  NoGradGuard ng;
  const int64_t S = ep.support_x.dim(0), Q = ep.query_x.dim(0);
  std::vector<int64_t> dims = ep.support_x.shape().dims();
  dims[0] = S + 1;
  Batches& b = *batches_;
  if (!b.nt_x.defined() || b.nt_x.shape() != Shape(dims) || b.nt_x.device() != ep.support_x.device()) {
    b.nt_x = Tensor::empty(Shape(dims), DType::F32, ep.support_x.device());
    b.nt_y = Tensor::empty(Shape{S + 1}, DType::I32, ep.support_x.device());
  }
  Tensor head = rows_view(b.nt_x, 0, S), tail = rows_view(b.nt_x, S, 1);
  head.copy_(ep.support_x);
  Tensor loss_sum, acc_sum;
  const int64_t classes = model_->num_classes();
  for (int64_t i = 0; i < Q; ++i) {
    tail.copy_(rows_view(ep.query_x, i, 1));
    Tensor logits = model_->forward(b.nt_x, ctx);
    Tensor row = select_row(logits, S).reshape(Shape{1, classes});
    Tensor y = rows_view(ep.query_y, i, 1);
    Tensor l = cross_entropy(row, y), a = accuracy(row, y);
    loss_sum = loss_sum.defined() ? add(loss_sum, l) : l;
    acc_sum = acc_sum.defined() ? add(acc_sum, a) : a;
  }
  q.loss = mul_scalar(loss_sum, 1.f / static_cast<float>(Q));
  q.acc = mul_scalar(acc_sum, 1.f / static_cast<float>(Q));
  return q;
}

void TaskLearner::save_state(Checkpoint& ck, const std::string& prefix) const {
  if (darts_) darts_->save_state(ck, prefix);
  if (lrs_) lrs_->save(ck, prefix + "lslr.");
}

void TaskLearner::load_state(const Checkpoint& ck, const std::string& prefix) {
  if (lrs_) lrs_->load(ck, prefix + "lslr.");
  if (!darts_) return;
  if (ck.has(prefix + "w_opt.adam.hparams"))
    darts_->load_state(ck, prefix);
  else
    darts_->reset_state();
}

void TaskLearner::set_pre_optimizer(std::shared_ptr<TaskPreOptimizer> pre) {
  pre_ = std::move(pre);
  if (pre_) pre_->attach(*model_, step_context(0, false, nullptr), final_context());
}

void TaskLearner::reset_state() {
  if (darts_) darts_->reset_state();
}

}  // namespace metanas::meta
