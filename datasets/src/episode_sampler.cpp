// EpisodeSampler (partial Fisher-Yates draws from a seeded Rng), episode
// assembly (uint8 -> float copies) and support-set mini-batches.
#include "metanas/datasets/episode.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "metanas/engine/error.h"

namespace metanas::data {

namespace {
// Fills perm with 0..n-1 and moves a uniform random k-subset, in random
// order, to its front. Restarting from the identity each time keeps the draw
// a function of the Rng state alone (so a saved state resumes exactly).
void partial_shuffle(std::vector<int>& perm, int n, int k, Rng& rng) {
  perm.resize(size_t(n));
  std::iota(perm.begin(), perm.end(), 0);
  for (int i = 0; i < k; ++i) {
    const int j = i + static_cast<int>(rng.below(uint64_t(n - i)));
    std::swap(perm[i], perm[j]);
  }
}
}  // namespace

EpisodeSampler::EpisodeSampler(const Dataset& dataset, int ways, int shots, int queries,
                               uint64_t seed, Device device)
    : ds_(dataset), ways_(ways), shots_(shots), queries_(queries), device_(device), rng_(seed) {
  MN_CHECK(ways >= 1 && shots >= 1 && queries >= 0, "EpisodeSampler: need ways >= 1, shots >= 1, "
           "queries >= 0; got ", ways, "-way ", shots, "-shot, ", queries, " queries");
  MN_CHECK(!dataset.empty(), "EpisodeSampler: the dataset has no classes");
  MN_CHECK(ways <= dataset.num_classes(), "EpisodeSampler: ", ways, "-way episodes need ", ways,
           " classes, but the dataset has only ", dataset.num_classes());
  const int need = shots + queries;
  for (int c = 0; c < dataset.num_classes(); ++c)
    MN_CHECK(dataset.class_size(c) >= need, "EpisodeSampler: ", shots, "-shot episodes with ",
             queries, " queries need ", need, " images per class, but class '",
             dataset.class_name(c), "' has only ", dataset.class_size(c));
}

void EpisodeSampler::sample_refs(std::vector<int>* classes, std::vector<ImageRef>* support,
                                 std::vector<ImageRef>* query) {
  classes->clear();
  support->clear();
  query->clear();
  partial_shuffle(class_perm_, ds_.num_classes(), ways_, rng_);
  classes->assign(class_perm_.begin(), class_perm_.begin() + ways_);
  std::vector<std::vector<int>> picks(static_cast<size_t>(ways_));
  for (int l = 0; l < ways_; ++l) {
    const int c = (*classes)[l];
    partial_shuffle(image_perm_, ds_.class_size(c), shots_ + queries_, rng_);
    picks[l].assign(image_perm_.begin(), image_perm_.begin() + shots_ + queries_);
  }
  for (int l = 0; l < ways_; ++l)
    for (int s = 0; s < shots_; ++s) support->push_back({(*classes)[l], picks[l][s]});
  for (int l = 0; l < ways_; ++l)
    for (int q = 0; q < queries_; ++q) query->push_back({(*classes)[l], picks[l][shots_ + q]});
}

Episode EpisodeSampler::sample() {
  std::vector<int> classes;
  std::vector<ImageRef> support, query;
  sample_refs(&classes, &support, &query);
  return make_episode(ds_, classes, support, query, shots_, queries_, device_);
}

Episode make_episode(const Dataset& ds, const std::vector<int>& classes,
                     const std::vector<ImageRef>& support, const std::vector<ImageRef>& query,
                     int shots, int queries, Device device) {
  const int ways = static_cast<int>(classes.size());
  MN_CHECK(ways >= 1 && shots >= 1 && queries >= 0, "make_episode: bad episode ", ways, "-way ",
           shots, "-shot, ", queries, " queries");
  MN_CHECK(support.size() == size_t(ways) * shots, "make_episode: ", support.size(),
           " support images for ", ways, "-way ", shots, "-shot");
  MN_CHECK(query.size() == size_t(ways) * queries, "make_episode: ", query.size(),
           " query images for ", ways, " ways x ", queries, " queries");
  for (size_t i = 0; i < support.size(); ++i)
    MN_CHECK(support[i].cls == classes[i / shots], "make_episode: support row ", i,
             " is not of class ", classes[i / shots], " (rows must be class-major)");
  for (size_t i = 0; queries > 0 && i < query.size(); ++i)
    MN_CHECK(query[i].cls == classes[i / queries], "make_episode: query row ", i,
             " is not of class ", classes[i / queries], " (rows must be class-major)");

  Episode ep;
  ep.ways = ways;
  ep.shots = shots;
  ep.queries = queries;
  ep.classes = classes;
  ep.support_refs = support;
  ep.query_refs = query;
  const int64_t C = ds.channels(), H = ds.height(), W = ds.width();
  Tensor sx = Tensor::empty(Shape{int64_t(support.size()), C, H, W}, DType::F32, Device::CPU);
  ds.images_into(support, sx.data());
  Tensor qx = Tensor::empty(Shape{int64_t(query.size()), C, H, W}, DType::F32, Device::CPU);
  if (!query.empty()) ds.images_into(query, qx.data());
  std::vector<int32_t> sy(support.size()), qy(query.size());
  for (size_t i = 0; i < sy.size(); ++i) sy[i] = int32_t(i / shots);
  for (size_t i = 0; i < qy.size(); ++i) qy[i] = int32_t(i / queries);
  if (device != Device::CPU) {
    ep.support_host.assign(sx.data(), sx.data() + sx.numel());
    ep.support_y_host = sy;
  }
  ep.support_x = device == Device::CPU ? sx : sx.to(device);
  ep.query_x = device == Device::CPU ? qx : qx.to(device);
  ep.support_y = Tensor::from_ints(sy, Shape{int64_t(sy.size())}, device);
  ep.query_y = Tensor::from_ints(qy, Shape{int64_t(qy.size())}, device);
  return ep;
}

Batch support_batch(const Episode& ep, int batch_size, Rng& rng, bool with_replacement) {
  const int n = ep.ways * ep.shots;
  MN_CHECK(ep.support_x.defined() && n > 0, "support_batch: the episode has no support set");
  MN_CHECK(batch_size >= 1, "support_batch: batch size must be positive, got ", batch_size);
  MN_CHECK(with_replacement || batch_size <= n, "support_batch: ", batch_size,
           " distinct rows requested from a support set of ", n, " (", ep.ways, "-way ", ep.shots,
           "-shot)");
  Batch b;
  if (with_replacement) {
    for (int i = 0; i < batch_size; ++i) b.rows.push_back(int(rng.below(uint64_t(n))));
  } else {
    std::vector<int> perm;
    partial_shuffle(perm, n, batch_size, rng);
    b.rows.assign(perm.begin(), perm.begin() + batch_size);
  }
  const Device dev = ep.support_x.device();
  const float* src = dev == Device::CPU ? ep.support_x.data() : ep.support_host.data();
  MN_CHECK(src != nullptr && (dev == Device::CPU || ep.support_host.size() == size_t(ep.support_x.numel())),
           "support_batch: the episode has no host copy of its support set");
  const int64_t per = ep.support_x.numel() / n;
  Shape shape = ep.support_x.shape();
  shape[0] = batch_size;
  Tensor x = Tensor::empty(shape, DType::F32, Device::CPU);
  std::vector<int32_t> y(static_cast<size_t>(batch_size));
  for (int i = 0; i < batch_size; ++i) {
    std::memcpy(x.data() + i * per, src + b.rows[i] * per, size_t(per) * sizeof(float));
    y[i] = int32_t(b.rows[i] / ep.shots);
  }
  b.x = dev == Device::CPU ? x : x.to(dev);
  b.y = Tensor::from_ints(y, Shape{int64_t(batch_size)}, dev);
  return b;
}

void EpisodeSampler::skip() {
  std::vector<int> classes;
  std::vector<ImageRef> support, query;
  sample_refs(&classes, &support, &query);
}

}  // namespace metanas::data
