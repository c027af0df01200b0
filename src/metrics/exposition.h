// Writer for the Prometheus text exposition format, version 0.0.4.
// Used only at scrape time; it allocates freely.
//
// Threading: one writer per string; no shared state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/histogram.h"

namespace kr {

using Label = std::pair<std::string_view, std::string_view>;  // name, raw value

class ExpositionWriter {
 public:
  explicit ExpositionWriter(std::string* out) : out_(out) {}

  // "# HELP" and "# TYPE" lines; type is counter, gauge or histogram.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::span<const Label> labels, double value);
  // _bucket{...,le=...} cumulative lines including +Inf, then _sum and _count.
  void histogram(std::string_view name, std::span<const Label> labels, const HistogramSnapshot& h);

 private:
  void series(std::string_view name, std::string_view suffix, std::span<const Label> labels,
              std::string_view extra_label, std::string_view extra_value);
  std::string* out_;
};

// Shortest text that reads back as the same double; +Inf, -Inf, NaN as
// Prometheus spells them.
std::string format_double(double v);
// Like format_double, with ".0" on integral values ("1.0", "2560.0"), which is
// how Python's client writes le labels; dashboards made for vLLM match on it.
std::string format_le(double v);
std::string escape_label_value(std::string_view v);  // \ " and newline
std::string escape_help(std::string_view v);         // \ and newline

// Several expositions of the same families (e.g. one per model, told apart by
// labels) as one: each family's # HELP and # TYPE once, then its samples from
// every part in order. The format does not allow a family to appear twice.
std::string merge_expositions(const std::vector<std::string>& parts);

}  // namespace kr
