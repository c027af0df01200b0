#include "metrics/exposition.h"

#include <charconv>
#include <cmath>
#include <map>

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

namespace kr {

std::string merge_expositions(const std::vector<std::string>& parts) {
  if (parts.size() == 1) return parts[0];
  struct Family {
    std::string header;   // its # HELP / # TYPE lines
    std::string samples;  // from every part
  };
  std::vector<std::string> order;
  std::map<std::string, Family> families;
  for (const std::string& text : parts) {
    std::string current;  // the family the next samples belong to
    bool header_taken = false;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      const std::string_view line(text.data() + pos, eol - pos);
      pos = eol + 1;
      if (line.empty()) continue;
      if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
        const std::string_view rest = line.substr(7);
        const std::string name(rest.substr(0, rest.find(' ')));
        if (name != current) {
          current = name;
          header_taken = families.count(name) == 0 || families[name].header.empty();
          if (families.count(name) == 0) order.push_back(name);
        }
        if (header_taken) families[name].header.append(line).append("\n");
        continue;
      }
      if (line[0] == '#') continue;  // other comments
      if (families.count(current) == 0) order.push_back(current);
      families[current].samples.append(line).append("\n");
    }
  }
  std::string out;
  for (const std::string& name : order) {
    const Family& f = families[name];
    out += f.header;
    out += f.samples;
  }
  return out;
}

}  // namespace kr
