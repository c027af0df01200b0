// A strict reader of the part of TOML (v1.0.0, toml.io) that kr-serve's models
// config uses; anything else is an error naming its line, never silently read:
//   # comments and blank lines
//   key = value            bare keys [A-Za-z0-9_-]+ or "quoted" keys; no dotted keys
//   [[name]]               array of tables: each header starts a new table
//   [name]                 a table (once per name)
// Values: "basic strings" (escapes \" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX),
// 'literal strings', decimal integers and floats (sign, '_' between digits,
// exponent), true and false. Not read: arrays, inline tables, multi-line
// strings, dates, hex/octal/binary integers, inf and nan.
// A key given twice in one table is an error, as TOML says.
//
// Threading: pure function; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace kr {

struct TomlValue {
  enum Kind { kString, kInteger, kFloat, kBool };
  Kind kind = kString;
  std::string str;    // kString: the decoded text; numbers: their text as written (no '_')
  int64_t integer = 0;
  double number = 0;  // kInteger and kFloat
  bool boolean = false;
  int line = 0;
};

struct TomlTable {
  std::string name;  // "" for the root table
  bool array = false;  // [[name]]
  int line = 0;        // of the header (0 for the root)
  std::vector<std::pair<std::string, TomlValue>> entries;  // in file order
};

struct TomlDocument {
  TomlTable root;
  std::vector<TomlTable> tables;  // in file order
};

// Errors are InvalidArgument "FILE:LINE: what".
StatusOr<TomlDocument> parse_toml_subset(std::string_view text, const std::string& file);

// "a string", "an integer", ... for error messages.
const char* toml_kind_name(TomlValue::Kind kind);

}  // namespace kr
