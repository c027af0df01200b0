// Loading tokenizer.json and the encode/decode paths. The pipeline follows
// Hugging Face tokenizers (tokenizer/mod.rs, tokenizer/added_vocabulary.rs):
// added tokens out of the raw text; normalise each stretch between them;
// normalized added tokens out of that; pre-tokenize; BPE each piece.
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

// "post_processor": the ids a single text gets before and after it with
// add_special_tokens (tokenizers' processors: TemplateProcessing's "single"
// template; ByteLevel adds none; a Sequence applies each in turn, each
// wrapping what the previous one produced).
Status parse_post_processor(const nlohmann::json& j, const std::string& key, std::vector<int32_t>* prefix,
                            std::vector<int32_t>* suffix) {
  if (j.is_null()) return Status::Ok();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return InvalidArgument(key + " must be an object with a string \"type\"");
  }
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return Status::Ok();
  if (type == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) return InvalidArgument(key + ".processors must be a list");
    size_t i = 0;
    for (const auto& p : j["processors"]) {
      KR_RETURN_IF_ERROR(parse_post_processor(p, key + ".processors[" + std::to_string(i++) + "]", prefix, suffix));
    }
    return Status::Ok();
  }
  if (type != "TemplateProcessing") {
    return Unimplemented(key + ".type: post-processor " + type +
                         " is not supported (supported: TemplateProcessing, ByteLevel, Sequence)");
  }
  if (!j.contains("single") || !j["single"].is_array()) return InvalidArgument(key + ".single must be a list");
  const nlohmann::json specials = j.value("special_tokens", nlohmann::json::object());
  std::vector<int32_t> before, after;
  bool seen_a = false;
  for (const auto& item : j["single"]) {
    if (item.contains("Sequence")) {
      if (item["Sequence"].value("id", std::string()) != "A" || seen_a) {
        return InvalidArgument(key + ".single: a single template holds the sequence A once");
      }
      seen_a = true;
      continue;
    }
    if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id")) {
      return InvalidArgument(key + ".single: an item is neither SpecialToken nor Sequence");
    }
    const std::string name = item["SpecialToken"]["id"].get<std::string>();
    if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
      return InvalidArgument(key + ".special_tokens has no ids for " + name);
    }
    for (const auto& id : specials[name]["ids"]) (seen_a ? after : before).push_back(id.get<int32_t>());
  }
  if (!seen_a) return InvalidArgument(key + ".single has no sequence A");
  prefix->insert(prefix->begin(), before.begin(), before.end());
  suffix->insert(suffix->end(), after.begin(), after.end());
  return Status::Ok();
}

