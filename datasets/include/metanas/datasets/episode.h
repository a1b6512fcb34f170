// Few-shot episodes: N-way K-shot tasks with Q queries per class drawn from a
// Dataset by a seeded, resumable sampler, and mini-batches drawn from an
// episode's support set (what MetaNAS's inner loop trains on).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "metanas/datasets/dataset.h"
#include "metanas/engine/random.h"
#include "metanas/engine/tensor.h"

namespace metanas::data {

// One task. Labels are 0..ways-1; label l is dataset class classes[l].
// Both sets are class-major: rows l*shots .. l*shots+shots-1 of support_x
// have label l (likewise queries), so class balance is exact.
struct Episode {
  Tensor support_x;  // float32 [ways*shots, C, H, W], values in [0, 1]
  Tensor support_y;  // int32 [ways*shots]
  Tensor query_x;    // float32 [ways*queries, C, H, W]
  Tensor query_y;    // int32 [ways*queries]
  int ways = 0, shots = 0, queries = 0;
  std::vector<int> classes;            // dataset class index of each label
  std::vector<ImageRef> support_refs;  // which dataset image each support row is
  std::vector<ImageRef> query_refs;
  // Host copies of support_x and support_y when they live on a GPU (for
  // support_batch and the task learner's batches: drawing support batches
  // then reads nothing back); empty on CPU, where the tensors are read.
  std::vector<float> support_host;
  std::vector<int32_t> support_y_host;
};

class EpisodeSampler {
 public:
  // Checks that the dataset holds `ways` classes of at least shots+queries
  // images each; throws metanas::Error with the numbers otherwise. Keeps its
  // own (cheap, pixel-sharing) copy of the dataset handle.
  EpisodeSampler(const Dataset& dataset, int ways, int shots, int queries, uint64_t seed,
                 Device device = Device::CPU);

  // Draws `ways` distinct classes uniformly, then shots+queries distinct
  // images of each, uniformly; the first `shots` go to the support set.
  Episode sample();
  // Same draw, reporting only which images (no pixel copies).
  void sample_refs(std::vector<int>* classes, std::vector<ImageRef>* support,
                   std::vector<ImageRef>* query);
  // Advances the generator past one episode without building it: what a
  // rank does for the tasks another rank owns, so every rank stays in step.
  void skip();

  // Generator state for checkpoints: restoring it makes the following
  // sample() calls repeat exactly.
  std::string state() const { return rng_.state(); }
  void set_state(const std::string& s) { rng_.set_state(s); }
  Rng& rng() { return rng_; }

  int ways() const { return ways_; }
  int shots() const { return shots_; }
  int queries() const { return queries_; }
  Device device() const { return device_; }
  const Dataset& dataset() const { return ds_; }

 private:
  Dataset ds_;
  int ways_, shots_, queries_;
  Device device_;
  Rng rng_;
  std::vector<int> class_perm_;  // scratch for partial shuffles
  std::vector<int> image_perm_;
};

// Builds an episode (tensors on `device`) from explicit picks, e.g. a fixed
// evaluation task. support/query rows must be class-major as in Episode.
Episode make_episode(const Dataset& dataset, const std::vector<int>& classes,
                     const std::vector<ImageRef>& support, const std::vector<ImageRef>& query,
                     int shots, int queries, Device device = Device::CPU);

// A mini-batch from an episode's support set, on the episode's device.
struct Batch {
  Tensor x;  // [batch_size, C, H, W]
  Tensor y;  // int32 [batch_size]
  std::vector<int> rows;  // which support rows were taken
};
// Draws batch_size support rows uniformly. with_replacement = true: each row
// independently (rows may repeat within a batch). false: distinct rows within
// the batch (batch_size <= ways*shots), batches still independent of each
// other (the Reptile code's "replacement" mode).
Batch support_batch(const Episode& episode, int batch_size, Rng& rng, bool with_replacement = true);

}  // namespace metanas::data
