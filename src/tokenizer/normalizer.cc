#include "tokenizer/normalizer.h"

#include <nlohmann/json.hpp>

#include "tokenizer/unicode.h"

namespace kr {
namespace {

using json = nlohmann::json;

size_t utf8_chars(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

// A string member of `j`, or an error naming `key`.
StatusOr<std::string> string_member(const json& j, const char* member, const std::string& key) {
  if (!j.contains(member) || !j[member].is_string()) return InvalidArgument(key + "." + member + " must be a string");
  return j[member].get<std::string>();
}

// Replace and Split name their pattern {"String": "..."} or {"Regex": "..."}.
// Only literal patterns are supported.
StatusOr<std::string> literal_pattern(const json& j, const std::string& key) {
  if (!j.contains("pattern") || !j["pattern"].is_object()) return InvalidArgument(key + ".pattern is missing");
  const json& p = j["pattern"];
  if (p.contains("String") && p["String"].is_string()) return p["String"].get<std::string>();
  if (p.contains("Regex")) {
    return Unimplemented(key + ".pattern: a Regex pattern is not supported here (only String): " + p.dump());
  }
  return InvalidArgument(key + ".pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace

StatusOr<Normalizer> Normalizer::from_json(std::string_view normalizer_json) {
  const json root = json::parse(normalizer_json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return InvalidArgument("normalizer is not valid JSON");
  Normalizer n;
  // Flatten nested Sequences, keeping each step's key for messages.
  std::vector<std::pair<const json*, std::string>> flat;
  const auto visit = [&](auto&& self, const json& j, const std::string& key) -> Status {
    if (j.is_null()) return Status::Ok();
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
      return InvalidArgument(key + " must be an object with a string \"type\"");
    }
    if (j["type"] == "Sequence") {
      if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
        return InvalidArgument(key + ".normalizers must be a list");
      }
      size_t i = 0;
      for (const json& c : j["normalizers"]) {
        KR_RETURN_IF_ERROR(self(self, c, key + ".normalizers[" + std::to_string(i++) + "]"));
      }
      return Status::Ok();
    }
    flat.emplace_back(&j, key);
    return Status::Ok();
  };
  KR_RETURN_IF_ERROR(visit(visit, root, "normalizer"));
  for (const auto& [jp, key] : flat) {
    const json& j = *jp;
    const std::string type = j["type"].get<std::string>();
    if (type == "NFC") {
      n.steps_.push_back(Step{Step::Kind::kNfc, "", ""});
    } else if (type == "Prepend") {
      KR_ASSIGN_OR_RETURN(std::string p, string_member(j, "prepend", key));
      n.steps_.push_back(Step{Step::Kind::kPrepend, std::move(p), ""});
    } else if (type == "Replace") {
      KR_ASSIGN_OR_RETURN(std::string pat, literal_pattern(j, key));
      KR_ASSIGN_OR_RETURN(std::string content, string_member(j, "content", key));
      if (pat.empty()) return Unimplemented(key + ": a Replace with an empty pattern is not supported");
      n.steps_.push_back(Step{Step::Kind::kReplace, std::move(pat), std::move(content)});
    } else {
      return Unimplemented(key + ".type: normalizer " + type +
                           " is not supported (supported: NFC, Prepend, Replace with a String pattern, Sequence)");
    }
  }
  return n;
}

bool Normalizer::may_insert_at_head() const {
  for (const Step& s : steps_) {
    if (s.kind == Step::Kind::kPrepend) return true;
    if (s.kind == Step::Kind::kReplace && utf8_chars(s.content) > 1) return true;
  }
  return false;
}

void Normalizer::normalize(std::string_view in, std::string* out, bool* head_deleted) const {
  *head_deleted = false;
  out->assign(in);
  std::string next;
  for (const Step& s : steps_) {
    if (out->empty()) return;
    switch (s.kind) {
      case Step::Kind::kNfc:
        *out = unicode::nfc(*out);
        break;
      case Step::Kind::kPrepend:
        out->insert(0, s.text);
        break;
      case Step::Kind::kReplace: {
        size_t at = out->find(s.text);
        if (at == std::string::npos) break;
        if (at == 0 && s.content.empty()) *head_deleted = true;
        next.clear();
        next.reserve(out->size() + out->size() / 4);
        size_t from = 0;
        for (; at != std::string::npos; at = out->find(s.text, from)) {
          next.append(*out, from, at - from);
          next.append(s.content);
          from = at + s.text.size();
        }
        next.append(*out, from, std::string::npos);
        out->swap(next);
        break;
      }
    }
  }
}

}  // namespace kr
