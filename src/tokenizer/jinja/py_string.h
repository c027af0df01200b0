// Python str semantics on UTF-8 std::string (strip, split, replace, title, ...),
// used by the string filters and the string methods. upper/lower map ASCII,
// Latin-1, Latin Extended-A, Greek and Cyrillic; capitalize/title and other
// scripts are ASCII-only (other letters keep their case). Pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kr::jinja {

// Python's str.isspace() for one code point given as UTF-8.
bool py_isspace(const std::string& ch);
// str.strip / lstrip / rstrip; chars == nullopt strips whitespace.
std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep, maxsplit); sep == nullopt splits on runs of whitespace.
std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep, long maxsplit);
// str.replace(old, new, count); count < 0 = all. max_bytes bounds the result.
std::string py_replace(const std::string& s, const std::string& from, const std::string& to, long count,
                       size_t max_bytes, bool* too_big);
size_t py_count(const std::string& s, const std::string& sub);
std::string py_upper(const std::string& s);
std::string py_lower(const std::string& s);
std::string ascii_lower(std::string s);
std::string py_capitalize(const std::string& s);  // str.capitalize
std::string py_title(const std::string& s);       // str.title
std::string jinja_title(const std::string& s);    // the `title` filter (words split on space, -, brackets)
std::string html_escape(const std::string& s);    // markupsafe.escape
std::vector<std::string> py_splitlines(const std::string& s);

}  // namespace kr::jinja