// A BPE option that must be absent, null, or the value that means "off".
Status check_off(const nlohmann::json& model, const char* key, const std::string& name) {
  if (!model.contains(key) || model[key].is_null()) return Status::Ok();
  const nlohmann::json& v = model[key];
  if ((v.is_string() && v.get<std::string>().empty()) || (v.is_number() && v.get<double>() == 0.0)) return Status::Ok();
  return Unimplemented(name + ": model." + key + " " + v.dump() + " is not supported");
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load_from_file(const std::string& tokenizer_json_path,
                                                               const TokenizerConfig* config) {
  std::ifstream in(tokenizer_json_path, std::ios::binary);
  if (!in) return NotFound("cannot open tokenizer file " + tokenizer_json_path);
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  std::string text(static_cast<size_t>(std::max<std::streamoff>(size, 0)), '\0');
  if (size < 0 || !in.read(text.data(), size)) return DataLoss("cannot read tokenizer file " + tokenizer_json_path);
  return load_from_json(text, tokenizer_json_path, config);
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load_from_json(std::string_view json_text, const std::string& name,
                                                               const TokenizerConfig* config) {
  KR_ASSIGN_OR_RETURN(tokenizer_json::Parsed parsed, tokenizer_json::parse(json_text, name));
  return load_from_parsed(std::move(parsed), name, config);
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load_from_parsed(tokenizer_json::Parsed parsed, const std::string& name,
                                                                 const TokenizerConfig* config) {
  const nlohmann::json& j = parsed.root;
  if (!j.is_object()) return InvalidArgument(name + ": not a JSON object");
  // Component errors name their key; the file name goes in front.
  const auto in_file = [&](const Status& s) { return Status(s.code(), name + ": " + s.message()); };
  try {
    if (!j.contains("model") || !j["model"].is_object()) return InvalidArgument(name + ": model is missing");
    const nlohmann::json& model = j["model"];
    if (model.value("type", std::string("BPE")) != "BPE") {
      return Unimplemented(name + ": model.type " + model["type"].dump() + " is not supported (only BPE)");
    }
    for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix"}) {
      KR_RETURN_IF_ERROR(check_off(model, key, name));
    }
    for (const char* key : {"byte_fallback", "fuse_unk", "ignore_merges"}) {
      if (model.contains(key) && !model[key].is_null() && !model[key].is_boolean()) {
        return InvalidArgument(name + ": model." + key + " must be a bool");
      }
    }
    const auto flag = [&](const char* key) { return model.contains(key) && model[key].is_boolean() && model[key].get<bool>(); };

    StatusOr<Normalizer> normalizer = Normalizer::from_json(j.value("normalizer", nlohmann::json()).dump());
    if (!normalizer.ok()) return in_file(normalizer.status());
    StatusOr<PreTokenizer> pre = PreTokenizer::from_json(j.value("pre_tokenizer", nlohmann::json()).dump());
    if (!pre.ok()) return in_file(pre.status());
    StatusOr<Decoder> decoder = Decoder::from_json(j.value("decoder", nlohmann::json()).dump());
    if (!decoder.ok()) return in_file(decoder.status());
    const bool byte_level = pre->byte_level();
    if (byte_level && !decoder->byte_level()) {
      return Unimplemented(name + ": decoder: a byte-level pre_tokenizer needs the ByteLevel decoder");
    }
    if (!byte_level && decoder->byte_level()) {
      return Unimplemented(name + ": pre_tokenizer: the ByteLevel decoder needs a ByteLevel pre-tokenizer");
    }
    if (byte_level && flag("byte_fallback")) {
      return Unimplemented(name + ": model.byte_fallback with a byte-level pre-tokenizer is not supported");
    }
    if (pre->uses_first_scheme() && normalizer->may_insert_at_head()) {
      return Unimplemented(name + ": pre_tokenizer: Metaspace prepend_scheme first after a normalizer that "
                                  "prepends text is not supported");
    }

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
    struct Added {
      std::string content;
      int32_t id;
      bool special, normalized;
    };
    std::vector<Added> added;
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
      for (const auto& a : j.at("added_tokens")) {
        const bool special = a.value("special", false);
        Added t{a.at("content").get<std::string>(), a.at("id").get<int32_t>(), special, a.value("normalized", !special)};
        if (t.id < 0 || t.id > (1 << 30) || t.content.empty()) return InvalidArgument(name + ": bad added token");
        if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false)) {
          return Unimplemented(name + ": added_tokens: " + t.content + " uses lstrip/rstrip/single_word");
        }
        max_id = std::max(max_id, t.id);
        added.push_back(std::move(t));
      }
    }
    const size_t n = static_cast<size_t>(max_id + 1);
    // The tables below index strings owned by the tokenizer, so build it in place.
    std::unique_ptr<Tokenizer> tok(new Tokenizer());
    tok->id_text_.resize(n);
    if (byte_level) tok->id_bytes_.resize(n);
    for (auto& [text, id64] : parsed.vocab) {
      const size_t id = static_cast<size_t>(id64);
      if (byte_level) {
        std::optional<std::string> bytes = vocab_text_to_bytes(text);
        if (!bytes) return InvalidArgument(name + ": vocab entry is not byte-level: " + text);
        tok->id_bytes_[id] = std::move(*bytes);
      }
      tok->id_text_[id] = std::move(text);
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
    BpeModel::Options opt;
    opt.byte_level = byte_level;
    opt.ignore_merges = flag("ignore_merges");
    opt.byte_fallback = flag("byte_fallback");
    opt.fuse_unk = flag("fuse_unk");
    if (!byte_level && model.contains("unk_token") && model["unk_token"].is_string()) {
      const std::string unk = model["unk_token"].get<std::string>();
      opt.unk_id = tok->text_to_id_.find(unk);
      if (!opt.unk_id) return InvalidArgument(name + ": model.unk_token " + unk + " is not in the vocabulary");
    }
    tok->model_ = BpeModel(byte_level ? &tok->id_bytes_ : &tok->id_text_, vocab_ids, merges, opt);
    if (byte_level) {
      for (int b = 0; b < 256; ++b) {
        if (!tok->model_.byte_token(static_cast<uint8_t>(b))) {
          return InvalidArgument(name + ": byte-level vocab lacks the token of byte " + std::to_string(b));
        }
      }
    }
    tok->normalizer_ = std::move(*normalizer);
    tok->pre_tokenizer_ = std::move(*pre);
    tok->decoder_ = std::move(*decoder);
    tok->special_.assign(n, 0);
    std::vector<AddedVocab::Token> raw, normed, contents;
    for (const Added& t : added) {
      const size_t id = static_cast<size_t>(t.id);
      if (!tok->id_text_[id].empty() && tok->id_text_[id] != t.content) {
        return InvalidArgument(name + ": added token " + t.content + " reuses the id of vocab entry " + tok->id_text_[id]);
      }
      tok->id_text_[id] = t.content;
      tok->special_[id] = t.special ? 1 : 0;
      tok->text_to_id_.insert(t.id);
      // A normalized token is matched, and decoded, by its normalised form.
      std::string pattern = t.content;
      if (t.normalized && !tok->normalizer_.empty()) {
        bool head_deleted = false;
        tok->normalizer_.normalize(t.content, &pattern, &head_deleted);
        if (pattern != t.content) tok->decoder_text_[t.id] = pattern;
      }
      if (byte_level) {
        // tokenizers' ByteLevel decoder: a token whose characters all map
        // to bytes decodes to those bytes, any other to its UTF-8 text.
        tok->id_bytes_[id] = vocab_text_to_bytes(pattern).value_or(pattern);
      }
      (t.normalized ? normed : raw).push_back(AddedVocab::Token{pattern, t.id, t.special});
      contents.push_back(AddedVocab::Token{t.content, t.id, t.special});
    }
    tok->added_raw_ = AddedVocab(raw);
    tok->added_normalized_ = AddedVocab(normed);
    tok->added_contents_ = AddedVocab(contents);

    // Special tokens around a text: transformers 5 rebuilds the post-processor
    // from tokenizer_config.json's add_bos_token / add_eos_token when either
    // key is there (TokenizersBackend.update_post_processor); otherwise the
    // tokenizer.json post_processor stands.
    if (config != nullptr && config->has_add_special_keys) {
      const auto add = [&](bool on, const std::optional<std::string>& token, const char* what,
                           std::vector<int32_t>* out) -> Status {
        if (!on || !token) return Status::Ok();  // transformers turns the flag off without the token
        const std::optional<int32_t> id = tok->text_to_id_.find(*token);
        if (!id) return InvalidArgument(name + ": tokenizer_config.json " + what + " " + *token + " is not in the vocabulary");
        out->push_back(*id);
        return Status::Ok();
      };
      KR_RETURN_IF_ERROR(add(config->add_bos_token.value_or(false), config->bos_token, "bos_token", &tok->special_prefix_));
      KR_RETURN_IF_ERROR(add(config->add_eos_token.value_or(false), config->eos_token, "eos_token", &tok->special_suffix_));
    } else {
      KR_RETURN_IF_ERROR(in_file(parse_post_processor(j.value("post_processor", nlohmann::json()), "post_processor",
                                                      &tok->special_prefix_, &tok->special_suffix_)));
    }
    for (const auto* list : {&tok->special_prefix_, &tok->special_suffix_}) {
      for (int32_t id : *list) {
        if (id < 0 || static_cast<size_t>(id) >= n) {
          return InvalidArgument(name + ": post_processor names token id " + std::to_string(id) + " outside the vocabulary");
        }
      }
    }
    return tok;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(name + ": " + e.what());
  }
}


