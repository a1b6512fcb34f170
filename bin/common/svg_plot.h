// Inline SVG charts for meta-report's HTML page: line charts (several series,
// optional shaded bands), heatmaps and bar histograms. Plain strings, no
// script, no external resources: the page stays one self-contained file.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace metanas::cli::svg {

inline std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

inline std::string num(double v, int prec = 4) {
  char b[40];
  std::snprintf(b, sizeof b, "%.*g", prec, v);
  return b;
}

// A categorical palette that stays readable for up to 10 series.
inline const char* color(size_t i) {
  static const char* c[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return c[i % 10];
}

struct Series {
  std::string name;
  std::vector<double> x, y;
  std::vector<double> lo, hi;  // optional band (same length as x)
  bool points = false;         // draw markers (sparse series such as validations)
};

// "Nice" tick values covering [lo, hi].
inline std::vector<double> ticks(double lo, double hi, int target = 5) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) t.push_back(std::abs(v) < 1e-12 ? 0 : v);
  return t;
}

inline std::string line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                              const std::vector<Series>& series, int W = 560, int H = 300) {
  const int L = 62, R = 14, T = 28, B = 44;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.lo.empty() ? s.y[i] : s.lo[i]), y1 = std::max(y1, s.hi.empty() ? s.y[i] : s.hi[i]);
    }
  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + std::to_string(W) +
                  "\" height=\"" + std::to_string(H) + "\" viewBox=\"0 0 " + std::to_string(W) + " " +
                  std::to_string(H) + "\">";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  o += "<text x=\"" + std::to_string(W / 2) + "\" y=\"18\" text-anchor=\"middle\" class=\"t\">" + esc(title) +
       "</text>";
  if (x0 > x1) {
    o += "<text x=\"" + std::to_string(W / 2) + "\" y=\"" + std::to_string(H / 2) +
         "\" text-anchor=\"middle\" fill=\"#888\">no data</text></svg>";
    return o;
  }
  if (x1 == x0) x0 -= 1, x1 += 1;
  if (y1 == y0) y0 -= std::max(1e-3, std::abs(y0) * 0.1), y1 += std::max(1e-3, std::abs(y1) * 0.1);
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto X = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double v) { return T + (y1 - v) / (y1 - y0) * (H - T - B); };
  o += "<g class=\"axis\">";
  for (double t : ticks(y0, y1)) {
    o += "<line x1=\"" + num(L) + "\" x2=\"" + num(W - R) + "\" y1=\"" + num(Y(t)) + "\" y2=\"" + num(Y(t)) +
         "\" stroke=\"#eee\"/>";
    o += "<text x=\"" + num(L - 5) + "\" y=\"" + num(Y(t) + 4) + "\" text-anchor=\"end\">" + num(t, 3) + "</text>";
  }
  for (double t : ticks(x0, x1, 6))
    o += "<text x=\"" + num(X(t)) + "\" y=\"" + num(H - B + 16) + "\" text-anchor=\"middle\">" + num(t, 6) +
         "</text>";
  o += "<line x1=\"" + num(L) + "\" x2=\"" + num(W - R) + "\" y1=\"" + num(H - B) + "\" y2=\"" + num(H - B) +
       "\" stroke=\"#333\"/><line x1=\"" + num(L) + "\" x2=\"" + num(L) + "\" y1=\"" + num(T) + "\" y2=\"" +
       num(H - B) + "\" stroke=\"#333\"/>";
  o += "<text x=\"" + num((L + W - R) / 2.0) + "\" y=\"" + num(H - 8) + "\" text-anchor=\"middle\">" +
       esc(xlabel) + "</text>";
  o += "<text transform=\"translate(14," + num((T + H - B) / 2.0) + ") rotate(-90)\" text-anchor=\"middle\">" +
       esc(ylabel) + "</text></g>";
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    if (!s.lo.empty()) {  // band: upper edge forward, lower edge back
      std::string pts;
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.hi[i])) pts += num(X(s.x[i])) + "," + num(Y(s.hi[i])) + " ";
      for (size_t i = s.x.size(); i-- > 0;)
        if (std::isfinite(s.lo[i])) pts += num(X(s.x[i])) + "," + num(Y(s.lo[i])) + " ";
      o += "<polygon points=\"" + pts + "\" fill=\"" + color(k) + "\" fill-opacity=\"0.18\" stroke=\"none\"/>";
    }
    std::string pts;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i])) pts += num(X(s.x[i])) + "," + num(Y(s.y[i])) + " ";
    o += "<polyline points=\"" + pts + "\" fill=\"none\" stroke=\"" + color(k) + "\" stroke-width=\"1.6\"/>";
    if (s.points || s.x.size() == 1)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.y[i]))
          o += "<circle cx=\"" + num(X(s.x[i])) + "\" cy=\"" + num(Y(s.y[i])) + "\" r=\"2.5\" fill=\"" +
               color(k) + "\"/>";
    o += "<rect x=\"" + num(L + 8) + "\" y=\"" + num(T + 4 + 14 * k) + "\" width=\"10\" height=\"3\" fill=\"" +
         color(k) + "\"/><text x=\"" + num(L + 22) + "\" y=\"" + num(T + 9 + 14 * k) + "\">" + esc(s.name) +
         "</text>";
  }
  return o + "</svg>";
}

