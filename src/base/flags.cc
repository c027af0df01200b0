#include "base/flags.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "base/parse_number.h"

namespace kr {
namespace {

std::string shown(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

FlagSet::Flag make_flag(const char* name, std::string value_name, const char* help, FlagSet::Flag::Kind kind) {
  FlagSet::Flag f;
  f.name.assign(name);
  f.value_name = std::move(value_name);
  f.help.assign(help);
  f.kind = kind;
  return f;
}

}  // namespace

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;  // farther than this is not a typo
  for (const std::string& c : candidates) {
    size_t d = edit_distance(word, c);
    // A prefix of a flag ("--max" for "--max-tokens") counts as near.
    if (c.size() > word.size() && c.compare(0, word.size(), word) == 0) d = std::min<size_t>(d, 1);
    if (d < best_d) best = c, best_d = d;
  }
  return best;
}

FlagSet::FlagSet(std::string command, std::string synopsis)
    : command_(std::move(command)), synopsis_(std::move(synopsis)) {
  sections_.push_back("");
}

void FlagSet::section(std::string title) { sections_.push_back(std::move(title)); }

FlagSet::Flag& FlagSet::add(Flag f) {
  f.section = sections_.size() - 1;
  flags_.push_back(std::move(f));
  return flags_.back();
}

FlagSet::Flag& FlagSet::string(const char* name, const char* value_name, std::string* out, const char* help) {
  Flag f = make_flag(name, value_name, help, Flag::kString);
  f.out = out;
  f.default_shown = out->empty() ? "none" : *out;
  return add(std::move(f));
}

FlagSet::Flag& FlagSet::choice(const char* name, std::vector<std::string> choices, std::string* out, const char* help) {
  Flag f = make_flag(name, join(choices, "|"), help, Flag::kChoice);
  f.out = out;
  f.choices = std::move(choices);
  f.default_shown = *out;
  return add(std::move(f));
}

FlagSet::Flag& FlagSet::int32(const char* name, int64_t lo, int64_t hi, int32_t* out, const char* help) {
  Flag f = make_flag(name, "N", help, Flag::kInt32);
  f.out = out;
  f.lo = lo;
  f.hi = hi;
  f.default_shown = std::to_string(*out);
  return add(std::move(f));
}

FlagSet::Flag& FlagSet::int64(const char* name, int64_t lo, int64_t hi, int64_t* out, const char* help) {
  Flag f = make_flag(name, "N", help, Flag::kInt64);
  f.out = out;
  f.lo = lo;
  f.hi = hi;
  f.default_shown = std::to_string(*out);
  return add(std::move(f));
}

FlagSet::Flag& FlagSet::number(const char* name, double lo, double hi, double* out, const char* help) {
  Flag f = make_flag(name, "X", help, Flag::kNumber);
  f.out = out;
  f.dlo = lo;
  f.dhi = hi;
  f.default_shown = shown(*out);
  return add(std::move(f));
}

FlagSet::Flag& FlagSet::switch_(const char* name, bool* out, const char* help) {
  Flag f = make_flag(name, "", help, Flag::kSwitch);
  f.out = out;
  f.default_shown = *out ? "on" : "off";
  return add(std::move(f));
}

FlagSet::Flag& FlagSet::custom(const char* name, const char* value_name, std::string default_text, const char* help,
                               std::function<std::optional<std::string>(const std::string&)> set) {
  Flag f = make_flag(name, value_name, help, Flag::kCustom);
  f.set = std::move(set);
  f.default_shown = std::move(default_text);
  return add(std::move(f));
}

std::optional<std::string> FlagSet::assign(const Flag& f, const std::string& value, const std::string& source) {
  auto bad = [&](const std::string& expected) { return source + "=\"" + value + "\": expected " + expected; };
  switch (f.kind) {
    case Flag::kString:
      *static_cast<std::string*>(f.out) = value;
      return std::nullopt;
    case Flag::kChoice:
      if (std::find(f.choices.begin(), f.choices.end(), value) == f.choices.end()) return bad(join(f.choices, ", "));
      *static_cast<std::string*>(f.out) = value;
      return std::nullopt;
    case Flag::kInt32:
    case Flag::kInt64: {
      int64_t v = 0;
      if (!parse_int(value, f.lo, f.hi, &v))
        return bad("an integer in [" + std::to_string(f.lo) + ", " + std::to_string(f.hi) + "]");
      if (f.kind == Flag::kInt32) {
        *static_cast<int32_t*>(f.out) = static_cast<int32_t>(v);
      } else {
        *static_cast<int64_t*>(f.out) = v;
      }
      return std::nullopt;
    }
    case Flag::kNumber: {
      double v = 0;
      if (!parse_double(value, f.dlo, f.dhi, &v)) return bad("a number in [" + shown(f.dlo) + ", " + shown(f.dhi) + "]");
      *static_cast<double*>(f.out) = v;
      return std::nullopt;
    }
    case Flag::kSwitch: {
      bool v = false;
      if (!parse_bool(value, &v)) return bad("on|off (also 1|0, true|false, yes|no)");
      *static_cast<bool*>(f.out) = v;
      return std::nullopt;
    }
    case Flag::kCustom:
      if (auto e = f.set(value)) return source + "=\"" + value + "\": " + *e;
      return std::nullopt;
  }
  return std::nullopt;
}

std::string FlagSet::suggestion(const std::string& name) const {
  std::vector<std::string> names;
  for (const Flag& f : flags_) names.push_back(f.name);
  names.push_back("help");
  const std::string near = nearest(name, names);
  return near.empty() ? "" : " (did you mean --" + near + "?)";
}

bool FlagSet::parse(int argc, char** argv, int begin, bool* help, std::string* error) {
  *help = false;
  given_.assign(flags_.size(), false);
  std::vector<bool>& given = given_;
  for (int i = begin; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return true;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      *error = "unexpected argument '" + arg + "'";
      return false;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    auto it = std::find_if(flags_.begin(), flags_.end(), [&](const Flag& f) { return f.name == name; });
    if (it == flags_.end()) {
      *error = "unknown option '--" + name + "'" + suggestion(name);
      return false;
    }
    given[static_cast<size_t>(it - flags_.begin())] = true;
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (it->kind == Flag::kSwitch) {
      value = "on";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      *error = "option --" + name + " needs a value (" + it->value_name + ")";
      return false;
    }
    if (auto e = assign(*it, value, "--" + name)) {
      *error = *e;
      return false;
    }
  }
  for (size_t k = 0; k < flags_.size(); ++k) {
    const Flag& f = flags_[k];
    if (given[k] || f.env_var.empty()) continue;
    const char* v = std::getenv(f.env_var.c_str());
    if (v == nullptr) continue;
    if (auto e = assign(f, v, f.env_var)) {
      *error = *e;
      return false;
    }
  }
  return true;
}

bool FlagSet::given(std::string_view name) const {
  for (size_t k = 0; k < flags_.size() && k < given_.size(); ++k)
    if (flags_[k].name == name) return given_[k];
  return false;
}

std::string FlagSet::help() const {
  std::ostringstream out;
  out << "usage: " << command_ << (synopsis_.empty() ? "" : " " + synopsis_) << "\n";
  size_t width = 0;
  std::vector<std::string> heads;
  for (const Flag& f : flags_) {
    heads.push_back("--" + f.name + (f.kind == Flag::kSwitch ? "" : " " + f.value_name));
    width = std::max(width, heads.back().size());
  }
  width = std::min<size_t>(width, 34);
  for (size_t s = 0; s < sections_.size(); ++s) {
    bool any = false;
    for (size_t k = 0; k < flags_.size(); ++k) {
      const Flag& f = flags_[k];
      if (f.section != s) continue;
      if (!any && !sections_[s].empty()) out << sections_[s] << ":\n";
      any = true;
      std::string line = "  " + heads[k];
      line += std::string(line.size() < width + 4 ? width + 4 - line.size() : 1, ' ');
      line += f.help + " (default: " + f.default_shown;
      if (!f.env_var.empty()) line += "; env " + f.env_var;
      line += ")";
      out << line << "\n";
    }
  }
  return out.str();
}

}  // namespace kr
