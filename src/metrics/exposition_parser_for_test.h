// Test helper: a strict little parser for the Prometheus text format 0.0.4,
// so tests can read /metrics output back and check its structure.
// Tests only; not linked into the server.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace kr {

using Labels = std::vector<std::pair<std::string, std::string>>;  // unescaped, in order

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Parsed {
  std::map<std::string, std::string> type;  // family -> counter/gauge/histogram
  std::set<std::string> help;               // families with a HELP line
  std::vector<Sample> samples;
  // Every violation found: bad names or values, a sample without HELP/TYPE,
  // a family split in two, histogram buckets not ascending or not cumulative,
  // no +Inf bucket, +Inf != _count, no _sum.
  std::vector<std::string> errors;
};

Parsed parse_exposition(const std::string& text);
// Value of one series, labels in the order they are written; NaN when absent.
double value_of(const Parsed& p, const std::string& name, const Labels& labels);

}  // namespace kr
