// The grammar module's view of a model's vocabulary (grammar::TokenVocabulary),
// built from its tokenizer: every id below the model's vocabulary size with
// the bytes it stands for in the middle of a text (Tokenizer::token_bytes: a
// byte-level token's bytes, a SentencePiece piece with "▁" as a space, a
// <0xNN> byte), "" for ids the tokenizer does not know (padding rows of the
// embedding). Special tokens are never matched as bytes (only a grammar's
// token terminal, e.g. Mistral's [TOOL_CALLS], can ask for one); the model's
// EOS ids are allowed exactly where a grammar can end.
//
// Threading: pure function; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "base/status.h"
#include "grammar/vocabulary.h"

namespace kr {

class Tokenizer;

StatusOr<std::shared_ptr<const grammar::TokenVocabulary>> make_grammar_vocabulary(const Tokenizer& tok,
                                                                                   int32_t model_vocab_size,
                                                                                   std::span<const int32_t> eos_ids);

}  // namespace kr
