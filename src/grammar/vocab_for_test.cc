#include "grammar/vocab_for_test.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "grammar/utf8.h"

namespace kr::grammar {

namespace {
// GPT-2's byte-level BPE alphabet: printable bytes stand for themselves, the
// other 68 bytes are shifted to code points 256 and up.
std::unordered_map<uint32_t, uint8_t> unicode_to_byte() {
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<int> cs = bs;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
      bs.push_back(b);
      cs.push_back(256 + n++);
    }
  }
  std::unordered_map<uint32_t, uint8_t> out;
  for (size_t i = 0; i < bs.size(); ++i) out[static_cast<uint32_t>(cs[i])] = static_cast<uint8_t>(bs[i]);
  return out;
}
}  // namespace

StatusOr<LoadedVocab> load_tokenizer_json(const std::string& path, const std::vector<std::string>& eos_names) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.contains("model") || !j["model"].contains("vocab")) {
    return InvalidArgument(path + ": not a tokenizer.json with model.vocab");
  }
  static const auto kMap = unicode_to_byte();
  LoadedVocab v;
  auto put = [&](size_t id, std::string bytes) {
    if (v.tokens.size() <= id) v.tokens.resize(id + 1);
    v.tokens[id] = std::move(bytes);
  };
  for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it) {
    const std::string sym = it.key();
    std::string bytes;
    size_t pos = 0;
    uint32_t cp;
    while (pos < sym.size()) {
      if (!decode_utf8(sym, pos, cp)) return InvalidArgument(path + ": bad UTF-8 in vocab");
      auto m = kMap.find(cp);
      if (m == kMap.end()) return InvalidArgument(path + ": symbol outside the byte-level alphabet");
      bytes.push_back(static_cast<char>(m->second));
    }
    put(it.value().get<size_t>(), std::move(bytes));
  }
  if (j.contains("added_tokens")) {
    for (const auto& a : j["added_tokens"]) {
      size_t id = a["id"].get<size_t>();
      std::string content = a["content"].get<std::string>();
      bool special = a.value("special", false);
      bool eos = std::find(eos_names.begin(), eos_names.end(), content) != eos_names.end();
      put(id, content);
      if (eos) {
        v.eos_ids.push_back(static_cast<int32_t>(id));
      } else if (special) {
        v.special_ids.push_back(static_cast<int32_t>(id));
      }
    }
  }
  return v;
}

StatusOr<std::shared_ptr<const TokenVocabulary>> load_vocabulary(const std::string& path,
                                                                 const std::vector<std::string>& eos_names) {
  auto v = load_tokenizer_json(path, eos_names);
  if (!v.ok()) return v.status();
  return TokenVocabulary::create(std::move(v->tokens), std::move(v->eos_ids), std::move(v->special_ids));
}

}  // namespace kr::grammar
