// Loading tokenizer.json and the encode/decode paths.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/unicode.h"

namespace kr {
namespace {

// GPT-2's reversible byte <-> printable character mapping: printable Latin-1
// bytes map to themselves, the rest to U+0100 onwards in byte order.
struct ByteLevelMap {
  uint32_t byte_to_cp[256];
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;
  ByteLevelMap() {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_cp[b] = printable ? b : next++;
      cp_to_byte[byte_to_cp[b]] = static_cast<uint8_t>(b);
    }
  }
};

const ByteLevelMap& byte_level_map() {
  static const ByteLevelMap m;
  return m;
}

// Raw bytes of a byte-level vocab string, or nullopt if a character is not
// one of the 256 byte characters.
std::optional<std::string> vocab_text_to_bytes(std::string_view text) {
  const ByteLevelMap& m = byte_level_map();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = 0;
    const uint32_t cp = unicode::decode_utf8(text, i, &n);
    i += n;
    auto it = m.cp_to_byte.find(cp);
    if (it == m.cp_to_byte.end()) return std::nullopt;
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

StatusOr<bool> parse_normalizer(const nlohmann::json& j) {
  if (j.is_null()) return false;
  const std::string type = j.at("type").get<std::string>();
  if (type == "NFC") return true;
  if (type == "Sequence") {
    bool nfc = false;
    for (const auto& n : j.at("normalizers")) {
      KR_ASSIGN_OR_RETURN(bool one, parse_normalizer(n));
      nfc = nfc || one;
    }
    return nfc;
  }
  return Unimplemented("normalizer type " + type + " is not supported (only NFC)");
}

Status check_decoder(const nlohmann::json& j) {
  if (j.is_null()) return Unimplemented("tokenizer.json has no decoder (a ByteLevel decoder is needed)");
  const std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel") return Status::Ok();
  if (type == "Sequence") {
    for (const auto& d : j.at("decoders")) {
      if (d.at("type").get<std::string>() == "ByteLevel") return Status::Ok();
    }
  }
  return Unimplemented("decoder type " + type + " is not supported (only ByteLevel)");
}

// "a b" or ["a", "b"].
bool split_merge(const nlohmann::json& m, std::string* a, std::string* b) {
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    const size_t sp = s.find(' ', 1);
    if (sp == std::string::npos) return false;
    *a = s.substr(0, sp);
    *b = s.substr(sp + 1);
    return true;
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    *a = m[0].get<std::string>();
    *b = m[1].get<std::string>();
    return true;
  }
  return false;
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load_from_file(const std::string& tokenizer_json_path) {
  std::ifstream in(tokenizer_json_path, std::ios::binary);
  if (!in) return NotFound("cannot open tokenizer file " + tokenizer_json_path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) return DataLoss("cannot read tokenizer file " + tokenizer_json_path);
  return load_from_json(ss.str(), tokenizer_json_path);
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load_from_json(std::string_view json_text, const std::string& name) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(name + ": not a JSON object");
  try {
    const nlohmann::json& model = j.at("model");
    if (model.value("type", std::string("BPE")) != "BPE") {
      return Unimplemented(name + ": model type " + model.at("type").get<std::string>() + " is not supported");
    }
    if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() && model["byte_fallback"].get<bool>()) {
      return Unimplemented(name + ": byte_fallback BPE (SentencePiece style) is not supported");
    }
    KR_ASSIGN_OR_RETURN(bool nfc, parse_normalizer(j.value("normalizer", nlohmann::json())));
    KR_ASSIGN_OR_RETURN(PreTokenizer pre, PreTokenizer::from_json(j.value("pre_tokenizer", nlohmann::json()).dump()));
    if (!pre.byte_level()) return Unimplemented(name + ": only byte-level BPE (a ByteLevel pre_tokenizer) is supported");
    KR_RETURN_IF_ERROR(check_decoder(j.value("decoder", nlohmann::json())));

    // Vocabulary.
    const nlohmann::json& vocab = model.at("vocab");
    int32_t max_id = -1;
    StringIdMap text_to_id, bytes_to_id;
    text_to_id.reserve(vocab.size() + 512);
    bytes_to_id.reserve(vocab.size());
    std::vector<std::pair<int32_t, const std::string*>> entries;
    entries.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const int32_t id = it.value().get<int32_t>();
      if (id < 0) return InvalidArgument(name + ": negative token id for " + it.key());
      max_id = std::max(max_id, id);
      text_to_id.emplace(it.key(), id);
      entries.emplace_back(id, &it.key());
    }
    // Added tokens.
    std::vector<AddedToken> added;
    if (j.contains("added_tokens")) {
      for (const auto& a : j.at("added_tokens")) {
        AddedToken t{a.at("content").get<std::string>(), a.at("id").get<int32_t>(), a.value("special", false)};
        if (t.id < 0 || t.content.empty()) return InvalidArgument(name + ": bad added token");
        if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false)) {
          return Unimplemented(name + ": added token " + t.content + " uses lstrip/rstrip/single_word");
        }
        max_id = std::max(max_id, t.id);
        added.push_back(std::move(t));
      }
    }
    const size_t n = static_cast<size_t>(max_id + 1);
    std::vector<std::string> id_bytes(n), id_text(n);
    for (const auto& [id, text] : entries) {
      std::optional<std::string> bytes = vocab_text_to_bytes(*text);
      if (!bytes) return InvalidArgument(name + ": vocab entry is not byte-level: " + *text);
      id_text[static_cast<size_t>(id)] = *text;
      bytes_to_id.emplace(*bytes, id);
      id_bytes[static_cast<size_t>(id)] = std::move(*bytes);
    }
    for (int b = 0; b < 256; ++b) {
      const char c = static_cast<char>(b);
      if (!bytes_to_id.count(std::string_view(&c, 1))) {
        return InvalidArgument(name + ": byte-level vocab lacks the token of byte " + std::to_string(b));
      }
    }
    // Merges, resolved to ids.
    std::vector<BpeModel::Merge> merges;
    const nlohmann::json& jm = model.at("merges");
    merges.reserve(jm.size());
    std::string a, b;
    for (const auto& m : jm) {
      if (!split_merge(m, &a, &b)) return InvalidArgument(name + ": bad merge " + m.dump());
      auto ia = text_to_id.find(a), ib = text_to_id.find(b), im = text_to_id.find(a + b);
      if (ia == text_to_id.end() || ib == text_to_id.end() || im == text_to_id.end()) {
        return InvalidArgument(name + ": merge of tokens not in the vocab: " + a + " " + b);
      }
      merges.push_back(BpeModel::Merge{ia->second, ib->second, im->second});
    }
    const bool ignore_merges = model.value("ignore_merges", false);

    std::unique_ptr<Tokenizer> tok(new Tokenizer(BpeModel(std::move(bytes_to_id), merges, ignore_merges)));
    tok->pre_tokenizer_ = std::move(pre);
    tok->nfc_ = nfc;
    tok->special_.assign(n, 0);
    tok->added_by_first_byte_.resize(256);
    for (const AddedToken& t : added) {
      const size_t id = static_cast<size_t>(t.id);
      id_bytes[id] = t.content;
      id_text[id] = t.content;
      tok->special_[id] = t.special ? 1 : 0;
      text_to_id[t.content] = t.id;
    }
    tok->added_ = std::move(added);
    for (uint32_t i = 0; i < tok->added_.size(); ++i) {
      tok->added_by_first_byte_[static_cast<uint8_t>(tok->added_[i].content[0])].push_back(i);
    }
    for (auto& list : tok->added_by_first_byte_) {
      std::stable_sort(list.begin(), list.end(), [&](uint32_t x, uint32_t y) {
        return tok->added_[x].content.size() > tok->added_[y].content.size();
      });
    }
    tok->id_bytes_ = std::move(id_bytes);
    tok->id_text_ = std::move(id_text);
    tok->text_to_id_ = std::move(text_to_id);
    return tok;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(name + ": " + e.what());
  }
}

