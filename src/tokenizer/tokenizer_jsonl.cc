#include "tokenizer/tokenizer_jsonl.h"

#include <istream>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

namespace kr {
namespace {

// The answer line for one input line; sets *error when it is an error line.
nlohmann::json answer(const Tokenizer& tok, bool decode, const std::string& line, bool* error) {
  *error = true;
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return {{"error", "line is not a JSON object"}};
  if (!decode) {
    auto it = j.find("text");
    if (it == j.end() || !it->is_string()) return {{"error", "expected {\"text\": string}"}};
    *error = false;
    return {{"ids", tok.encode(it->get_ref<const std::string&>(), /*parse_special=*/true)}};
  }
  auto it = j.find("ids");
  if (it == j.end() || !it->is_array()) return {{"error", "expected {\"ids\": [integers]}"}};
  std::vector<int32_t> ids;
  for (const auto& v : *it) {
    if (!v.is_number_integer()) return {{"error", "ids must be integers"}};
    const int64_t id = v.get<int64_t>();
    if (id < 0 || id >= tok.vocab_size()) return {{"error", "id out of range: " + std::to_string(id)}};
    ids.push_back(static_cast<int32_t>(id));
  }
  *error = false;
  return {{"text", tok.decode(ids, /*skip_special_tokens=*/false)}};
}

}  // namespace

size_t run_tokenize_jsonl(const Tokenizer& tok, bool decode, std::istream& in, std::ostream& out) {
  size_t errors = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    bool error = false;
    // Invalid UTF-8 in decoded text is already replaced, so dump() cannot throw.
    out << answer(tok, decode, line, &error).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    out.flush();
    if (error) ++errors;
  }
  return errors;
}

}  // namespace kr
