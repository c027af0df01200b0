// The one parser of numbers given as text (flags, environment variables):
// the whole string must be the number, and it must lie in [lo, hi].
//
// Threading: pure functions; any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace kr {

// Decimal integer ("-12"), nothing else around it.
bool parse_int(std::string_view s, int64_t lo, int64_t hi, int64_t* out);
// Finite decimal number ("0.5", "1e-3").
bool parse_double(std::string_view s, double lo, double hi, double* out);
// on|off, 1|0, true|false, yes|no (any case).
bool parse_bool(std::string_view s, bool* out);

}  // namespace kr
