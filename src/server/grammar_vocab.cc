#include "server/grammar_vocab.h"

#include <algorithm>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace kr {

StatusOr<std::shared_ptr<const grammar::TokenVocabulary>> make_grammar_vocabulary(const Tokenizer& tok,
                                                                                   int32_t model_vocab_size,
                                                                                   std::span<const int32_t> eos_ids) {
  if (model_vocab_size <= 0) return InvalidArgument("grammar vocabulary: the model has no vocabulary");
  std::vector<std::string> bytes(static_cast<size_t>(model_vocab_size));
  std::vector<int32_t> eos, special;
  for (int32_t id : eos_ids)
    if (id >= 0 && id < model_vocab_size && std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
  const int32_t known = std::min(model_vocab_size, tok.vocab_size());
  for (int32_t id = 0; id < known; ++id) {
    bytes[static_cast<size_t>(id)] = tok.token_bytes(id);
    if (tok.is_special(id) && std::find(eos.begin(), eos.end(), id) == eos.end()) special.push_back(id);
  }
  return grammar::TokenVocabulary::create(std::move(bytes), std::move(eos), std::move(special));
}

}  // namespace kr