std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = special_prefix_;
  encode_impl(text, parse_special, {}, &ids);
  if (add_special_tokens) ids.insert(ids.end(), special_suffix_.begin(), special_suffix_.end());
  return ids;
}

std::vector<int32_t> Tokenizer::encode_with_plain_spans(std::string_view text, std::span<const TextSpan> plain) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  encode_impl(text, /*parse_special=*/true, plain, &ids);
  return ids;
}

void Tokenizer::encode_impl(std::string_view text, bool parse_special, std::span<const TextSpan> plain,
                            std::vector<int32_t>* ids) const {
  // Whether [b, e) touches a plain span (then normalized specials stay plain there).
  const auto touches_plain = [&](size_t b, size_t e) {
    for (const TextSpan& s : plain) {
      if (s.begin < e && b < s.end) return true;
    }
    return false;
  };
  size_t start = 0;  // start of the text not yet encoded
  while (std::optional<AddedVocab::Match> m = added_raw_.find(text, start, parse_special, plain)) {
    encode_segment(text.substr(start, m->begin - start), start == 0,
                   parse_special && (plain.empty() || !touches_plain(start, m->begin)), ids);
    ids->push_back(m->id);
    start = m->end;
  }
  encode_segment(text.substr(start), start == 0, parse_special && (plain.empty() || !touches_plain(start, text.size())),
                 ids);
}

