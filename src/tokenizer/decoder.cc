#include "tokenizer/decoder.h"

#include <nlohmann/json.hpp>

#include "tokenizer/unicode.h"

namespace kr {
namespace {

using json = nlohmann::json;

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void replace_all(std::string_view text, std::string_view from, std::string_view to, std::string* out) {
  size_t pos = 0;
  for (size_t at = text.find(from); at != std::string_view::npos; at = text.find(from, pos)) {
    out->append(text.substr(pos, at - pos));
    out->append(to);
    pos = at + from.size();
  }
  out->append(text.substr(pos));
}

// Metaspace's decode of one token: the replacement becomes ' ', or is dropped
// in the first token (unless the scheme is never).
void metaspace(std::string_view text, std::string_view rep, bool drop, std::string* out) {
  if (drop) replace_all(text, rep, "", out);
  else replace_all(text, rep, " ", out);
}

// Strip's cut of one token: up to `start` leading and `stop` trailing
// `content` characters.
std::string_view strip(std::string_view t, std::string_view content, size_t start, size_t stop) {
  for (size_t k = 0; k < start && t.substr(0, content.size()) == content; ++k) t.remove_prefix(content.size());
  for (size_t k = 0; k < stop && t.size() >= content.size() && t.substr(t.size() - content.size()) == content; ++k) {
    t.remove_suffix(content.size());
  }
  return t;
}

StatusOr<std::string> string_member(const json& j, const char* member, const std::string& key) {
  if (!j.contains(member) || !j[member].is_string()) return InvalidArgument(key + "." + member + " must be a string");
  return j[member].get<std::string>();
}

StatusOr<size_t> count_member(const json& j, const char* member, const std::string& key) {
  if (!j.contains(member)) return size_t{0};
  if (!j[member].is_number_unsigned()) return InvalidArgument(key + "." + member + " must be a count");
  return j[member].get<size_t>();
}

bool one_char(std::string_view s) {
  size_t len = 0;
  return !s.empty() && (unicode::decode_utf8(s, 0, &len), len == s.size());
}

}  // namespace

int fallback_byte(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
  // Rust's u8::from_str_radix(.., 16) also takes a leading '+'.
  if (token[3] == '+') return hex_digit(token[4]);
  const int hi = hex_digit(token[3]), lo = hex_digit(token[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

StatusOr<Decoder> Decoder::from_json(std::string_view decoder_json) {
  const json root = json::parse(decoder_json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return InvalidArgument("decoder is not valid JSON");
  Decoder d;
  if (root.is_null()) return d;
  d.none_ = false;
  std::vector<std::pair<const json*, std::string>> list;
  if (root.is_object() && root.value("type", std::string()) == "Sequence") {
    if (!root.contains("decoders") || !root["decoders"].is_array()) {
      return InvalidArgument("decoder.decoders must be a list");
    }
    size_t i = 0;
    for (const json& c : root["decoders"]) list.emplace_back(&c, "decoder.decoders[" + std::to_string(i++) + "]");
  } else {
    list.emplace_back(&root, "decoder");
  }
  bool fused = false;
  for (const auto& [jp, key] : list) {
    const json& j = *jp;
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
      return InvalidArgument(key + " must be an object with a string \"type\"");
    }
    const std::string type = j["type"].get<std::string>();
    Step s{};
    s.fused = fused;
    if (type == "ByteLevel") {
      if (list.size() != 1) return Unimplemented(key + ": a ByteLevel decoder combined with other decoders is not supported");
      d.byte_level_ = true;
      return d;
    } else if (type == "Replace") {
      s.kind = Step::Kind::kReplace;
      if (!j.contains("pattern") || !j["pattern"].is_object()) return InvalidArgument(key + ".pattern is missing");
      const json& p = j["pattern"];
      if (!p.contains("String") || !p["String"].is_string()) {
        return Unimplemented(key + ".pattern: only a String pattern is supported, not " + p.dump());
      }
      s.from = p["String"].get<std::string>();
      if (s.from.empty()) return Unimplemented(key + ".pattern: an empty String pattern is not supported");
      KR_ASSIGN_OR_RETURN(s.to, string_member(j, "content", key));
    } else if (type == "ByteFallback") {
      if (fused) return Unimplemented(key + ": ByteFallback after Fuse is not supported");
      s.kind = Step::Kind::kByteFallback;
    } else if (type == "Fuse") {
      s.kind = Step::Kind::kFuse;
      fused = true;
    } else if (type == "Strip") {
      s.kind = Step::Kind::kStrip;
      KR_ASSIGN_OR_RETURN(s.content, string_member(j, "content", key));
      if (!one_char(s.content)) return InvalidArgument(key + ".content must be one character");
      KR_ASSIGN_OR_RETURN(s.start, count_member(j, "start", key));
      KR_ASSIGN_OR_RETURN(s.stop, count_member(j, "stop", key));
      if (fused && s.stop > 0) return Unimplemented(key + ": Strip with stop > 0 after Fuse is not supported");
    } else if (type == "Metaspace") {
      s.kind = Step::Kind::kMetaspace;
      KR_ASSIGN_OR_RETURN(s.from, string_member(j, "replacement", key));
      if (!one_char(s.from)) return InvalidArgument(key + ".replacement must be one character");
      std::string scheme = "always";
      if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) scheme = j["prepend_scheme"].get<std::string>();
      if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean() && !j["add_prefix_space"].get<bool>()) {
        scheme = "never";
      }
      if (scheme != "always" && scheme != "first" && scheme != "never") {
        return InvalidArgument(key + ".prepend_scheme must be always, first or never");
      }
      s.strip_first = scheme != "never";
    } else {
      return Unimplemented(key + ".type: decoder " + type +
                           " is not supported (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, "
                           "Sequence)");
    }
    d.steps_.push_back(std::move(s));
  }
  return d;
}

std::string Decoder::token_bytes(std::string_view token) const {
  std::string t(token), next;
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Step::Kind::kByteFallback: {
        const int b = fallback_byte(t);
        if (b >= 0) return std::string(1, static_cast<char>(b));
        break;
      }
      case Step::Kind::kReplace:
        next.clear();
        replace_all(t, s.from, s.to, &next);
        t.swap(next);
        break;
      case Step::Kind::kMetaspace:
        next.clear();
        metaspace(t, s.from, /*drop=*/false, &next);
        t.swap(next);
        break;
      case Step::Kind::kStrip:
        if (!s.fused) t = std::string(strip(t, s.content, s.start, s.stop));
        break;
      case Step::Kind::kFuse:
        break;
    }
  }
  return t;
}

