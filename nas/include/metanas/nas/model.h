// The common model interface of the NAS module, and the per-forward settings
// (ForwardContext) that the meta-learning layer passes to every forward.
//
// Implementations: SearchNetwork (the MetaNAS one-shot network, with
// architecture parameters), DiscreteNetwork (a network built from a
// Genotype) and ConvNet4 (the 4-conv MAML/REPTILE baseline). A model owns its
// weight ParamSet and, when it has one, its architecture ParamSet; callers
// copy them around with ParamSet::copy_from / lerp_ (REPTILE) and never keep
// the parameter views across ParamSet::to().
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"
#include "metanas/kernels/kernel_types.h"
#include "metanas/nas/genotype.h"

namespace metanas::nas {

// How architecture logits become weights (per row of an alpha matrix, and per
// node for the pair weights).
enum class Normalizer {
  // softmax(a / T)
  Softmax,
  // (1 - lambda) softmax(a) + lambda relu(a) / sum relu(a), lambda =
  // ForwardContext::anneal_progress (MetaNAS's "relusoftmax"; T is not used).
  // Reaches exact zeros, which soft pruning then skips.
  ReluSoftmax,
  // softmax((a + g) / T), g ~ Gumbel(0, 1) drawn from ForwardContext::rng
  // each forward (PyTorch's gumbel_softmax without the hard option).
  GumbelSoftmax,
};

// "softmax", "relu_softmax", "gumbel_softmax".
const char* normalizer_name(Normalizer n);
// Accepts the names above plus MetaNAS's "relusoftmax"; throws otherwise.
Normalizer parse_normalizer(const std::string& name);

struct ForwardContext {
  // Softmax temperature T (> 0), usually TemperatureSchedule::at(step).
  float temperature = 1.f;
  Normalizer normalizer = Normalizer::Softmax;
  // Annealing progress in [0, 1] (TemperatureSchedule::progress): the mixing
  // lambda of the relu-softmax normalizer.
  float anneal_progress = 0.f;
  // Soft pruning: mixed-op inputs and input pairs whose normalized weight is
  // <= this are not computed. Negative: compute everything. The default 0
  // skips exactly-zero weights only (meta-pruned ops, relu-softmax zeros).
  float prune_threshold = 0.f;
  // Drop-path probability for op outputs (0 = off); only when training.
  float drop_path_prob = 0.f;
  // Training mode: enables drop-path. BN always normalizes with batch
  // statistics (MetaNAS/REPTILE never switch models to eval mode).
  bool training = true;
  // DARTS-: weight of the auxiliary skip branch of each edge (search networks
  // built with SearchConfig::aux_skip; 0 = branch not computed).
  float aux_skip_beta = 0.f;
  // P-DARTS: dropout rate on the outputs of identity skip ops (only when
  // training; needs rng).
  float skip_dropout = 0.f;
  // Source of gumbel noise and drop-path masks; required when those are on.
  Rng* rng = nullptr;
  // Inner-loop step of this forward (0-based): models with per-step batch
  // norm (MAML++) use that step's BN parameters; the others ignore it.
  int step = 0;
  // Drop-path masks keyed by (seed, task, step, op) (issue 16): when set, op
  // o of the network draws its mask from the Philox stream {seed, task, step,
  // op + o}, o its fixed index in the network (whether or not other ops are
  // computed), so CPU and CUDA runs draw the same masks and nothing is read
  // from rng. Unset: one seed is drawn from rng per forward, task = step = 0.
  std::optional<PhiloxKey> drop_key;
  // With drop_key: optionally the key's seed and task as device words (int32
  // [3] on the model's device: seed low, seed high, task; equal to
  // drop_key's), which the drop-path kernels read instead of host arguments,
  // so a CUDA graph of a step replays for another task (TaskLearner with
  // run.cuda_graphs). The masks are the same as drop_key's.
  Tensor drop_key_words;
  // Soft-pruning plan epoch (issue 16). 0: every forward reads its normalized
  // architecture weights back and skips the pruned terms on the host. Non-zero:
  // the caller promises that within this epoch no meta-pruned logit
  // (kPrunedLogit) is revived; the network then reads its logits back once per
  // epoch to find the candidate terms (those not meta-pruned) and applies the
  // threshold on the device as 0/1 masks, which gives the same values and
  // gradients without a readback per forward.
  uint64_t plan_epoch = 0;
};

// Drop-path key op offsets of the forwards of one inner step, so that the
// architecture forward, the weight forward and the query forward of a step
// draw independent masks (each network uses fewer than 2^20 op indices).
constexpr uint32_t kDropPassStride = 1u << 20;

// A fresh non-zero plan epoch (process-wide counter).
uint64_t next_plan_epoch();

// One labelled batch: x float [N, C, H, W], y int32 [N].
struct Batch {
  Tensor x;
  Tensor y;
};

// A detached loss and the accuracy from the same forward (scalar tensors).
struct LossAcc {
  Tensor loss, acc;
};

// Marks every parameter of a set as not requiring grad while alive (null:
// does nothing), so that a backward computes no gradient for it: how weight-
// only and architecture-only gradients are taken.
class FreezeParams {
 public:
  explicit FreezeParams(ParamSet* ps) : ps_(ps) { set(false); }
  ~FreezeParams() { set(true); }
  FreezeParams(const FreezeParams&) = delete;
  FreezeParams& operator=(const FreezeParams&) = delete;

