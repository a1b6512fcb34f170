// Fixed-architecture models: DiscreteNetwork (cells from a genotype) and the
// ConvNet4 baseline.
#include "metanas/nas/discrete_network.h"

#include <algorithm>

#include "blocks.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::nas {

namespace detail {

struct DiscreteCell {
  bool reduction = false;
  Preprocess pre0, pre1;
  std::vector<std::vector<OpBlock>> ops;    // [node][edge]
  std::vector<std::vector<int>> inputs;     // [node][edge] state index
  std::vector<int> concat;
};

struct DiscreteNetworkImpl {
  DiscreteConfig cfg;
  Genotype genotype;
  ParamSet weights;
  Stem stem;
  std::vector<DiscreteCell> cells;
  Classifier classifier;

  DiscreteNetworkImpl(const DiscreteConfig& c, const Genotype& g, Device d)
      : cfg(c), genotype(g), weights(d) {}
};

}  // namespace detail

DiscreteNetwork::DiscreteNetwork(const DiscreteConfig& cfg, const Genotype& genotype, Rng& rng,
                                 Device device)
    : impl_(std::make_unique<detail::DiscreteNetworkImpl>(cfg, genotype, device)) {
  cfg.validate();
  genotype.validate();
  auto& m = *impl_;
  const std::vector<int> reductions = cfg.resolved_reductions();
  const int64_t c_stem = static_cast<int64_t>(cfg.stem_multiplier) * cfg.C;

  detail::ParamBuilder b(m.weights);
  m.stem = detail::make_stem(b, cfg.in_channels, c_stem, cfg.stem);
  int64_t c_pp = c_stem, c_p = c_stem, c_cur = cfg.C;
  bool red_prev = false;
  for (int k = 0; k < cfg.layers; ++k) {
    detail::DiscreteCell cell;
    cell.reduction = std::find(reductions.begin(), reductions.end(), k) != reductions.end();
    if (cell.reduction) c_cur *= cfg.channel_scale;
    const auto& gene = cell.reduction ? genotype.reduce : genotype.normal;
    cell.concat = cell.reduction ? genotype.reduce_concat : genotype.normal_concat;
    const std::string cn = "cell" + std::to_string(k);
    cell.pre0 = detail::make_preprocess(b, cn + ".pre0", c_pp, c_cur, red_prev, true, cfg.reduce_pad_odd);
    cell.pre1 = detail::make_preprocess(b, cn + ".pre1", c_p, c_cur, false, true);
    for (size_t i = 0; i < gene.size(); ++i) {
      std::vector<detail::OpBlock> ops;
      std::vector<int> ins;
      for (size_t e = 0; e < gene[i].size(); ++e) {
        const GenotypeEdge& edge = gene[i][e];
        const int stride = cell.reduction && edge.input < 2 ? 2 : 1;
        const std::string en = cn + ".node" + std::to_string(i) + ".edge" + std::to_string(e);
        ops.push_back(detail::make_op(b, en, edge.op, c_cur, stride, true, cfg.reduce_pad_odd, cfg.pool_bn));
        ins.push_back(edge.input);
      }
      cell.ops.push_back(std::move(ops));
      cell.inputs.push_back(std::move(ins));
    }
    c_pp = c_p;
    c_p = c_cur * static_cast<int64_t>(cell.concat.size());
    red_prev = cell.reduction;
    m.cells.push_back(std::move(cell));
  }
  m.classifier = detail::make_classifier(b, cfg.num_classes, c_p);
  b.finish(rng);
}

DiscreteNetwork::~DiscreteNetwork() = default;

ParamSet& DiscreteNetwork::weights() { return impl_->weights; }
const ParamSet& DiscreteNetwork::weights() const { return impl_->weights; }
int DiscreteNetwork::num_classes() const { return impl_->cfg.num_classes; }
const DiscreteConfig& DiscreteNetwork::config() const { return impl_->cfg; }
const Genotype& DiscreteNetwork::genotype() const { return impl_->genotype; }

