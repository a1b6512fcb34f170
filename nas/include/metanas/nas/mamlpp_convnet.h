// ConvNet4pp: the 4-conv network of MAML++ (Antoniou et al., "How to train
// your MAML"; VGGReLUNormNetwork of HowToTrainYourMAMLPytorch):
//   4 x [conv3x3 pad 1 (Xavier-uniform) -> per-step BN -> leaky ReLU ->
//   max pool 2x2 stride 2], flatten, linear (Xavier-uniform, bias 0).
// Per-step BN: weights and biases of shape [bn_steps, C] (ones / zeros),
// row ctx.step (clamped to bn_steps - 1) in each forward; they are
// outer-only (outer_only() is true: the inner loop never adapts them, as the
// reference's enable_inner_loop_optimizable_bn_params = false). Running
// statistics [bn_steps, C] (momentum 0.1) are updated by every forward but,
// as in the reference, normalisation always uses the batch statistics;
// backup/restore_running_stats() save and restore them around test tasks.
// clone() shares the running statistics with the original (the reference has
// one network whose statistics every task updates); they are not saved in
// checkpoints since no forward reads them.
// Departure: the conv bias is left out: batch-statistics BN right after it
// subtracts the per-channel mean, so a bias changes no output and gets an
// identically zero gradient (docs/reproduction.md).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "metanas/nas/model.h"

namespace metanas::nas {

struct ConvNet4ppConfig {
  int in_channels = 1;
  int image_size = 28;
  int num_classes = 20;
  int channels = 64;        // MAML++: 64 (Omniglot), 48 (MiniImageNet)
  int bn_steps = 5;         // rows of the per-step BN tensors (the inner steps)
  float leaky_slope = 0.01f;  // F.leaky_relu's default negative slope

  int final_size() const;  // spatial size after the four pools
  void validate() const;
  std::string to_json() const;
  static ConvNet4ppConfig from_json(const std::string& text);
  bool operator==(const ConvNet4ppConfig& o) const;
  bool operator!=(const ConvNet4ppConfig& o) const { return !(*this == o); }
};

class ConvNet4pp : public Model {
 public:
  ConvNet4pp(const ConvNet4ppConfig& cfg, Rng& rng, Device device = Device::CPU);

  Tensor forward(const Tensor& x, const ForwardContext& ctx) override;
  ParamSet& weights() override { return weights_; }
  const ParamSet& weights() const override { return weights_; }
  std::string kind() const override { return "convnet4pp"; }
  int num_classes() const override { return cfg_.num_classes; }
  std::unique_ptr<Model> clone() const override;
  void to(Device device) override;
  bool outer_only(int weight_index) const override;
  void backup_running_stats() override;
  void restore_running_stats() override;

  const ConvNet4ppConfig& config() const { return cfg_; }
  // Running statistics of block b ([bn_steps, C]).
  const Tensor& running_mean(int b) const { return stats_->mean[b]; }
  const Tensor& running_var(int b) const { return stats_->var[b]; }

 private:
  struct Block {
    int conv = -1, gamma = -1, beta = -1;
  };
  struct Stats {
    Tensor mean[4], var[4], mean_backup[4], var_backup[4];
  };
  ConvNet4ppConfig cfg_;
  ParamSet weights_;
  Block blocks_[4];
  int fc_w_ = -1, fc_b_ = -1;
  std::shared_ptr<Stats> stats_;
};

}  // namespace metanas::nas
