// The alpha-editing environment of the meta-RL pre-optimisation.
#include "metanas/meta/rl/alpha_env.h"

#include <algorithm>
#include <cmath>

#include "metanas/engine/error.h"

namespace metanas::meta::rl {

void AlphaEnvOptions::validate() const {
  MN_CHECK(max_steps >= 1, "meta_rl.max_steps must be >= 1, got ", max_steps);
  MN_CHECK(estimations >= 1, "meta_rl.estimations must be >= 1, got ", estimations);
  MN_CHECK(alpha_step > 0.f && alpha_step < 1.f, "meta_rl.alpha_step must lie in (0, 1), got ", alpha_step);
  MN_CHECK(max_reward > 0.2f, "meta_rl.max_reward must exceed 0.2 (the first gain's reward), got ", max_reward);
}

AlphaEnv::AlphaEnv(nas::SearchNetwork& net, nas::CellType type, const AlphaEnvOptions& opt, Estimator estimator,
                   Rng& rng)
    : net_(&net), type_(type), opt_(opt), estimate_(std::move(estimator)), rng_(&rng) {
  opt_.validate();
  MN_CHECK(static_cast<bool>(estimate_), "AlphaEnv: needs an estimator");
  nodes_ = net.config().nodes;
  n_nodes_ = nodes_ + 2;
  ops_ = static_cast<int>(net.alphas()->shape(net.alpha_index(type, 0))[1]);
  adj_.assign(n_nodes_, std::vector<int>(n_nodes_, 1));
  for (int i = 0; i < n_nodes_; ++i) adj_[i][i] = 0;
  adj_[0][1] = adj_[1][0] = 0;
  begin_trial();
}

void AlphaEnv::snapshot(ParamSet& w, ParamSet& a) const {
  w = net_->weights().clone();
  a = net_->alphas()->clone();
}

void AlphaEnv::restore(const ParamSet& w, const ParamSet& a) {
  net_->weights().copy_from(w);
  net_->alphas()->copy_from(a);
}

void AlphaEnv::begin_trial() {
  snapshot(start_w_, start_a_);
  snapshot(best_w_, best_a_);
  best_acc_ = 0.f;
  first_reset_ = true;
  trial_estimations_ = 0;
  illegal_ = 0;
}

void AlphaEnv::load_best() { restore(best_w_, best_a_); }

void AlphaEnv::read_alphas() {
  p_.assign(nodes_, {});
  for (int i = 0; i < nodes_; ++i) {
    const std::vector<float> a = (*net_->alphas())[net_->alpha_index(type_, i)].to_vector();
    const int rows = i + 2;
    p_[i].assign(rows, std::vector<float>(ops_));
    for (int j = 0; j < rows; ++j) {
      double mx = -1e300, s = 0;
      for (int k = 0; k < ops_; ++k) mx = std::max(mx, static_cast<double>(a[j * ops_ + k]));
      for (int k = 0; k < ops_; ++k) s += std::exp(a[j * ops_ + k] - mx);
      for (int k = 0; k < ops_; ++k) p_[i][j][k] = static_cast<float>(std::exp(a[j * ops_ + k] - mx) / s);
    }
  }
}

void AlphaEnv::write_row(int node, int row) {
  Tensor& t = (*net_->alphas())[net_->alpha_index(type_, node)];
  std::vector<float> a = t.to_vector();
  const double c = std::log(10.0);
  for (int k = 0; k < ops_; ++k) a[row * ops_ + k] = static_cast<float>(std::log(static_cast<double>(p_[node][row][k])) + c);
  t.copy_(Tensor::from_vector(a, t.shape()));
}

Observation AlphaEnv::observe() const {
  // The edge's alpha row: (j -> i+2) or (i+2 -> j) is row j of node i.
  const int i = std::max(cur_, next_) - 2, j = std::min(cur_, next_);
  const std::vector<std::vector<float>>& rows = p_[i];
  std::vector<float> best(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) best[r] = *std::max_element(rows[r].begin(), rows[r].end());
  // Top 2 inputs by their strongest op (ties: the lower index, as torch.topk on CPU).
  std::vector<int> order(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) order[r] = static_cast<int>(r);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return best[a] > best[b]; });
  const bool top2 = order[0] == j || (order.size() > 1 && order[1] == j);
  Observation o;
  o.obs = {static_cast<float>(cur_), static_cast<float>(next_), top2 ? 1.f : 0.f};
  for (int n = 0; n < n_nodes_; ++n) o.obs.push_back(static_cast<float>(adj_[next_][n]));
  for (float v : rows[j]) o.obs.push_back(v);
  o.mask.assign(action_count(), 1);
  for (int n = 0; n < n_nodes_; ++n) o.mask[n] = adj_[next_][n];
  if (opt_.alpha_action_masking)
    for (int a = n_nodes_; a < action_count(); ++a)
      if (adjusted_[a]) o.mask[a] = 0;
  return o;
}

