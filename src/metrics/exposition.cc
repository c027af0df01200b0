#include "metrics/exposition.h"

#include <charconv>
#include <cmath>

namespace kr {

std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

std::string format_le(double v) {
  std::string s = format_double(v);
  if (std::isfinite(v) && s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void ExpositionWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  out_->append("# HELP ").append(name).append(" ").append(escape_help(help)).append("\n");
  out_->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void ExpositionWriter::series(std::string_view name, std::string_view suffix,
                              std::span<const Label> labels, std::string_view extra_label,
                              std::string_view extra_value) {
  out_->append(name).append(suffix);
  if (labels.empty() && extra_label.empty()) return;
  out_->append("{");
  bool first = true;
  auto add = [&](std::string_view k, std::string_view v) {
    if (!first) out_->append(",");
    first = false;
    out_->append(k).append("=\"").append(escape_label_value(v)).append("\"");
  };
  for (const Label& l : labels) add(l.first, l.second);
  if (!extra_label.empty()) add(extra_label, extra_value);
  out_->append("}");
}

void ExpositionWriter::sample(std::string_view name, std::span<const Label> labels, double value) {
  series(name, "", labels, "", "");
  out_->append(" ").append(format_double(value)).append("\n");
}

void ExpositionWriter::histogram(std::string_view name, std::span<const Label> labels,
                                 const HistogramSnapshot& h) {
  for (size_t i = 0; i <= h.upper_bounds.size(); ++i) {
    const std::string le = i < h.upper_bounds.size() ? format_le(h.upper_bounds[i]) : "+Inf";
    series(name, "_bucket", labels, "le", le);
    out_->append(" ").append(std::to_string(h.cumulative[i])).append("\n");
  }
  series(name, "_sum", labels, "", "");
  out_->append(" ").append(format_double(h.sum)).append("\n");
  series(name, "_count", labels, "", "");
  out_->append(" ").append(std::to_string(h.count)).append("\n");
}

}  // namespace kr
