// checkpoint-diff: compares two checkpoint files bitwise (every tensor's
// name, dtype, shape and bytes) and their JSON metadata (minus ignored
// entries). Exit status 0 when they are the same, 1 when they differ, 2 on
// errors. Used by the resume test; handy to check reproducibility.
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/main.h"
#include "metanas/engine/checkpoint.h"

using namespace metanas;
using namespace metanas::cli;
using nlohmann::json;

namespace {

const char* kProgram = "checkpoint-diff";

int run(int argc, char** argv) {
  ArgParser args(kProgram, "A.mnck B.mnck [--ignore-meta POINTER ...] [--tensors-only]",
                 "Compares two checkpoints: tensors bitwise, metadata as JSON. Prints each\n"
                 "difference (the first few per tensor) and exits 0 when equal, 1 when not.",
                 {{"--ignore-meta", "POINTER",
                   "JSON pointer of a metadata entry to ignore, e.g.\n/program/elapsed_s (repeatable; or a comma-separated list)"},
                  {"--tensors-only", "", "compare the tensors only"},
                  {"--max-report", "N", "differences printed per tensor (default 3)"},
                  {"--help", "", "this text"}});
  args.parse(argc, argv);
  if (args.has("--help")) {
    std::fputs(args.help().c_str(), stdout);
    return 0;
  }
  MN_USAGE_CHECK(args.overrides().empty(), "unknown option '--", args.overrides().empty() ? "" : args.overrides()[0].first, "'");
  MN_USAGE_CHECK(args.positional().size() == 2, "expected two checkpoint files, got ", args.positional().size());
  const int max_report = static_cast<int>(parse_int_flag("--max-report", args.get("--max-report", "3")));
  const std::string pa = args.positional()[0], pb = args.positional()[1];
  const Checkpoint a = Checkpoint::load(pa), b = Checkpoint::load(pb);

  int differences = 0;
  const auto na = a.names(), nb = b.names();
  const std::set<std::string> sa(na.begin(), na.end()), sb(nb.begin(), nb.end());
  for (const auto& n : na)
    if (!sb.count(n)) std::printf("only in %s: %s\n", pa.c_str(), n.c_str()), ++differences;
  for (const auto& n : nb)
    if (!sa.count(n)) std::printf("only in %s: %s\n", pb.c_str(), n.c_str()), ++differences;
  int64_t compared = 0;
  for (const auto& n : na) {
    if (!sb.count(n)) continue;
    const Tensor& x = a.get(n);
    const Tensor& y = b.get(n);
    if (x.dtype() != y.dtype() || x.shape() != y.shape()) {
      std::printf("%s: dtype/shape differ\n", n.c_str());
      ++differences;
      continue;
    }
    compared += x.numel();
    const auto* px = x.dtype() == DType::F32 ? reinterpret_cast<const unsigned char*>(x.data())
                                              : reinterpret_cast<const unsigned char*>(x.data_i32());
    const auto* py = y.dtype() == DType::F32 ? reinterpret_cast<const unsigned char*>(y.data())
                                              : reinterpret_cast<const unsigned char*>(y.data_i32());
    if (std::memcmp(px, py, x.nbytes()) == 0) continue;
    ++differences;
    int64_t count = 0;
    int shown = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (std::memcmp(px + 4 * i, py + 4 * i, 4) == 0) continue;
      ++count;
      if (shown < max_report) {
        ++shown;
        if (x.dtype() == DType::F32) {
          float u, v;
          std::memcpy(&u, px + 4 * i, 4);
          std::memcpy(&v, py + 4 * i, 4);
          std::printf("%s[%lld]: %.9g vs %.9g\n", n.c_str(), static_cast<long long>(i), u, v);
        } else {
          int32_t u, v;
          std::memcpy(&u, px + 4 * i, 4);
          std::memcpy(&v, py + 4 * i, 4);
          std::printf("%s[%lld]: %d vs %d\n", n.c_str(), static_cast<long long>(i), u, v);
        }
      }
    }
    std::printf("%s: %lld of %lld values differ\n", n.c_str(), static_cast<long long>(count),
                static_cast<long long>(x.numel()));
  }

  if (!args.has("--tensors-only")) {
    json ma = json::parse(a.metadata_json()), mb = json::parse(b.metadata_json());
    std::string ignore;
    for (const auto& v : args.get_all("--ignore-meta")) ignore += v + ",";
    size_t start = 0;
    while (start < ignore.size()) {
      size_t end = ignore.find(',', start);
      if (end == std::string::npos) end = ignore.size();
      const std::string p = ignore.substr(start, end - start);
      if (!p.empty()) {
        try {
          const json::json_pointer ptr(p);
          for (json* m : {&ma, &mb}) {
            if (!m->contains(ptr)) continue;
            json& parent = (*m)[ptr.parent_pointer()];
            if (parent.is_object()) parent.erase(ptr.back());
          }
        } catch (const json::exception& e) {
          throw UsageError(str_cat("--ignore-meta: bad JSON pointer '", p, "': ", e.what()));
        }
      }
      start = end + 1;
    }
    if (ma != mb) {
      ++differences;
      const json patch = json::diff(ma, mb);
      std::printf("metadata differs (JSON patch from %s to %s):\n%s\n", pa.c_str(), pb.c_str(), patch.dump(2).c_str());
    }
  }
  if (differences == 0) {
    std::printf("identical: %zu tensors (%lld values)%s\n", na.size(), static_cast<long long>(compared),
                args.has("--tensors-only") ? "" : " and metadata");
    return 0;
  }
  std::printf("%d difference(s)\n", differences);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Status 1 means "the checkpoints differ", so runtime errors (an unreadable
  // or corrupt file) exit 2 like usage errors, as docs/cli.md promises.
  return run_main(kProgram, [&] { return run(argc, argv); }, /*error_status=*/2);
}
