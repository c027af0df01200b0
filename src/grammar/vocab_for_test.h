// Test and benchmark helper: reads a Hugging Face tokenizer.json (byte-level
// BPE, as Llama 3 and Qwen use) into the token byte strings a TokenVocabulary
// takes, without the tokenizer module. Special added tokens are passed as
// special ids; tokens named in `eos_names` become EOS ids.
// Threading: pure function; any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "grammar/vocabulary.h"

namespace kr::grammar {

struct LoadedVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> eos_ids;
  std::vector<int32_t> special_ids;
};

StatusOr<LoadedVocab> load_tokenizer_json(const std::string& path, const std::vector<std::string>& eos_names);
// load_tokenizer_json + TokenVocabulary::create.
StatusOr<std::shared_ptr<const TokenVocabulary>> load_vocabulary(const std::string& path,
                                                                 const std::vector<std::string>& eos_names);

}  // namespace kr::grammar