void Tokenizer::encode_segment(std::string_view text, bool at_origin, bool parse_special,
                               std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  std::string normalized;
  if (!normalizer_.empty()) {
    bool head_deleted = false;
    normalizer_.normalize(text, &normalized, &head_deleted);
    text = normalized;
    at_origin = at_origin && !head_deleted;
  }
  size_t start = 0;
  while (std::optional<AddedVocab::Match> m = added_normalized_.find(text, start, parse_special)) {
    encode_pieces(text.substr(start, m->begin - start), at_origin && start == 0, ids);
    ids->push_back(m->id);
    start = m->end;
  }
  encode_pieces(text.substr(start), at_origin && start == 0, ids);
}

void Tokenizer::encode_pieces(std::string_view text, bool at_origin, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  if (pre_tokenizer_.empty()) {
    model_.encode_word(text, ids);
    return;
  }
  thread_local std::vector<Piece> pieces;
  thread_local std::vector<PieceSpan> scratch;
  std::deque<std::string> storage;
  pieces.clear();
  pre_tokenizer_.split(text, at_origin, &pieces, &scratch, &storage);
  for (const Piece& p : pieces) model_.encode_word(p.text, ids);
  release_if_large(pieces);
  release_if_large(scratch);
}

std::optional<TextSpan> Tokenizer::find_special_text(std::string_view text, size_t pos) const {
  while (std::optional<AddedVocab::Match> m = added_contents_.find(text, pos, /*parse_special=*/true)) {
    if (is_special(m->id)) return TextSpan{m->begin, m->end};
    pos = m->end;
  }
  return std::nullopt;
}

std::string_view Tokenizer::byte_token_view(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_bytes_.size()) return {};
  return id_bytes_[static_cast<size_t>(id)];
}

std::optional<std::string_view> Tokenizer::decoder_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_text_.size() || id_text_[static_cast<size_t>(id)].empty()) {
    return std::nullopt;
  }
  if (!decoder_text_.empty()) {
    if (auto it = decoder_text_.find(id); it != decoder_text_.end()) return std::string_view(it->second);
  }
  return std::string_view(id_text_[static_cast<size_t>(id)]);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  if (decoder_.byte_level()) {
    for (int32_t id : ids) {
      if (skip_special_tokens && is_special(id)) continue;
      out += byte_token_view(id);
    }
    return unicode::is_valid_utf8(out) ? out : unicode::utf8_lossy(out);
  }
  DecodeStream stream(&decoder_);
  for (int32_t id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    if (std::optional<std::string_view> t = decoder_token(id)) stream.push(*t, &out);
  }
  stream.finish(&out);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (decoder_.byte_level()) return std::string(byte_token_view(id));
  const std::optional<std::string_view> t = decoder_token(id);
  return t ? decoder_.token_bytes(*t) : std::string();
}

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

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(id_text_.size()); }

}  // namespace kr