bool AlphaEnv::adjust(int node, int row, int op, bool increase) {
  std::vector<float>& p = p_[node][row];
  float step = opt_.alpha_step;
  const float cur = p[op];
  if (increase) {
    if (cur + step > 1.f) step -= cur + step - 0.99f;  // allow up to 0.99
    if (!(cur + step < 1.f)) return false;
    p[op] = cur + step;
  } else {
    if (cur - step < 0.f) step -= step - cur + 0.01f;  // keep it above 0
    if (!(cur - step > 0.f)) return false;
    p[op] = cur - step;
  }
  for (float& v : p) v += 0.01f;  // no zero probability: log(0) = -inf
  return true;
}

float AlphaEnv::reward_for(float acc) const {
  float r = 0.f;
  if (acc > baseline_) r = 0.2f + (acc - baseline_) * (opt_.max_reward - 0.2f) / (1.f - baseline_);
  return r + 0.2f * static_cast<float>(estimations_);
}

Observation AlphaEnv::reset() {
  restore(start_w_, start_a_);
  steps_ = 0;
  estimations_ = 0;
  do_update_ = false;
  visited_.clear();
  adjusted_.assign(action_count(), 0);
  if (opt_.random_start) {
    // Uniform over the undirected edges (a, b), a < b, entered as a -> b.
    std::vector<std::pair<int, int>> edges;
    for (int a = 0; a < n_nodes_; ++a)
      for (int b = a + 1; b < n_nodes_; ++b)
        if (adj_[a][b]) edges.push_back({a, b});
    const auto e = edges[rng_->below(edges.size())];
    cur_ = e.first;
    next_ = e.second;
  } else {
    cur_ = 0;
    next_ = 2;
  }
  baseline_ = estimate_();
  if (first_reset_) first_baseline_ = baseline_;
  first_reset_ = false;
  read_alphas();
  return observe();
}

Transition AlphaEnv::step(int action) {
  MN_CHECK(action >= 0 && action < action_count(), "AlphaEnv: action ", action, " out of range [0, ",
           action_count(), ")");
  Transition t;
  bool estimated = false;
  float acc = 0.f;
  if (action < n_nodes_) {
    if (adj_[next_][action]) {
      std::fill(adjusted_.begin(), adjusted_.end(), 0);
      cur_ = next_;
      next_ = action;
      if (do_update_) {
        do_update_ = false;
        const std::pair<int, int> key{std::min(cur_, next_), std::max(cur_, next_)};
        if (visited_[key]++ == 0) {
          ++estimations_;
          ++trial_estimations_;
          acc = estimate_();
          estimated = true;
          t.reward = reward_for(acc);
        }
      }
      read_alphas();  // the estimation's DARTS step changed them
    } else {
      ++illegal_;
    }
  } else {
    const int k = action - n_nodes_;
    const int i = std::max(cur_, next_) - 2, j = std::min(cur_, next_);
    adjusted_[action] = 1;
    if (adjust(i, j, k % ops_, k < ops_)) {
      write_row(i, j);
      read_alphas();
      do_update_ = true;
    }
  }
  if (estimated) {
    if (acc > 0.f) baseline_ = acc;
    if (acc > best_acc_) {
      best_acc_ = acc;
      snapshot(best_w_, best_a_);
    }
  }
  t.done = steps_ == opt_.max_steps - 1 || estimations_ == opt_.estimations;
  ++steps_;
  t.next = observe();
  return t;
}

}  // namespace metanas::meta::rl
