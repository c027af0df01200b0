// Minimal SVG charts written without a plotting dependency: a box plot
// (whiskers min..max, box P25..P75, median line, mean dot) and a line chart
// over categorical x values (e.g. concurrency levels). Pure functions.
#pragma once

#include <string>
#include <vector>

namespace kr::bench {

struct BoxGroup {
  std::string name;
  std::vector<double> samples;
};
std::string svg_box_plot(const std::string& title, const std::string& y_label, const std::vector<BoxGroup>& groups);

struct Series {
  std::string name;
  std::vector<double> y;  // one per x label
  bool dashed = false;
};
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<std::string>& x_labels, const std::vector<Series>& series);

}  // namespace kr::bench