 private:
  void set(bool requires_grad) {
    if (ps_)
      for (int i = 0; i < ps_->size(); ++i) (*ps_)[i].set_requires_grad(requires_grad);
  }
  ParamSet* ps_;
};

class Model {
 public:
  virtual ~Model() = default;

  // Logits [N, num_classes] for x [N, in_channels, H, W].
  virtual Tensor forward(const Tensor& x, const ForwardContext& ctx) = 0;

  // The weights (everything trained by the weight optimizer).
  virtual ParamSet& weights() = 0;
  virtual const ParamSet& weights() const = 0;
  // Architecture parameters (alphas and pair weights); nullptr for fixed
  // architectures.
  virtual ParamSet* alphas() { return nullptr; }
  virtual const ParamSet* alphas() const { return nullptr; }

  // Parameters that a forward with `ctx` actually uses: for a search network
  // the weights of ops that survive soft pruning at ctx's temperature and
  // threshold (plus stem, preprocessing and classifier); for fixed
  // architectures all weights.
  virtual int64_t sparse_param_count(const ForwardContext& ctx) const { return weights().numel(); }
  // Version of the device tensors the forward's plan uses (the soft-pruning
  // plan's gather matrices): it changes when they are rebuilt, which drops
  // the CUDA graphs captured with the old ones (GraphCache). 0: none.
  virtual uint64_t plan_version() const { return 0; }

  // The architecture the model stands for: the arg-max genotype of a search
  // network, the fixed one of a discrete network; none for ConvNet4.
  virtual std::optional<Genotype> architecture() const { return std::nullopt; }
  // Meta-model pruning of architecture logits (MetaNAS prune_alphas, see
  // nas::meta_prune); returns how many were newly pruned, 0 for models
  // without architecture parameters.
  virtual int prune_architecture(float threshold, float t_min, Normalizer normalizer) { return 0; }

  // Weights the inner loop must not adapt (learned by the outer loop only:
  // MAML++'s per-step BN parameters). Index into weights().
  virtual bool outer_only(int weight_index) const { return false; }
  // Running batch-norm statistics that the forward keeps but never uses
  // (MAML++ per-step BN): saved before and restored after each test task.
  virtual void backup_running_stats() {}
  virtual void restore_running_stats() {}

  // "search", "discrete", "convnet4", "convnet4pp".
  virtual std::string kind() const = 0;
  virtual int num_classes() const = 0;
  // A structural copy with its own parameter buffers holding the same values.
  virtual std::unique_ptr<Model> clone() const = 0;

  // Moves all parameters to `device` (optimizers must be created afterwards).
  virtual void to(Device device);
  Device device() const { return weights().device(); }

  // Mean cross-entropy of forward(b.x) against b.y (a scalar tensor).
  Tensor loss(const Batch& b, const ForwardContext& ctx);
  // The same loss and the batch accuracy from one forward, then the loss's
  // backward (gradients accumulate into every parameter requiring grad).
  LossAcc loss_backward(const Batch& b, const ForwardContext& ctx);
};

}  // namespace metanas::nas
