// Lake et al.'s one-shot runs: parse class_labels.txt, decode the training and
// test images of each run, and assemble one 20-way 1-shot Episode per run.
#include "metanas/datasets/oneshot_runs.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "fs_util.h"
#include "metanas/engine/error.h"

namespace metanas::data {

using detail::join;

namespace {

// Entries are written relative to the folder above the run ("run01/test/...").
std::string resolve(const std::string& root, const std::string& run, const std::string& entry) {
  if (entry.compare(0, run.size() + 1, run + "/") == 0) return join(root, entry);
  return join(join(root, run), entry);
}

Tensor to_device(Tensor t, Device d) { return d == Device::CPU ? t : t.to(d); }

}  // namespace

std::vector<OneShotRun> load_oneshot_runs(const OneShotOptions& o) {
  MN_CHECK(!o.root.empty(), "one-shot runs: no root folder given");
  detail::require_dir(o.root, "one-shot runs root");
  const std::string root = detail::absolute(o.root);
  std::vector<std::string> runs;
  for (const auto& d : detail::list_dirs(root))
    if (d.compare(0, 3, "run") == 0) runs.push_back(d);
  MN_CHECK(!runs.empty(), "one-shot runs: '", root, "' holds no runNN folders");

  std::vector<OneShotRun> out;
  for (const auto& run : runs) {
    const std::string rdir = join(root, run);
    const std::string labels = join(rdir, "class_labels.txt");
    std::ifstream in(labels);
    MN_CHECK(in.good(), "one-shot runs: cannot open '", labels, "'");
    const std::string tdir = join(rdir, "training");
    detail::require_dir(tdir, "one-shot runs");
    OneShotRun r;
    r.name = run;
    for (const auto& f : detail::list_files(tdir)) r.support_files.push_back(join(tdir, f));
    MN_CHECK(!r.support_files.empty(), "one-shot runs: '", tdir, "' has no images");
    std::map<std::string, int> label_of;
    for (size_t i = 0; i < r.support_files.size(); ++i) label_of[r.support_files[i]] = int(i);

    std::vector<std::pair<int, std::string>> queries;  // (label, file)
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      const std::string row = detail::trim(line);
      if (row.empty()) continue;
      std::istringstream ss(row);
      std::string test, train, extra;
      MN_CHECK(ss >> test >> train && !(ss >> extra), "one-shot runs: '", labels, "' line ", lineno,
               ": expected 'runNN/test/itemMM.png runNN/training/classKK.png', found '", row, "'");
      const std::string tp = resolve(root, run, test), cp = resolve(root, run, train);
      MN_CHECK(detail::is_file(tp), "one-shot runs: '", labels, "' line ", lineno,
               " names test image '", tp, "', which does not exist");
      auto it = label_of.find(cp);
      MN_CHECK(it != label_of.end(), "one-shot runs: '", labels, "' line ", lineno,
               " names training image '", cp, "', which is not in '", tdir, "'");
      queries.emplace_back(it->second, tp);
    }
    MN_CHECK(!queries.empty(), "one-shot runs: '", labels, "' lists no test images");
    // Class-major query rows, as every Episode has (stable: file order within a class).
    std::stable_sort(queries.begin(), queries.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    const int ways = int(r.support_files.size());
    std::vector<int> per_class(static_cast<size_t>(ways), 0);
    for (const auto& q : queries) ++per_class[size_t(q.first)];
    MN_CHECK(std::all_of(per_class.begin(), per_class.end(), [&](int n) { return n == per_class[0]; }),
             "one-shot runs: '", labels, "' does not give every training class the same number of ",
             "test images (", queries.size(), " test images for ", ways, " classes)");
    for (const auto& q : queries) r.query_files.push_back(q.second);

    DecodeSpec spec;
    spec.channels = 1;
    spec.height = spec.width = o.image_size;
    spec.invert = o.invert;
    spec.filter = o.filter;
    std::vector<ClassSource> src = {{"support", r.support_files}, {"query", r.query_files}};
    const Dataset ds = decode_classes(src, spec);
    std::vector<ImageRef> srefs, qrefs;
    for (int i = 0; i < ways; ++i) srefs.push_back({0, i});
    for (int i = 0; i < int(queries.size()); ++i) qrefs.push_back({1, i});
    std::vector<int32_t> sy(static_cast<size_t>(ways)), qy;
    for (int i = 0; i < ways; ++i) sy[size_t(i)] = i;
    for (const auto& q : queries) qy.push_back(q.first);

    Episode& ep = r.episode;
    ep.ways = ways;
    ep.shots = 1;
    ep.queries = per_class[0];
    for (int i = 0; i < ways; ++i) ep.classes.push_back(i);
    const Tensor sx = ds.images(srefs, Device::CPU);
    if (o.device != Device::CPU) {
      ep.support_host.assign(sx.data(), sx.data() + sx.numel());
      ep.support_y_host = sy;
    }
    ep.support_x = to_device(sx, o.device);
    ep.query_x = ds.images(qrefs, o.device);
    ep.support_y = Tensor::from_ints(sy, Shape{int64_t(sy.size())}, o.device);
    ep.query_y = Tensor::from_ints(qy, Shape{int64_t(qy.size())}, o.device);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace metanas::data