// rows x cols values in [0, 1] as coloured cells (white -> dark blue).
inline std::string heatmap(const std::string& title, const std::vector<std::string>& row_labels,
                           const std::vector<std::string>& col_labels, const std::vector<std::vector<double>>& v,
                           int cell = 18, bool labels = true) {
  const int L = labels ? 120 : 6, T = labels ? 92 : 22;
  // Room on the right for the last rotated column label.
  const int W = L + cell * static_cast<int>(col_labels.size()) + (labels ? 60 : 6);
  const int H = T + cell * static_cast<int>(v.size()) + 6;
  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heat\" width=\"" + std::to_string(W) +
                  "\" height=\"" + std::to_string(H) + "\">";
  o += "<text x=\"4\" y=\"14\" class=\"t\">" + esc(title) + "</text>";
  if (labels)
    for (size_t c = 0; c < col_labels.size(); ++c)
      o += "<text transform=\"translate(" + num(L + cell * (c + 0.65)) + "," + num(T - 4) +
           ") rotate(-60)\" font-size=\"10\">" + esc(col_labels[c]) + "</text>";
  for (size_t r = 0; r < v.size(); ++r) {
    if (labels)
      o += "<text x=\"" + num(L - 4) + "\" y=\"" + num(T + cell * (r + 0.7)) +
           "\" text-anchor=\"end\" font-size=\"10\">" + esc(r < row_labels.size() ? row_labels[r] : "") + "</text>";
    for (size_t c = 0; c < v[r].size(); ++c) {
      const double a = std::clamp(v[r][c], 0.0, 1.0);
      const int g = static_cast<int>(255 - 200 * a), b = static_cast<int>(255 - 90 * a);
      o += "<rect x=\"" + num(L + cell * c) + "\" y=\"" + num(T + cell * r) + "\" width=\"" + num(cell - 1) +
           "\" height=\"" + num(cell - 1) + "\" fill=\"rgb(" + std::to_string(g) + "," + std::to_string(g) + "," +
           std::to_string(b) + ")\"><title>" + esc(r < row_labels.size() ? row_labels[r] : "") + " / " +
           esc(c < col_labels.size() ? col_labels[c] : "") + ": " + num(v[r][c], 3) + "</title></rect>";
    }
  }
  return o + "</svg>";
}

// Bars: (label, count) pairs.
inline std::string histogram(const std::string& title, const std::string& xlabel,
                             const std::vector<std::pair<std::string, double>>& bars, int W = 560, int H = 260) {
  const int L = 50, R = 10, T = 28, B = 56;
  double mx = 0;
  for (const auto& b : bars) mx = std::max(mx, b.second);
  if (mx <= 0) mx = 1;
  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + std::to_string(W) +
                  "\" height=\"" + std::to_string(H) + "\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  o += "<text x=\"" + std::to_string(W / 2) + "\" y=\"18\" text-anchor=\"middle\" class=\"t\">" + esc(title) +
       "</text>";
  const double bw = bars.empty() ? 0 : (W - L - R) / static_cast<double>(bars.size());
  for (double t : ticks(0, mx))
    o += "<text x=\"" + num(L - 5) + "\" y=\"" + num(T + (1 - t / mx) * (H - T - B) + 4) +
         "\" text-anchor=\"end\" font-size=\"10\">" + num(t, 4) + "</text>";
  for (size_t i = 0; i < bars.size(); ++i) {
    const double h = bars[i].second / mx * (H - T - B);
    o += "<rect x=\"" + num(L + bw * i + 1) + "\" y=\"" + num(H - B - h) + "\" width=\"" + num(std::max(1.0, bw - 2)) +
         "\" height=\"" + num(h) + "\" fill=\"" + color(0) + "\"><title>" + esc(bars[i].first) + ": " +
         num(bars[i].second, 6) + "</title></rect>";
    if (bars.size() <= 12 || i % ((bars.size() + 11) / 12) == 0)
      o += "<text transform=\"translate(" + num(L + bw * (i + 0.5)) + "," + num(H - B + 12) +
           ") rotate(30)\" font-size=\"10\">" + esc(bars[i].first) + "</text>";
  }
  o += "<line x1=\"" + num(L) + "\" x2=\"" + num(W - R) + "\" y1=\"" + num(H - B) + "\" y2=\"" + num(H - B) +
       "\" stroke=\"#333\"/>";
  o += "<text x=\"" + num((L + W - R) / 2.0) + "\" y=\"" + num(H - 6) + "\" text-anchor=\"middle\">" + esc(xlabel) +
       "</text>";
  return o + "</svg>";
}

}  // namespace metanas::cli::svg
