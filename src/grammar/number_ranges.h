// Numeric bounds as regular expressions over JSON number text, for JSON
// Schema minimum/maximum/exclusiveMinimum/exclusiveMaximum.
//
// Bounds are exact decimals (parsed from the schema's number text), and the
// generated numbers are compared exactly. To stay valid under validators that
// compare as binary doubles, numbers near a bound carry at most 15 significant
// digits (two different decimals of at most 15 digits never round to the same
// double), and bounded numbers have no exponent.
//
// Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "grammar/grammar_ir.h"

namespace kr::grammar {

// An exact decimal: sign, integer digits (no leading zeros, "0" for zero),
// fraction digits (no trailing zeros).
struct Decimal {
  bool negative = false;
  std::string int_digits = "0";
  std::string frac_digits;

  static StatusOr<Decimal> parse(std::string_view text);  // JSON number syntax
  bool is_zero() const { return int_digits == "0" && frac_digits.empty(); }
  bool is_integer() const { return frac_digits.empty(); }
  std::string to_string() const;
};
int compare(const Decimal& a, const Decimal& b);

struct Bound {
  Decimal value;
  bool inclusive = true;
};

// JSON integers in [lo, hi] (either side optional). Unbounded sides stop at
// `max_digits` digits. kNothing when the range is empty.
ExprId integer_range_expr(Grammar& g, const std::optional<Bound>& lo, const std::optional<Bound>& hi,
                          uint32_t max_digits = 18);
// JSON numbers (integer or decimal fraction, no exponent) in the range.
ExprId number_range_expr(Grammar& g, const std::optional<Bound>& lo, const std::optional<Bound>& hi);

}  // namespace kr::grammar
