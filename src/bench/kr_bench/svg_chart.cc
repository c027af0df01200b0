#include "bench/kr_bench/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "bench/kr_bench/stats.h"

namespace kr::bench {
namespace {

constexpr double kW = 720, kH = 420, kLeft = 80, kRight = 150, kTop = 40, kBottom = 60;
constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out.push_back(c);
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string label_num(double v) {
  char buf[32];
  if (std::fabs(v) >= 100 || v == std::floor(v)) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// A "nice" axis maximum (1, 2, 2.5 or 5 times a power of ten) above v.
double nice_max(double v) {
  if (v <= 0) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= v) return m * p;
  return 10 * p;
}

struct Frame {
  double y_max;
  double plot_w() const { return kW - kLeft - kRight; }
  double plot_h() const { return kH - kTop - kBottom; }
  double y(double v) const { return kTop + plot_h() * (1 - v / y_max); }
};

std::string header(const std::string& title, const std::string& y_label, const Frame& f) {
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kW) + "\" height=\"" + num(kH) +
                  "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + num(kW / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + esc(title) + "</text>\n";
  s += "<text transform=\"translate(18," + num(kTop + f.plot_h() / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       esc(y_label) + "</text>\n";
  for (int i = 0; i <= 5; ++i) {
    const double v = f.y_max * i / 5;
    const double y = f.y(v);
    s += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(kLeft + f.plot_w()) + "\" y1=\"" + num(y) + "\" y2=\"" +
         num(y) + "\" stroke=\"#ddd\"/>\n";
    s += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(y + 4) + "\" text-anchor=\"end\">" + label_num(v) +
         "</text>\n";
  }
  s += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(kLeft) + "\" y1=\"" + num(kTop) + "\" y2=\"" +
       num(kTop + f.plot_h()) + "\" stroke=\"black\"/>\n";
  return s;
}

}  // namespace

std::string svg_box_plot(const std::string& title, const std::string& y_label, const std::vector<BoxGroup>& groups) {
  double hi = 0;
  for (const BoxGroup& g : groups)
    for (double v : g.samples) hi = std::max(hi, v);
  const Frame f{nice_max(hi * 1.05)};
  std::string s = header(title, y_label, f);
  const double slot = f.plot_w() / std::max<size_t>(groups.size(), 1);
  for (size_t i = 0; i < groups.size(); ++i) {
    const BoxGroup& g = groups[i];
    const double cx = kLeft + slot * (static_cast<double>(i) + 0.5);
    const double half = std::min(slot * 0.3, 60.0);
    const char* color = kColors[i % 6];
    s += "<text x=\"" + num(cx) + "\" y=\"" + num(kTop + f.plot_h() + 20) + "\" text-anchor=\"middle\">" +
         esc(g.name) + " (n=" + std::to_string(g.samples.size()) + ")</text>\n";
    if (g.samples.empty()) continue;
    std::vector<double> v = g.samples;
    std::sort(v.begin(), v.end());
    const double q1 = percentile_sorted(v, 25), med = percentile_sorted(v, 50), q3 = percentile_sorted(v, 75);
    s += "<line x1=\"" + num(cx) + "\" x2=\"" + num(cx) + "\" y1=\"" + num(f.y(v.front())) + "\" y2=\"" +
         num(f.y(v.back())) + "\" stroke=\"" + color + "\"/>\n";
    for (double w : {v.front(), v.back()})
      s += "<line x1=\"" + num(cx - half / 2) + "\" x2=\"" + num(cx + half / 2) + "\" y1=\"" + num(f.y(w)) +
           "\" y2=\"" + num(f.y(w)) + "\" stroke=\"" + color + "\"/>\n";
    s += "<rect x=\"" + num(cx - half) + "\" y=\"" + num(f.y(q3)) + "\" width=\"" + num(2 * half) + "\" height=\"" +
         num(std::max(f.y(q1) - f.y(q3), 1.0)) + "\" fill=\"" + color + "\" fill-opacity=\"0.3\" stroke=\"" + color +
         "\"/>\n";
    s += "<line x1=\"" + num(cx - half) + "\" x2=\"" + num(cx + half) + "\" y1=\"" + num(f.y(med)) + "\" y2=\"" +
         num(f.y(med)) + "\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
    s += "<circle cx=\"" + num(cx) + "\" cy=\"" + num(f.y(mean(v))) + "\" r=\"3\" fill=\"black\"/>\n";
  }
  s += "<text x=\"" + num(kW - kRight + 10) + "\" y=\"" + num(kTop + 10) +
       "\">box: P25-P75</text>\n<text x=\"" + num(kW - kRight + 10) + "\" y=\"" + num(kTop + 26) +
       "\">line: median</text>\n<text x=\"" + num(kW - kRight + 10) + "\" y=\"" + num(kTop + 42) +
       "\">dot: mean</text>\n<text x=\"" + num(kW - kRight + 10) + "\" y=\"" + num(kTop + 58) +
       "\">whiskers: min-max</text>\n";
  return s + "</svg>\n";
}

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<std::string>& x_labels, const std::vector<Series>& series) {
  double hi = 0;
  for (const Series& se : series)
    for (double v : se.y) hi = std::max(hi, v);
  const Frame f{nice_max(hi * 1.05)};
  std::string s = header(title, y_label, f);
  const double slot = f.plot_w() / std::max<size_t>(x_labels.size(), 1);
  const auto x = [&](size_t i) { return kLeft + slot * (static_cast<double>(i) + 0.5); };
  for (size_t i = 0; i < x_labels.size(); ++i)
    s += "<text x=\"" + num(x(i)) + "\" y=\"" + num(kTop + f.plot_h() + 20) + "\" text-anchor=\"middle\">" +
         esc(x_labels[i]) + "</text>\n";
  s += "<text x=\"" + num(kLeft + f.plot_w() / 2) + "\" y=\"" + num(kH - 15) + "\" text-anchor=\"middle\">" +
       esc(x_label) + "</text>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& se = series[k];
    const char* color = kColors[k % 6];
    std::string pts;
    for (size_t i = 0; i < se.y.size() && i < x_labels.size(); ++i) {
      pts += num(x(i)) + "," + num(f.y(se.y[i])) + " ";
      s += "<circle cx=\"" + num(x(i)) + "\" cy=\"" + num(f.y(se.y[i])) + "\" r=\"3\" fill=\"" + color + "\"/>\n";
    }
    s += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"2\"" +
         (se.dashed ? " stroke-dasharray=\"6,4\"" : "") + " points=\"" + pts + "\"/>\n";
    const double ly = kTop + 10 + 18 * static_cast<double>(k);
    s += "<line x1=\"" + num(kW - kRight + 10) + "\" x2=\"" + num(kW - kRight + 30) + "\" y1=\"" + num(ly - 4) +
         "\" y2=\"" + num(ly - 4) + "\" stroke=\"" + color + "\" stroke-width=\"2\"" +
         (se.dashed ? " stroke-dasharray=\"6,4\"" : "") + "/>\n";
    s += "<text x=\"" + num(kW - kRight + 35) + "\" y=\"" + num(ly) + "\">" + esc(se.name) + "</text>\n";
  }
  return s + "</svg>\n";
}

}  // namespace kr::bench
