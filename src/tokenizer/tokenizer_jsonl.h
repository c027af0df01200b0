// Line protocol of `kr-serve tokenize --jsonl`: one JSON object per line in,
// one per line out. Encode: {"text": "..."} -> {"ids": [...]} (special-token
// text parsed as specials). Decode: {"ids": [...]} -> {"text": "..."}.
// A bad line yields {"error": "..."} and processing continues.
// Called by one thread at a time per stream pair.
#pragma once

#include <iosfwd>

#include "tokenizer/tokenizer.h"

namespace kr {

// Processes `in` to its end; returns the number of lines answered with an error.
size_t run_tokenize_jsonl(const Tokenizer& tok, bool decode, std::istream& in, std::ostream& out);

}  // namespace kr
