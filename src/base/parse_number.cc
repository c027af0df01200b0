#include "base/parse_number.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace kr {

bool parse_int(std::string_view s, int64_t lo, int64_t hi, int64_t* out) {
  if (s.empty()) return false;
  const std::string str(s);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(str.c_str(), &end, 10);
  if (errno != 0 || end != str.c_str() + str.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_double(std::string_view s, double lo, double hi, double* out) {
  if (s.empty()) return false;
  const std::string str(s);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(str.c_str(), &end);
  if (errno != 0 || end != str.c_str() + str.size() || !std::isfinite(v) || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_bool(std::string_view s, bool* out) {
  std::string v;
  for (char c : s) v += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (v == "1" || v == "on" || v == "true" || v == "yes") {
    *out = true;
  } else if (v == "0" || v == "off" || v == "false" || v == "no") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

}  // namespace kr