DecodeStream::DecodeStream(const Decoder* decoder) : decoder_(decoder), state_(decoder->steps().size()) {
  for (size_t i = 0; i < state_.size(); ++i) state_[i].start_left = decoder->steps()[i].start;
}

void DecodeStream::push(std::string_view token, std::string* out) {
  if (decoder_->none()) {
    if (!first_token_) out->push_back(' ');
    first_token_ = false;
    out->append(token);
    return;
  }
  feed(0, token, out);
}

void DecodeStream::finish(std::string* out) {
  if (!decoder_->none()) flush(0, out);
}

void DecodeStream::feed(size_t step, std::string_view text, std::string* out) {
  const std::vector<Decoder::Step>& steps = decoder_->steps();
  if (step == steps.size()) {
    out->append(text);
    return;
  }
  const Decoder::Step& s = steps[step];
  StepState& st = state_[step];
  switch (s.kind) {
    case Decoder::Step::Kind::kReplace: {
      std::string r;
      if (!s.fused) {
        replace_all(text, s.from, s.to, &r);
        feed(step + 1, r, out);
        return;
      }
      // One string from here on: a match may span fragments. Replace the
      // complete matches; keep back the shortest tail that could still start one.
      st.held.append(text);
      const std::string_view h = st.held;
      size_t pos = 0, done = 0;
      for (size_t at = h.find(s.from); at != std::string_view::npos; at = h.find(s.from, pos)) {
        r.append(h.substr(pos, at - pos));
        r.append(s.to);
        pos = at + s.from.size();
        done = pos;
      }
      size_t keep_from = h.size();
      for (size_t p = done; p < h.size(); ++p) {
        const std::string_view tail = h.substr(p);
        if (tail.size() < s.from.size() && std::string_view(s.from).substr(0, tail.size()) == tail) {
          keep_from = p;
          break;
        }
      }
      r.append(h.substr(done, keep_from - done));
      st.held.erase(0, keep_from);
      feed(step + 1, r, out);
      return;
    }
    case Decoder::Step::Kind::kByteFallback: {
      const int b = fallback_byte(text);
      if (b >= 0) {
        st.bytes.push_back(static_cast<uint8_t>(b));
        return;
      }
      emit_run(step, out);
      feed(step + 1, text, out);
      return;
    }
    case Decoder::Step::Kind::kFuse:
      feed(step + 1, text, out);
      return;
    case Decoder::Step::Kind::kStrip: {
      if (!s.fused) {
        feed(step + 1, strip(text, s.content, s.start, s.stop), out);
        return;
      }
      // The leading characters of the whole text.
      while (st.start_left > 0 && text.substr(0, s.content.size()) == s.content) {
        text.remove_prefix(s.content.size());
        --st.start_left;
      }
      if (!text.empty()) st.start_left = 0;
      feed(step + 1, text, out);
      return;
    }
    case Decoder::Step::Kind::kMetaspace: {
      const size_t index = s.fused ? 0 : st.index++;
      std::string r;
      metaspace(text, s.from, index == 0 && s.strip_first, &r);
      feed(step + 1, r, out);
      return;
    }
  }
}

void DecodeStream::emit_run(size_t step, std::string* out) {
  StepState& st = state_[step];
  if (st.bytes.empty()) return;
  const std::string run(st.bytes.begin(), st.bytes.end());
  st.bytes.clear();
  if (unicode::is_valid_utf8(run)) {
    feed(step + 1, run, out);
  } else {
    for (size_t k = 0; k < run.size(); ++k) feed(step + 1, kReplacementChar, out);
  }
}

void DecodeStream::flush(size_t step, std::string* out) {
  const std::vector<Decoder::Step>& steps = decoder_->steps();
  if (step == steps.size()) return;
  const Decoder::Step& s = steps[step];
  StepState& st = state_[step];
  if (s.kind == Decoder::Step::Kind::kByteFallback) emit_run(step, out);
  if (s.kind == Decoder::Step::Kind::kReplace && s.fused && !st.held.empty()) {
    const std::string rest = std::move(st.held);
    st.held.clear();
    feed(step + 1, rest, out);
  }
  flush(step + 1, out);
}

}  // namespace kr
