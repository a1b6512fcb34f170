// ConvNet4pp: the MAML++ 4-conv network with per-step batch norm.
#include "metanas/nas/mamlpp_convnet.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "blocks.h"
#include "json_fields.h"
#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"

namespace metanas::nas {

namespace {
struct Fields {
  template <typename Cfg, typename F>
  void operator()(Cfg& c, F&& f) const {
    f("in_channels", c.in_channels);
    f("image_size", c.image_size);
    f("num_classes", c.num_classes);
    f("channels", c.channels);
    f("bn_steps", c.bn_steps);
    f("leaky_slope", c.leaky_slope);
  }
};

float xavier_bound(double fan_in, double fan_out) { return static_cast<float>(std::sqrt(6.0 / (fan_in + fan_out))); }

// leaky_relu(x) = (1 - a) relu(x) + a x, from existing differentiable ops.
Tensor leaky_relu(const Tensor& x, float a) {
  if (a == 0.f) return relu(x);
  return add(mul_scalar(relu(x), 1.f - a), mul_scalar(x, a));
}
}  // namespace

int ConvNet4ppConfig::final_size() const {
  int s = image_size;
  for (int i = 0; i < 4; ++i) s /= 2;
  return s;
}

void ConvNet4ppConfig::validate() const {
  const char* w = "ConvNet4ppConfig";
  MN_CHECK(in_channels > 0 && image_size > 0, w, ": in_channels and image_size must be positive");
  MN_CHECK(num_classes >= 2, w, ": num_classes must be >= 2, got ", num_classes);
  MN_CHECK(channels > 0, w, ": channels must be positive, got ", channels);
  MN_CHECK(bn_steps >= 1, w, ": bn_steps must be >= 1, got ", bn_steps);
  MN_CHECK(leaky_slope >= 0.f && leaky_slope < 1.f, w, ": leaky_slope must be in [0, 1), got ", leaky_slope);
  MN_CHECK(final_size() >= 1, w, ": image_size ", image_size, " is too small for four 2x2 poolings (needs >= 16)");
}

std::string ConvNet4ppConfig::to_json() const { return detail::fields_to_json(*this, Fields{}); }

ConvNet4ppConfig ConvNet4ppConfig::from_json(const std::string& text) {
  return detail::fields_from_json<ConvNet4ppConfig>(text, "ConvNet4ppConfig", Fields{});
}

bool ConvNet4ppConfig::operator==(const ConvNet4ppConfig& o) const {
  return in_channels == o.in_channels && image_size == o.image_size && num_classes == o.num_classes &&
         channels == o.channels && bn_steps == o.bn_steps && leaky_slope == o.leaky_slope;
}

ConvNet4pp::ConvNet4pp(const ConvNet4ppConfig& cfg, Rng& rng, Device device)
    : cfg_(cfg), weights_(device), stats_(std::make_shared<Stats>()) {
  cfg.validate();
  detail::ParamBuilder b(weights_);
  const int64_t C = cfg.channels, S = cfg.bn_steps;
  int64_t cin = cfg.in_channels;
  for (int i = 0; i < 4; ++i) {
    const std::string n = "block" + std::to_string(i);
    blocks_[i].conv = b.uniform(n + ".conv", Shape{C, cin, 3, 3}, xavier_bound(cin * 9.0, C * 9.0));
    blocks_[i].gamma = b.constant(n + ".bn.weight", Shape{S, C}, 1.f);
    blocks_[i].beta = b.constant(n + ".bn.bias", Shape{S, C}, 0.f);
    cin = C;
  }
  const int64_t feat = C * cfg.final_size() * cfg.final_size();
  fc_w_ = b.uniform("classifier.weight", Shape{cfg.num_classes, feat}, xavier_bound(feat, cfg.num_classes));
  fc_b_ = b.constant("classifier.bias", Shape{cfg.num_classes}, 0.f);
  b.finish(rng);
  for (int i = 0; i < 4; ++i) {
    stats_->mean[i] = Tensor::zeros(Shape{S, C}, DType::F32, device);
    stats_->var[i] = Tensor::full(Shape{S, C}, 1.f, device);
  }
}

std::unique_ptr<Model> ConvNet4pp::clone() const {
  Rng scratch(0);
  auto c = std::make_unique<ConvNet4pp>(cfg_, scratch, device());
  c->weights_.copy_from(weights_);
  c->stats_ = stats_;
  return c;
}

void ConvNet4pp::to(Device device) {
  weights_.to(device);
  for (int i = 0; i < 4; ++i) {
    stats_->mean[i] = stats_->mean[i].to(device);
    stats_->var[i] = stats_->var[i].to(device);
    stats_->mean_backup[i] = Tensor();
    stats_->var_backup[i] = Tensor();
  }
}

bool ConvNet4pp::outer_only(int i) const {
  for (const Block& b : blocks_)
    if (i == b.gamma || i == b.beta) return true;
  return false;
}

void ConvNet4pp::backup_running_stats() {
  for (int i = 0; i < 4; ++i) {
    stats_->mean_backup[i] = stats_->mean[i].clone();
    stats_->var_backup[i] = stats_->var[i].clone();
  }
}

void ConvNet4pp::restore_running_stats() {
  for (int i = 0; i < 4; ++i) {
    if (!stats_->mean_backup[i].defined()) continue;
    stats_->mean[i].copy_(stats_->mean_backup[i]);
    stats_->var[i].copy_(stats_->var_backup[i]);
  }
}

Tensor ConvNet4pp::forward(const Tensor& x, const ForwardContext& ctx) {
  detail::check_input("ConvNet4pp::forward", x, cfg_.in_channels);
  MN_CHECK(ctx.step >= 0, "ConvNet4pp::forward: negative inner step ", ctx.step);
  const int64_t s = std::min(ctx.step, cfg_.bn_steps - 1);
  const int64_t C = cfg_.channels;
  BatchNormOptions bo;  // batch statistics, eps 1e-5, momentum 0.1
  bo.training = true;
  Tensor h = x;
  for (int i = 0; i < 4; ++i) {
    const Block& blk = blocks_[i];
    h = conv2d(h, weights_[blk.conv], Conv2dOptions::same(1, 1));
    Tensor rm = stats_->mean[i].view(s * C, Shape{C});
    Tensor rv = stats_->var[i].view(s * C, Shape{C});
    h = batch_norm(h, select_row(weights_[blk.gamma], s), select_row(weights_[blk.beta], s), rm, rv, bo);
    h = leaky_relu(h, cfg_.leaky_slope);
    h = max_pool2d(h, 2, 2, 0);
  }
  const int64_t feat = h.dim(1) * h.dim(2) * h.dim(3);
  MN_CHECK(feat == weights_.shape(fc_w_)[1], "ConvNet4pp::forward: input ", x.describe(), " gives ", feat,
           " features but the classifier was built for image_size ", cfg_.image_size, " (",
           weights_.shape(fc_w_)[1], " features)");
  return linear(flatten(h), weights_[fc_w_], weights_[fc_b_]);
}

}  // namespace metanas::nas
