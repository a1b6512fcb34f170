// meta-report: renders one or more meta-train run folders as one
// self-contained HTML page (inline SVG, no script, no network): training
// curves, validation accuracy with its 95% interval, the alpha matrices over
// time, the final genotype and, after meta-test, the per-task accuracy and
// sparse-parameter histograms and the most common adapted genotypes. Several
// runs are overlaid on the same charts. docs/cli.md documents it.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/main.h"
#include "common/svg_plot.h"

using namespace metanas;
using namespace metanas::cli;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kProgram = "meta-report";

struct Run {
  std::string dir, name;
  std::vector<json> train, val;
  json config, report;  // null when absent
  std::string genotype_svg, genotype_txt;
  int skipped_lines = 0;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

json read_json_or_null(const fs::path& p, const std::string& what) {
  if (!fs::exists(p)) return nullptr;
  try {
    return json::parse(slurp(p));
  } catch (const json::exception& e) {
    MN_THROW(p.string(), ": ", what, " is not valid JSON: ", e.what());
  }
}

Run load_run(const std::string& dir) {
  Run r;
  r.dir = dir;
  r.name = fs::path(dir).filename().string();
  if (r.name.empty() || r.name == ".") r.name = fs::absolute(dir).parent_path().filename().string();
  MN_USAGE_CHECK(fs::is_directory(dir), "'", dir, "' is not a folder (give meta-train run folders)");
  const fs::path m = fs::path(dir) / "metrics.jsonl";
  MN_USAGE_CHECK(fs::exists(m), "'", dir, "' has no metrics.jsonl: not a meta-train run folder");
  std::ifstream f(m);
  std::string line;
  while (std::getline(f, line)) {
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      ++r.skipped_lines;  // a line cut off by a killed run
      continue;
    }
    if (!j.is_object() || !j.contains("iteration") || !j["iteration"].is_number()) {
      ++r.skipped_lines;
      continue;
    }
    const std::string type = j.value("type", "");
    if (type == "train") r.train.push_back(j);
    else if (type == "val") r.val.push_back(j);
  }
  r.config = read_json_or_null(fs::path(dir) / "config.json", "config.json");
  r.report = read_json_or_null(fs::path(dir) / "report.json", "report.json");
  const fs::path svgp = fs::path(dir) / "genotype.svg";
  if (fs::exists(svgp)) {
    std::string s = slurp(svgp);
    const size_t at = s.find("<svg");
    if (at != std::string::npos) r.genotype_svg = s.substr(at);  // drop the XML prolog and DOCTYPE
  }
  if (fs::exists(fs::path(dir) / "genotype.txt")) r.genotype_txt = slurp(fs::path(dir) / "genotype.txt");
  return r;
}

double num_or_nan(const json& j, const char* k) {
  return j.contains(k) && j[k].is_number() ? j[k].get<double>() : std::nan("");
}

// One series per run (and per key) of a train-record field.
std::vector<svg::Series> curves(const std::vector<Run>& runs, const std::vector<std::pair<const char*, const char*>>& keys) {
  std::vector<svg::Series> out;
  for (const auto& r : runs)
    for (const auto& [k, label] : keys) {
      svg::Series s;
      s.name = runs.size() > 1 ? r.name + ": " + label : label;
      for (const auto& t : r.train) {
        s.x.push_back(t["iteration"].get<double>());
        s.y.push_back(num_or_nan(t, k));
      }
      bool any = false;
      for (double v : s.y) any = any || std::isfinite(v);
      if (any) out.push_back(std::move(s));
    }
  return out;
}

std::string alpha_section(const Run& r) {
  // At most 6 snapshots, evenly spread, always including the last.
  std::vector<const json*> snaps;
  for (const auto& v : r.val)
    if (v.contains("alphas") && v["alphas"].is_object()) snaps.push_back(&v);
  if (snaps.empty()) return "<p class=\"note\">No architecture snapshots (a fixed architecture, or no validation yet).</p>";
  std::vector<size_t> pick;
  const size_t n = snaps.size(), k = std::min<size_t>(6, n);
  for (size_t i = 0; i < k; ++i) pick.push_back(k == 1 ? n - 1 : i * (n - 1) / (k - 1));
  std::string o;
  for (const char* type : {"normal", "reduce"}) {
    o += std::string("<h4>") + type + " cell: softmax of each edge's op weights, at validation iterations</h4><div class=\"row\">";
    for (size_t j = 0; j < pick.size(); ++j) {
      const json& a = (*snaps[pick[j]])["alphas"];
      if (!a.contains("cells") || !a["cells"].contains(type)) continue;
      const json& c = a["cells"][type];
      std::vector<std::string> rows, cols;
      for (const auto& x : c.value("rows", json::array())) rows.push_back(x.get<std::string>());
      for (const auto& x : a.value("ops", json::array())) cols.push_back(x.get<std::string>());
      std::vector<std::vector<double>> w;
      for (const auto& row : c.value("weights", json::array())) {
        std::vector<double> v;
        for (const auto& x : row) v.push_back(x.is_number() ? x.get<double>() : 0.0);
        w.push_back(v);
      }
      o += svg::heatmap("iteration " + std::to_string((*snaps[pick[j]])["iteration"].get<int64_t>()), rows, cols, w,
                        16, j == 0);
    }
    o += "</div>";
  }
  return o;
}

