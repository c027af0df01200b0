// libFuzzer target: the Llama 3 tokenizer on arbitrary bytes (encode with and
// without special-token parsing), decode of arbitrary ids, and the incremental
// detokenizer, which must always agree with the full decode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {
const kr::Tokenizer* tokenizer() {
  static std::unique_ptr<kr::Tokenizer> tok = [] {
    auto t = kr::Tokenizer::load_from_file(KR_SOURCE_DIR "/models/tiny-llama3/tokenizer.json");
    if (!t.ok()) std::abort();
    return std::move(t).value();
  }();
  return tok.get();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const kr::Tokenizer* tok = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool special : {false, true}) {
    const std::vector<int32_t> ids = tok->encode(text, special);
    for (int32_t id : ids) {
      if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
    }
    // Byte-level BPE without a normalizer round-trips valid UTF-8 exactly (invalid
    // bytes decode to U+FFFD, as Hugging Face does).
    if (!special && kr::unicode::is_valid_utf8(text) && tok->decode(ids, false) != text) __builtin_trap();
  }
  // Arbitrary ids (two bytes each) through decode and the incremental detokenizer.
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < size; i += 2) ids.push_back((data[i] << 8 | data[i + 1]) % (tok->vocab_size() + 8) - 4);
  std::vector<int32_t> valid;
  for (int32_t id : ids) if (id >= 0 && id < tok->vocab_size()) valid.push_back(id);
  const std::string full = tok->decode(valid, false);
  kr::IncrementalDetokenizer detok(tok, false);
  std::string streamed;
  for (int32_t id : valid) streamed += detok.push(id);
  streamed += detok.flush();
  if (streamed != full) __builtin_trap();
  tok->decode(ids, true);  // out-of-range ids must not crash
  return 0;
}