std::unique_ptr<Model> DiscreteNetwork::clone() const {
  Rng scratch(0);
  auto c = std::make_unique<DiscreteNetwork>(impl_->cfg, impl_->genotype, scratch, device());
  c->impl_->weights.copy_from(impl_->weights);
  return c;
}

Tensor DiscreteNetwork::forward(const Tensor& x, const ForwardContext& ctx) {
  auto& m = *impl_;
  const bool drop = detail::check_cell_forward("DiscreteNetwork::forward", x, m.cfg.in_channels, device(), ctx);

  const PhiloxKey dkey = drop ? detail::forward_drop_key(ctx) : PhiloxKey{};
  uint32_t op_index = 0;  // every op of the network, in order (all are computed)
  Tensor stem = detail::apply(m.stem, m.weights, x);
  Tensor s0 = stem, s1 = stem;
  for (const auto& cell : m.cells) {
    detail::CellStates states(cell.pre0, cell.pre1, m.weights, s0, s1);
    for (size_t i = 0; i < cell.ops.size(); ++i) {
      Tensor node;
      for (size_t e = 0; e < cell.ops[i].size(); ++e) {
        const detail::OpBlock& op = cell.ops[i][e];
        Tensor y = detail::apply(op, m.weights, states.get(cell.inputs[i][e]));
        if (drop && !op.identity()) y = detail::keyed_drop_path(y, ctx, dkey, op_index);
        ++op_index;
        node = node.defined() ? add(node, y) : y;
      }
      states.push(node);
    }
    std::vector<Tensor> outs;
    for (int s : cell.concat) outs.push_back(states.get(s));
    s0 = s1;
    s1 = outs.size() == 1 ? outs[0] : concat_channels(outs);
  }
  return detail::apply(m.classifier, m.weights, s1);
}

// ---- ConvNet4 ----

ConvNet4::ConvNet4(const ConvNet4Config& cfg, Rng& rng, Device device) : cfg_(cfg), weights_(device) {
  cfg.validate();
  detail::ParamBuilder b(weights_);
  int64_t cin = cfg.in_channels;
  for (int i = 0; i < 4; ++i) {
    const std::string n = "block" + std::to_string(i);
    blocks_[i].conv = b.conv(n + ".conv", cfg.channels, cin, 3, 3);
    detail::Bn bn = b.bn(n + ".bn", cfg.channels, true);
    blocks_[i].gamma = bn.gamma;
    blocks_[i].beta = bn.beta;
    cin = cfg.channels;
  }
  const int64_t feat = static_cast<int64_t>(cfg.channels) * cfg.final_size() * cfg.final_size();
  fc_w_ = b.linear_weight("classifier.weight", cfg.num_classes, feat);
  fc_b_ = b.linear_bias("classifier.bias", cfg.num_classes, feat);
  b.finish(rng);
}

std::unique_ptr<Model> ConvNet4::clone() const {
  Rng scratch(0);
  auto c = std::make_unique<ConvNet4>(cfg_, scratch, device());
  c->weights_.copy_from(weights_);
  return c;
}

Tensor ConvNet4::forward(const Tensor& x, const ForwardContext& ctx) {
  detail::check_input("ConvNet4::forward", x, cfg_.in_channels);
  Tensor h = x;
  for (const Block& blk : blocks_) {
    h = conv2d(h, weights_[blk.conv], Conv2dOptions::same(1, 1));
    // relu(max_pool(.)) == max_pool(relu(.)), values and gradients bit for bit
    // (relu is monotone and its gradient is 0 wherever a window's max is <= 0):
    // relu after the pool touches a quarter of the elements.
    h = max_pool2d(detail::apply_bn(h, weights_, detail::Bn{blk.gamma, blk.beta}), 2, 2, 0);
    h = relu(h);
  }
  const int64_t feat = h.dim(1) * h.dim(2) * h.dim(3);
  MN_CHECK(feat == weights_.shape(fc_w_)[1], "ConvNet4::forward: input ", x.describe(),
           " gives ", feat, " features but the classifier was built for image_size ", cfg_.image_size,
           " (", weights_.shape(fc_w_)[1], " features)");
  return linear(flatten(h), weights_[fc_w_], weights_[fc_b_]);
}

}  // namespace metanas::nas