std::string meta_test_section(const Run& r) {
  if (r.report.is_null() || !r.report.contains("result")) return "";
  const json& res = r.report["result"];
  std::string o = "<h3>Meta-test of " + svg::esc(r.name) + "</h3><p>" +
                  svg::esc(r.report.value("result_line", std::string())) + "accuracy " +
                  svg::num(100 * num_or_nan(r.report, "accuracy"), 4) + "% &plusmn; " +
                  svg::num(100 * num_or_nan(r.report, "ci95"), 3) + "% (95% CI over " +
                  svg::esc(r.report.contains("tasks") ? r.report["tasks"].dump() : std::string("?")) +
                  " tasks), chance " + svg::num(100 * num_or_nan(r.report, "chance"), 3) + "%</p><div class=\"row\">";
  if (res.contains("per_task") && res["per_task"].is_array()) {
    std::vector<std::pair<std::string, double>> bins(10);
    for (int i = 0; i < 10; ++i) bins[i] = {svg::num(10 * i) + "-" + svg::num(10 * i + 10) + "%", 0};
    for (const auto& t : res["per_task"]) {
      const double a = num_or_nan(t, "accuracy");
      if (std::isfinite(a)) bins[std::min(9, std::max(0, static_cast<int>(a * 10)))].second += 1;
    }
    o += svg::histogram("per-task accuracy", "query accuracy", bins);
  }
  if (res.contains("sparse_params") && res["sparse_params"].contains("histogram")) {
    std::vector<std::pair<std::string, double>> bars;
    for (const auto& b : res["sparse_params"]["histogram"])
      bars.push_back({b.contains("from") ? b["from"].dump() : std::string("?"), num_or_nan(b, "count")});
    o += svg::histogram("sparse parameters of the adapted task models", "parameters (bin start)", bars);
  }
  o += "</div>";
  if (res.contains("genotypes") && res["genotypes"].is_array() && !res["genotypes"].empty()) {
    o += "<table><tr><th>tasks</th><th>most common adapted genotypes</th></tr>";
    for (const auto& g : res["genotypes"])
      o += "<tr><td>" + (g.contains("count") ? g["count"].dump() : std::string()) + "</td><td><code>" +
           svg::esc(g.value("genotype", std::string())) + "</code></td></tr>";
    o += "</table>";
  }
  return o;
}

