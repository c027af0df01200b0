// Fast reading of tokenizer.json: the two huge members (model.vocab with
// ~150k entries and model.merges with ~300k) are collected straight into
// vectors while parsing; the rest becomes an ordinary nlohmann DOM with those
// two members set to null. Internal to the tokenizer module (it exposes
// nlohmann in its header). Pure function: any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace kr::tokenizer_json {

struct Parsed {
  nlohmann::json root;  // model.vocab and model.merges are null here
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // "a b" strings are split at the space
  bool has_vocab = false, has_merges = false;
};

// InvalidArgument on malformed JSON or malformed vocab/merges entries.
StatusOr<Parsed> parse(std::string_view json_text, const std::string& name);

}  // namespace kr::tokenizer_json