const Tokenizer::AddedToken* Tokenizer::match_added(std::string_view text, size_t pos, bool parse_special) const {
  for (uint32_t i : added_by_first_byte_[static_cast<uint8_t>(text[pos])]) {
    const AddedToken& t = added_[i];
    if (t.special && !parse_special) continue;
    if (text.compare(pos, t.content.size(), t.content) == 0) return &t;
  }
  return nullptr;
}

void Tokenizer::encode_plain(std::string_view text, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  std::string normalized;
  if (nfc_) {
    normalized = unicode::nfc(text);
    text = normalized;
  }
  thread_local std::vector<std::string_view> pieces;
  thread_local std::vector<Span> scratch;
  std::deque<std::string> storage;
  pieces.clear();
  pre_tokenizer_.split(text, &pieces, &scratch, &storage);
  for (std::string_view p : pieces) model_.encode_word(p, ids);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  size_t start = 0;  // start of the plain text not yet encoded
  for (size_t pos = 0; pos < text.size(); ++pos) {
    if (added_by_first_byte_[static_cast<uint8_t>(text[pos])].empty()) continue;
    const AddedToken* t = match_added(text, pos, parse_special);
    if (t == nullptr) continue;
    encode_plain(text.substr(start, pos - start), &ids);
    ids.push_back(t->id);
    pos += t->content.size() - 1;
    start = pos + 1;
  }
  encode_plain(text.substr(start), &ids);
  return ids;
}

std::string_view Tokenizer::token_bytes_view(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_bytes_.size()) return {};
  return id_bytes_[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    bytes += token_bytes_view(id);
  }
  return unicode::is_valid_utf8(bytes) ? bytes : unicode::utf8_lossy(bytes);
}

std::string Tokenizer::token_bytes(int32_t id) const { return std::string(token_bytes_view(id)); }

std::string Tokenizer::token_text(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_text_.size()) return {};
  return id_text_[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = text_to_id_.find(token);
  if (it == text_to_id_.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[static_cast<size_t>(id)] != 0;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(id_bytes_.size()); }

}  // namespace kr