std::string render(const std::vector<Run>& runs) {
  std::string title = "metanas run";
  if (runs.size() == 1) title += ": " + runs[0].name;
  else title += "s: " + std::to_string(runs.size()) + " overlaid";
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + svg::esc(title) +
      "</title><style>body{font-family:sans-serif;margin:20px;color:#222;background:#fafafa}"
      "svg{background:#fff;border:1px solid #ddd;margin:4px}svg text{font-size:11px;font-family:sans-serif}"
      "svg text.t{font-size:13px;font-weight:bold}.row{display:flex;flex-wrap:wrap;align-items:flex-start}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;text-align:left}"
      ".note{color:#777}pre{background:#fff;border:1px solid #ddd;padding:6px;white-space:pre-wrap}</style></head><body>\n";
  o += "<h1>" + svg::esc(title) + "</h1>\n<table><tr><th>run</th><th>algorithm</th><th>model</th><th>dataset</th>"
       "<th>iterations logged</th><th>last validation</th></tr>";
  for (const auto& r : runs) {
    const json& c = r.config;
    auto cfg = [&](const char* a, const char* b) -> std::string {
      if (c.is_null() || !c.contains(a)) return "?";
      const json& x = b ? (c[a].contains(b) ? c[a][b] : json()) : c[a];
      return x.is_string() ? x.get<std::string>() : x.dump();
    };
    std::string last_val = "none";
    if (!r.val.empty())
      last_val = svg::num(100 * num_or_nan(r.val.back(), "accuracy"), 4) + "% &plusmn; " +
                 svg::num(100 * num_or_nan(r.val.back(), "ci95"), 3) + "% at iteration " +
                 r.val.back()["iteration"].dump();
    o += "<tr><td>" + svg::esc(r.dir) + "</td><td>" + svg::esc(cfg("algorithm", nullptr)) + "</td><td>" +
         svg::esc(cfg("model", "kind")) + "</td><td>" + svg::esc(cfg("data", "dataset")) + "</td><td>" +
         (r.train.empty() ? std::string("0") : r.train.back()["iteration"].dump()) + "</td><td>" + last_val +
         "</td></tr>";
    if (r.skipped_lines)
      o += "<tr><td colspan=\"6\" class=\"note\">" + std::to_string(r.skipped_lines) +
           " unreadable metrics.jsonl line(s) skipped</td></tr>";
  }
  o += "</table>\n<h2>Training</h2><div class=\"row\">";
  o += svg::line_chart("query and support loss", "meta-iteration", "loss",
                       curves(runs, {{"query_loss", "query loss"}, {"support_loss", "support loss"}}));
  o += svg::line_chart("query and support accuracy", "meta-iteration", "accuracy",
                       curves(runs, {{"query_acc", "query accuracy"}, {"support_acc", "support accuracy"}}));
  o += svg::line_chart("meta learning rates", "meta-iteration", "learning rate",
                       curves(runs, {{"w_lr", "weights"}, {"a_lr", "architecture"}}));
  o += svg::line_chart("softmax temperature (last architecture step)", "meta-iteration", "T",
                       curves(runs, {{"temperature", "temperature"}}));
  o += "</div>\n<h2>Validation</h2><div class=\"row\">";
  std::vector<svg::Series> val;
  for (const auto& r : runs) {
    svg::Series s;
    s.name = (runs.size() > 1 ? r.name + ": " : std::string()) + "accuracy (band: 95% CI)";
    s.points = true;
    for (const auto& v : r.val) {
      const double a = num_or_nan(v, "accuracy"), ci = num_or_nan(v, "ci95");
      s.x.push_back(v["iteration"].get<double>());
      s.y.push_back(a);
      s.lo.push_back(a - ci);
      s.hi.push_back(a + ci);
    }
    if (!s.x.empty()) val.push_back(std::move(s));
  }
  o += svg::line_chart("validation accuracy", "meta-iteration", "accuracy", val);
  o += "</div>\n<h2>Architecture</h2>";
  for (const auto& r : runs) {
    if (runs.size() > 1) o += "<h3>" + svg::esc(r.name) + "</h3>";
    o += alpha_section(r);
    if (!r.genotype_svg.empty())
      o += "<h4>final genotype</h4><div class=\"row\">" + r.genotype_svg + "</div>";
    if (!r.genotype_txt.empty()) o += "<pre>" + svg::esc(r.genotype_txt) + "</pre>";
    if (r.genotype_svg.empty() && r.genotype_txt.empty())
      o += "<p class=\"note\">No final genotype yet (written at the end of meta-training).</p>";
  }
  std::string tests;
  for (const auto& r : runs) tests += meta_test_section(r);
  o += "<h2>Meta-test</h2>" +
       (tests.empty() ? std::string("<p class=\"note\">Not meta-tested yet: run meta-test --run DIR.</p>") : tests);
  o += "\n</body></html>\n";
  return o;
}

int run(int argc, char** argv) {
  ArgParser args(kProgram, "RUN_DIR [RUN_DIR ...] [--out FILE]",
                 "Writes one self-contained HTML page (inline SVG, no script, no network) showing\n"
                 "meta-train run folders: training curves, validation accuracy with its 95% interval,\n"
                 "the alpha matrices over time, the final genotype and, after meta-test, the\n"
                 "per-task accuracy and sparse-parameter histograms and the top genotypes.\n"
                 "Several folders are overlaid on the same charts.",
                 {{"--out", "FILE", "the page (default RUN_DIR/report.html for one run,\nreport.html in the current folder for several)"},
                  {"--help", "", "this text"}});
  args.parse(argc, argv);
  if (args.has("--help")) {
    std::fputs(args.help().c_str(), stdout);
    return 0;
  }
  MN_USAGE_CHECK(args.overrides().empty(), "unknown option '--", args.overrides().empty() ? "" : args.overrides()[0].first, "'");
  MN_USAGE_CHECK(!args.positional().empty(), "give at least one run folder");
  std::vector<Run> runs;
  for (const auto& d : args.positional()) runs.push_back(load_run(d));
  std::string out = args.get("--out");
  if (out.empty()) out = runs.size() == 1 ? (fs::path(runs[0].dir) / "report.html").string() : "report.html";
  const std::string html = render(runs);
  const std::string tmp = out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    MN_CHECK(f, "cannot write '", tmp, "'");
    f << html;
    f.close();
    MN_CHECK(f, "writing '", tmp, "' failed");
  }
  MN_CHECK(std::rename(tmp.c_str(), out.c_str()) == 0, "cannot rename '", tmp, "' to '", out, "'");
  std::printf("report: %s (%zu run%s, %zu KiB)\n", out.c_str(), runs.size(), runs.size() > 1 ? "s" : "",
              html.size() / 1024);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main(kProgram, [&] { return run(argc, argv); });
}
