// The environment over one cell type's architecture weights of a task's
// search network (reference: meta-fsl-nas env/nas_env.py, NasEnv).
//
// Cell graph: nodes 0, 1 (the cell inputs) and 2 .. nodes+1; adjacency
// A = all pairs except (0, 1) and self loops. The agent stands on a directed
// edge (cur -> next); every edge (j -> i+2) of node i (row j of alpha_i) can
// be entered from either end.
//   observation [from, to, top2, A[to] (nodes+2), p (ops)]: p = softmax(alpha
//     row) of the edge, top2 = whether j is among node i's two inputs with
//     the largest max_k p[j, k];
//   actions: 0 .. nodes+1: move to that node (valid iff A[next][a]: the new
//     edge is next -> a); then `ops` raise actions and (unless increase_only)
//     `ops` lower actions on the current edge's op k: p[k] +- alpha_step
//     (raises capped at 0.99, lowers kept above 0), then p += 0.01 and the
//     logits become log(p) + ln 10 (the reference's inverse softmax);
//   mask: the move validity, all op actions valid (alpha_action_masking also
//     masks ops already adjusted since the last move);
//   estimation: on a legal move after a change, into an edge not entered
//     after a change before in this episode: estimator() (one DARTS step and
//     the support accuracy), reward = (acc <= baseline ? 0 : 0.2 + (acc -
//     baseline) (max_reward - 0.2) / (1 - baseline)) + 0.2 * estimations so
//     far; the baseline becomes acc;
//   reset: the trial's start state (weights and alphas) is restored, the
//     start edge drawn (random_start) or edge 0, and the baseline estimated;
//   episode end: max_steps steps or `estimations` estimations.
// The best estimated state of the trial (weights and alphas right after the
// estimation) is kept; load_best() writes it into the network (the start
// state when nothing was estimated).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "metanas/engine/param_set.h"
#include "metanas/engine/random.h"
#include "metanas/meta/rl/env.h"
#include "metanas/nas/search_network.h"

namespace metanas::meta::rl {

struct AlphaEnvOptions {
  int max_steps = 200;
  int estimations = 5;  // per episode, besides the baseline estimate at reset
  float alpha_step = 0.1f;
  bool increase_only = false;
  bool random_start = true;
  bool alpha_action_masking = false;
  float max_reward = 1.f;
  // The estimation's DARTS step leaves the cell's pair weights (input-pair
  // alphas) as they were: only the task learner optimises them. The
  // reference's --env_disable_pairwise_alphas states this intent but has no
  // effect there (docs/reproduction.md); applied by the estimator
  // (MetaRlPreOptimizer::estimate); the action space is the same either way.
  bool disable_pairwise_alphas = false;
  void validate() const;
};

// Estimates the accuracy of the network's current state (may change it: one
// DARTS step). Returns a fraction in [0, 1].
using Estimator = std::function<float()>;

class AlphaEnv : public Env {
 public:
  // The network must outlive the environment.
  AlphaEnv(nas::SearchNetwork& net, nas::CellType type, const AlphaEnvOptions& opt, Estimator estimator, Rng& rng);
  int obs_size() const override { return 3 + n_nodes_ + ops_; }
  int action_count() const override { return n_nodes_ + (opt_.increase_only ? 1 : 2) * ops_; }
  Observation reset() override;
  Transition step(int action) override;

  // Starts a trial from the network's current state (weights and alphas).
  void begin_trial();
  // Writes the best estimated state of the trial into the network.
  void load_best();

  // Trial statistics.
  float first_baseline() const { return first_baseline_; }  // the trial's first baseline estimate
  float best_accuracy() const { return best_acc_; }         // 0 when nothing was estimated
  int estimations_in_trial() const { return trial_estimations_; }
  int illegal_moves() const { return illegal_; }

  // The current edge and the normalised alphas (for tests).
  std::pair<int, int> edge() const { return {cur_, next_}; }
  const std::vector<std::vector<float>>& probabilities(int node) const { return p_.at(node); }

 private:
  void read_alphas();
  void write_row(int node, int row);
  Observation observe() const;
  bool adjust(int node, int row, int op, bool increase);
  float reward_for(float acc) const;
  void snapshot(ParamSet& w, ParamSet& a) const;
  void restore(const ParamSet& w, const ParamSet& a);

  nas::SearchNetwork* net_;
  nas::CellType type_;
  AlphaEnvOptions opt_;
  Estimator estimate_;
  Rng* rng_;
  int nodes_, n_nodes_, ops_;
  std::vector<std::vector<int>> adj_;
  std::vector<std::vector<std::vector<float>>> p_;  // [node][row][op]
  int cur_ = 0, next_ = 2;
  int steps_ = 0, estimations_ = 0, illegal_ = 0, trial_estimations_ = 0;
  bool do_update_ = false;
  float baseline_ = 0.f, first_baseline_ = 0.f, best_acc_ = 0.f;
  bool first_reset_ = true;
  std::map<std::pair<int, int>, int> visited_;
  std::vector<int32_t> adjusted_;
  ParamSet start_w_, start_a_, best_w_, best_a_;
};

}  // namespace metanas::meta::rl
