#include "metrics/exposition_parser_for_test.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace kr {
namespace {

bool valid_name(const std::string& s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
                    (allow_colon && c == ':') ||
                    (i > 0 && std::isdigit(static_cast<unsigned char>(c)));
    if (!ok) return false;
  }
  return true;
}

std::string key_of(const std::string& name,
                   const std::vector<std::pair<std::string, std::string>>& labels,
                   const std::string& skip_label = "") {
  std::string k = name + "{";
  for (const auto& [n, v] : labels) {
    if (n == skip_label) continue;
    k += n + "=" + v + ",";
  }
  return k + "}";
}

// The family a sample belongs to, or "" when none is declared.
std::string family_of(const Parsed& p, const std::string& name) {
  if (p.type.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = p.type.find(base);
      if (it != p.type.end() && it->second == "histogram") return base;
    }
  }
  return "";
}

}  // namespace

Parsed parse_exposition(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line, current_family;
  std::set<std::string> finished_families;
  auto error = [&](const std::string& e) { p.errors.push_back(e + " in: " + line); };
  if (text.empty() || text.back() != '\n') p.errors.push_back("text must end with a newline");
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const std::string rest = line.substr(7);
      const size_t sp = rest.find(' ');
      if (sp == std::string::npos) {
        error("no text after name");
        continue;
      }
      const std::string name = rest.substr(0, sp);
      if (!valid_name(name, true)) error("bad metric name");
      if (line[2] == 'H') {
        if (!p.help.insert(name).second) error("second HELP");
      } else {
        const std::string type = rest.substr(sp + 1);
        if (type != "counter" && type != "gauge" && type != "histogram") error("bad type");
        if (p.type.count(name)) error("second TYPE");
        if (finished_families.count(name)) error("TYPE after samples");
        p.type[name] = type;
      }
      continue;
    }
    if (line[0] == '#') continue;
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!valid_name(s.name, true)) error("bad sample name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          error("bad label");
          break;
        }
        std::string lname = line.substr(i, eq - i), value;
        if (!valid_name(lname, false)) error("bad label name");
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        s.labels.emplace_back(lname, value);
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') {
      error("no value");
      continue;
    }
    const std::string value = line.substr(i + 1);
    char* end = nullptr;
    s.value = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') error("bad value");
    const std::string family = family_of(p, s.name);
    if (family.empty()) error("sample without TYPE");
    if (!p.help.count(family)) error("sample without HELP");
    if (family != current_family) {
      if (finished_families.count(family)) error("family not contiguous");
      finished_families.insert(current_family);
      current_family = family;
    }
    p.samples.push_back(std::move(s));
  }
  // Histograms: per label set, le ascending, counts cumulative, +Inf == _count.
  struct Series {
    std::vector<std::pair<double, double>> buckets;
    double count = -1;
    bool sum = false;
  };
  std::map<std::string, Series> series;
  for (const Sample& s : p.samples) {
    const std::string family = family_of(p, s.name);
    if (family.empty() || p.type[family] != "histogram") continue;
    const std::string suffix = s.name.substr(family.size());
    Series& h = series[key_of(family, s.labels, "le")];
    if (suffix == "_bucket") {
      std::string le;
      for (const auto& [n, v] : s.labels)
        if (n == "le") le = v;
      if (le.empty()) p.errors.push_back(s.name + " bucket without le");
      h.buckets.emplace_back(std::strtod(le.c_str(), nullptr), s.value);
    } else if (suffix == "_count") {
      h.count = s.value;
    } else if (suffix == "_sum") {
      h.sum = true;
    } else {
      p.errors.push_back(s.name + ": plain sample in a histogram");
    }
  }
  for (const auto& [k, h] : series) {
    if (h.buckets.empty() || !std::isinf(h.buckets.back().first))
      p.errors.push_back(k + ": no +Inf");
    for (size_t i = 1; i < h.buckets.size(); ++i) {
      if (!(h.buckets[i - 1].first < h.buckets[i].first))
        p.errors.push_back(k + ": le not ascending");
      if (h.buckets[i - 1].second > h.buckets[i].second) p.errors.push_back(k + ": not cumulative");
    }
    if (!h.buckets.empty() && h.buckets.back().second != h.count)
      p.errors.push_back(k + ": +Inf != _count");
    if (!h.sum) p.errors.push_back(k + ": no _sum");
  }
  return p;
}

double value_of(const Parsed& p, const std::string& name, const Labels& labels) {
  for (const Sample& s : p.samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nan("");
}

}  // namespace kr
