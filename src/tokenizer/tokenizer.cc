// Loading tokenizer.json and the encode/decode paths.
#include "tokenizer/tokenizer.h"
#include "tokenizer/scratch.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode.h"

namespace kr {
namespace {

// GPT-2's reversible byte <-> printable character mapping: printable Latin-1
// bytes map to themselves, the rest to U+0100 onwards in byte order.
struct ByteLevelMap {
  uint32_t byte_to_cp[256];
  int16_t cp_to_byte[0x144];  // -1 where no byte maps to the code point
  ByteLevelMap() {
    for (int16_t& v : cp_to_byte) v = -1;
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_cp[b] = printable ? b : next++;
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
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
    if (cp >= 0x144 || m.cp_to_byte[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(m.cp_to_byte[cp]));
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

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load_from_file(const std::string& tokenizer_json_path) {
  std::ifstream in(tokenizer_json_path, std::ios::binary);
  if (!in) return NotFound("cannot open tokenizer file " + tokenizer_json_path);
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  std::string text(static_cast<size_t>(std::max<std::streamoff>(size, 0)), '\0');
  if (size < 0 || !in.read(text.data(), size)) return DataLoss("cannot read tokenizer file " + tokenizer_json_path);
  return load_from_json(text, tokenizer_json_path);
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load_from_json(std::string_view json_text, const std::string& name) {
  KR_ASSIGN_OR_RETURN(tokenizer_json::Parsed parsed, tokenizer_json::parse(json_text, name));
  const nlohmann::json& j = parsed.root;
  if (!j.is_object()) return InvalidArgument(name + ": not a JSON object");
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
    if (!parsed.has_vocab || !parsed.has_merges) return InvalidArgument(name + ": model.vocab or model.merges missing");
    int32_t max_id = -1;
    std::vector<int32_t> vocab_ids;
    vocab_ids.reserve(parsed.vocab.size());
    for (const auto& [text, id64] : parsed.vocab) {
      if (id64 < 0 || id64 > (int64_t{1} << 30)) return InvalidArgument(name + ": bad token id for " + text);
      vocab_ids.push_back(static_cast<int32_t>(id64));
      max_id = std::max(max_id, vocab_ids.back());
    }
    // Added tokens.
    std::vector<AddedToken> added;
    if (j.contains("added_tokens")) {
      for (const auto& a : j.at("added_tokens")) {
        AddedToken t{a.at("content").get<std::string>(), a.at("id").get<int32_t>(), a.value("special", false)};
        if (t.id < 0 || t.id > (1 << 30) || t.content.empty()) return InvalidArgument(name + ": bad added token");
        if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false)) {
          return Unimplemented(name + ": added token " + t.content + " uses lstrip/rstrip/single_word");
        }
        max_id = std::max(max_id, t.id);
        added.push_back(std::move(t));
      }
    }
    const size_t n = static_cast<size_t>(max_id + 1);
    // The tables below index strings owned by the tokenizer, so build it in place.
    std::unique_ptr<Tokenizer> tok(new Tokenizer());
    tok->id_bytes_.resize(n);
    tok->id_text_.resize(n);
    for (auto& [text, id64] : parsed.vocab) {
      const size_t id = static_cast<size_t>(id64);
      std::optional<std::string> bytes = vocab_text_to_bytes(text);
      if (!bytes) return InvalidArgument(name + ": vocab entry is not byte-level: " + text);
      tok->id_text_[id] = std::move(text);
      tok->id_bytes_[id] = std::move(*bytes);
    }
    tok->text_to_id_ = StringIdTable(&tok->id_text_, vocab_ids.size() + added.size());
    for (int32_t id : vocab_ids) tok->text_to_id_.insert(id);
    // Merges, resolved to ids.
    std::vector<BpeModel::Merge> merges;
    merges.reserve(parsed.merges.size());
    std::string joined;
    for (const auto& [a, b] : parsed.merges) {
      joined.assign(a).append(b);
      const auto ia = tok->text_to_id_.find(a), ib = tok->text_to_id_.find(b), im = tok->text_to_id_.find(joined);
      if (!ia || !ib || !im) return InvalidArgument(name + ": merge of tokens not in the vocab: " + a + " " + b);
      merges.push_back(BpeModel::Merge{*ia, *ib, *im});
    }
    tok->model_ = BpeModel(&tok->id_bytes_, vocab_ids, merges, model.value("ignore_merges", false));
    for (int b = 0; b < 256; ++b) {
      if (!tok->model_.byte_token(static_cast<uint8_t>(b))) {
        return InvalidArgument(name + ": byte-level vocab lacks the token of byte " + std::to_string(b));
      }
    }
    tok->pre_tokenizer_ = std::move(pre);
    tok->nfc_ = nfc;
    tok->special_.assign(n, 0);
    tok->added_by_first_byte_.resize(256);
    for (const AddedToken& t : added) {
      const size_t id = static_cast<size_t>(t.id);
      if (!tok->id_text_[id].empty() && tok->id_text_[id] != t.content) {
        return InvalidArgument(name + ": added token " + t.content + " reuses the id of vocab entry " + tok->id_text_[id]);
      }
      tok->id_bytes_[id] = t.content;
      tok->id_text_[id] = t.content;
      tok->special_[id] = t.special ? 1 : 0;
      tok->text_to_id_.insert(t.id);
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
  thread_local std::vector<PieceSpan> scratch;
  std::deque<std::string> storage;
  pieces.clear();
  pre_tokenizer_.split(text, &pieces, &scratch, &storage);
  for (std::string_view p : pieces) model_.encode_word(p, ids);
  release_if_large(pieces);
  release_if_large(scratch);
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
  return text_to_id_.find(token);
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[static_cast<size_t>(id)] != 0;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(id_bytes_.size()); }

}  // namespace kr
