// Fixtures shared by the meta tests that use real networks: tiny search
// configurations, meta configurations on them, episodes of random images, and
// meta-batches from a sampler.
#pragma once
#include <cstdint>
#include <vector>

#include "metanas/datasets/episode.h"
#include "metanas/datasets/synthetic.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"
#include "metanas/meta/config.h"
#include "metanas/meta/learner.h"
#include "metanas/nas/config.h"

namespace metanas::testing {

// A small synthetic training split (3 alphabets x 6 classes x 6 drawers,
// 8x8 images): enough classes for 3-way episodes, fast to meta-train.
inline data::Dataset tiny_synthetic() {
  data::SyntheticOptions o;
  o.num_alphabets = 3;
  o.classes_per_alphabet = 6;
  o.drawers = 6;
  o.size = 8;
  o.seed = 3;
  return data::make_synthetic_split(o, "train");
}

// A search network for 3-way episodes of 8x8 images: C 4, stem x1, the given
// depth (default reduction cells) and nodes per cell.
inline nas::SearchConfig tiny_search_config(int layers, int nodes) {
  nas::SearchConfig c;
  c.image_size = 8;
  c.num_classes = 3;
  c.C = 4;
  c.layers = layers;
  c.nodes = nodes;
  c.stem_multiplier = 1;
  return c;
}

// An episode of U(0, 1) images [n, 1, size, size] with the given labels (the
// support images drawn from rng first).
inline data::Episode random_episode(Rng& rng, const std::vector<int32_t>& support_y,
                                    const std::vector<int32_t>& query_y, int64_t size = 8) {
  const int64_t S = static_cast<int64_t>(support_y.size()), Q = static_cast<int64_t>(query_y.size());
  data::Episode ep;
  ep.support_x = Tensor::rand_uniform(Shape{S, 1, size, size}, rng, 0.f, 1.f);
  ep.support_y = Tensor::from_ints(support_y, Shape{S});
  ep.query_x = Tensor::rand_uniform(Shape{Q, 1, size, size}, rng, 0.f, 1.f);
  ep.query_y = Tensor::from_ints(query_y, Shape{Q});
  return ep;
}

// n episodes drawn from the sampler (a meta-batch).
inline std::vector<data::Episode> draw_tasks(data::EpisodeSampler& s, int n) {
  std::vector<data::Episode> v;
  for (int i = 0; i < n; ++i) v.push_back(s.sample());
  return v;
}

// Runs iters meta-steps on meta-batches drawn from the sampler.
inline void meta_train(meta::MetaLearner& l, data::EpisodeSampler& s, int iters) {
  for (int i = 0; i < iters; ++i) l.meta_step(draw_tasks(s, l.config().meta.meta_batch_size));
}

// The meta configuration the meta tests on the tiny search network start
// from: 3-way episodes with 2 training shots and 2 queries, 2 inner steps on
// batches of 4, meta-batches of 2, no warm-up.
inline meta::MetaConfig tiny_meta_config(uint64_t seed) {
  meta::MetaConfig c;
  c.seed = seed;
  c.model.search = tiny_search_config(2, 2);
  c.episodes.ways = 3;
  c.episodes.train_shots = 2;
  c.episodes.queries = 2;
  c.task.steps = 2;
  c.task.batch_size = 4;
  c.meta.meta_batch_size = 2;
  c.meta.warmup_iterations = 0;
  return c;
}

// tiny_meta_config for AT-NAS: plain-SGD inner steps (lr 0.1, which AT-NAS
// requires), a small evolution (top-k 2, 2 mutants, 2 generations) and 2 + 1
// test steps; each test sets the population, crossovers and fitness steps.
inline meta::MetaConfig tiny_atnas_config(uint64_t seed) {
  meta::MetaConfig c = tiny_meta_config(seed);
  c.algorithm = meta::Algorithm::Atnas;
  c.task.optimizer = meta::InnerOptimizer::Sgd;
  c.task.sgd_w_lr = 0.1f;
  c.atnas.top_k = 2;
  c.atnas.mutants = 2;
  c.atnas.generations = 2;
  c.eval.arch_steps = 2;
  c.eval.weight_steps = 1;
  return c;
}

}  // namespace metanas::testing
