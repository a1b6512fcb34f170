// Fixed-architecture models: DiscreteNetwork (cells from a Genotype, as
// MetaNAS's scaled-up AugmentCNN) and ConvNet4 (the MAML/REPTILE baseline).
//
// DiscreteNetwork: stem conv3x3 -> stem_multiplier*C + affine BN; L cells
// with preprocessing (ReLU-conv1x1-BN, or factorized reduce after a
// reduction cell); node = sum of its edges' op outputs; edges from the cell
// inputs use stride 2 in reduction cells; drop-path (ctx.drop_path_prob,
// training only) on every op except identity; the cell output concatenates
// the genotype's concat states; channels grow by channel_scale at each
// reduction cell; global average pool, linear. All BN affine, batch stats.
//
// ConvNet4: 4 x [conv3x3 pad 1 (no bias: the training-mode BN right after
// cancels any bias exactly), affine BN, ReLU, max pool 2x2 stride 2], linear.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "metanas/nas/config.h"
#include "metanas/nas/genotype.h"
#include "metanas/nas/model.h"

namespace metanas::nas {

namespace detail {
struct DiscreteNetworkImpl;
}

class DiscreteNetwork : public Model {
 public:
  DiscreteNetwork(const DiscreteConfig& cfg, const Genotype& genotype, Rng& rng,
                  Device device = Device::CPU);
  ~DiscreteNetwork() override;
  DiscreteNetwork(const DiscreteNetwork&) = delete;
  DiscreteNetwork& operator=(const DiscreteNetwork&) = delete;

  Tensor forward(const Tensor& x, const ForwardContext& ctx) override;
  ParamSet& weights() override;
  const ParamSet& weights() const override;
  std::optional<Genotype> architecture() const override { return genotype(); }
  std::string kind() const override { return "discrete"; }
  int num_classes() const override;
  std::unique_ptr<Model> clone() const override;

  const DiscreteConfig& config() const;
  const Genotype& genotype() const;

 private:
  std::unique_ptr<detail::DiscreteNetworkImpl> impl_;
};

class ConvNet4 : public Model {
 public:
  ConvNet4(const ConvNet4Config& cfg, Rng& rng, Device device = Device::CPU);

  Tensor forward(const Tensor& x, const ForwardContext& ctx) override;
  ParamSet& weights() override { return weights_; }
  const ParamSet& weights() const override { return weights_; }
  std::string kind() const override { return "convnet4"; }
  int num_classes() const override { return cfg_.num_classes; }
  std::unique_ptr<Model> clone() const override;

  const ConvNet4Config& config() const { return cfg_; }

 private:
  struct Block {
    int conv = -1, gamma = -1, beta = -1;
  };
  ConvNet4Config cfg_;
  ParamSet weights_;
  Block blocks_[4];
  int fc_w_ = -1, fc_b_ = -1;
};

}  // namespace metanas::nas
