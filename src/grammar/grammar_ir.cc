#include "grammar/grammar_ir.h"

#include <cstdio>

namespace kr::grammar {

Grammar::Grammar() {
  nothing_ = add({ExprKind::kNothing});
  empty_ = add({ExprKind::kEmpty});
}

ExprId Grammar::add(const Expr& e) {
  exprs_.push_back(e);
  return static_cast<ExprId>(exprs_.size() - 1);
}

ExprId Grammar::bytes(const ByteSet& set) {
  if (set.empty()) return nothing_;
  byte_sets_.push_back(set);
  return add({ExprKind::kBytes, static_cast<uint32_t>(byte_sets_.size() - 1)});
}

ExprId Grammar::literal(std::string_view text) {
  std::vector<ExprId> items;
  items.reserve(text.size());
  for (char c : text) items.push_back(byte(static_cast<uint8_t>(c)));
  return seq(items);
}

ExprId Grammar::seq(const std::vector<ExprId>& items) {
  std::vector<ExprId> flat;
  for (ExprId id : items) {
    const Expr& e = exprs_[id];
    if (e.kind == ExprKind::kNothing) return nothing_;
    if (e.kind == ExprKind::kEmpty) continue;
    if (e.kind == ExprKind::kSeq) {
      for (uint32_t i = 0; i < e.b; ++i) flat.push_back(children_[e.a + i]);
    } else {
      flat.push_back(id);
    }
  }
  if (flat.empty()) return empty_;
  if (flat.size() == 1) return flat[0];
  uint32_t first = static_cast<uint32_t>(children_.size());
  children_.insert(children_.end(), flat.begin(), flat.end());
  return add({ExprKind::kSeq, first, static_cast<uint32_t>(flat.size())});
}

ExprId Grammar::alt(const std::vector<ExprId>& items) {
  std::vector<ExprId> flat;
  for (ExprId id : items) {
    const Expr& e = exprs_[id];
    if (e.kind == ExprKind::kNothing) continue;
    if (e.kind == ExprKind::kAlt) {
      for (uint32_t i = 0; i < e.b; ++i) flat.push_back(children_[e.a + i]);
    } else {
      flat.push_back(id);
    }
  }
  if (flat.empty()) return nothing_;
  if (flat.size() == 1) return flat[0];
  uint32_t first = static_cast<uint32_t>(children_.size());
  children_.insert(children_.end(), flat.begin(), flat.end());
  return add({ExprKind::kAlt, first, static_cast<uint32_t>(flat.size())});
}

ExprId Grammar::repeat(ExprId e, uint32_t min, uint32_t max) {
  if (max != kUnbounded && max < min) return nothing_;
  const Expr& x = exprs_[e];
  if (max == 0) return empty_;
  if (x.kind == ExprKind::kEmpty) return empty_;
  if (x.kind == ExprKind::kNothing) return min == 0 ? empty_ : nothing_;
  if (min == 1 && max == 1) return e;
  return add({ExprKind::kRepeat, e, 0, min, max});
}

ExprId Grammar::rule_ref(uint32_t rule) { return add({ExprKind::kRuleRef, rule}); }

ExprId Grammar::token(TokenTerminal t) {
  tokens_.push_back(std::move(t));
  return add({ExprKind::kToken, static_cast<uint32_t>(tokens_.size() - 1)});
}

ExprId Grammar::intersect(ExprId a, ExprId b) { return add({ExprKind::kAnd, a, b}); }

ExprId Grammar::ordered_list(const std::vector<ExprId>& items, const std::vector<bool>& required, ExprId separator,
                             ExprId extra) {
  uint32_t first = static_cast<uint32_t>(children_.size());
  children_.insert(children_.end(), items.begin(), items.end());
  children_.push_back(separator);
  children_.push_back(extra);
  uint32_t flags = static_cast<uint32_t>(list_flags_.size());
  for (size_t i = 0; i < items.size(); ++i) list_flags_.push_back(required[i] ? 1 : 0);
  if (items.empty() && exprs_[extra].kind == ExprKind::kNothing) return nothing_;
  return add({ExprKind::kList, first, static_cast<uint32_t>(items.size()), flags, 0});
}
ExprId Grammar::minus(ExprId a, ExprId b) { return add({ExprKind::kMinus, a, b}); }

uint32_t Grammar::add_rule(std::string name) {
  rules_.push_back({std::move(name), kNoExpr});
  return static_cast<uint32_t>(rules_.size() - 1);
}

int32_t Grammar::find_rule(std::string_view name) const {
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (rules_[i].name == name) return static_cast<int32_t>(i);
  }
  return -1;
}

Status Grammar::validate() const {
  if (rules_.empty() || root_ >= rules_.size()) return InvalidArgument("grammar has no root rule");
  for (const Rule& r : rules_) {
    if (r.body == kNoExpr) return InvalidArgument("rule '" + r.name + "' is used but not defined");
  }
  for (const Expr& e : exprs_) {
    if (e.kind == ExprKind::kRuleRef && e.a >= rules_.size()) {
      return Internal("rule reference out of range");
    }
  }
  return Status::Ok();
}

namespace {

std::string byte_set_string(const ByteSet& s) {
  if (s.count() == 1) {
    for (int b = 0; b < 256; ++b) {
      if (s.test(static_cast<uint8_t>(b))) {
        char buf[8];
        if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\') {
          std::string lit = "\"";
          lit.push_back(static_cast<char>(b));
          lit.push_back('"');
          return lit;
        }
        std::snprintf(buf, sizeof buf, "\"\\x%02X\"", b);
        return buf;
      }
    }
  }
  std::string out = "[";
  for (int b = 0; b < 256;) {
    if (!s.test(static_cast<uint8_t>(b))) {
      ++b;
      continue;
    }
    int e = b;
    while (e + 1 < 256 && s.test(static_cast<uint8_t>(e + 1))) ++e;
    char buf[24];
    if (e == b) {
      std::snprintf(buf, sizeof buf, "\\x%02X", b);
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02X-\\x%02X", b, e);
    }
    out += buf;
    b = e + 1;
  }
  return out + "]";
}

}  // namespace

std::string Grammar::to_string() const {
  std::string out;
  auto print = [&](auto&& self, ExprId id) -> void {
    const Expr& e = exprs_[id];
    switch (e.kind) {
      case ExprKind::kNothing: out += "!nothing"; break;
      case ExprKind::kEmpty: out += "\"\""; break;
      case ExprKind::kBytes: out += byte_set_string(byte_sets_[e.a]); break;
      case ExprKind::kSeq:
      case ExprKind::kAlt:
        out += "(";
        for (uint32_t i = 0; i < e.b; ++i) {
          if (i) out += e.kind == ExprKind::kSeq ? " " : " | ";
          self(self, children_[e.a + i]);
        }
        out += ")";
        break;
      case ExprKind::kRepeat:
        self(self, e.a);
        out += "{";
        out += std::to_string(e.min);
        out += ",";
        if (e.max != kUnbounded) out += std::to_string(e.max);
        out += "}";
        break;
      case ExprKind::kRuleRef: out += rules_[e.a].name; break;
      case ExprKind::kToken:
        if (tokens_[e.a].id >= 0) {
          out += "<[";
          out += std::to_string(tokens_[e.a].id);
          out += "]>";
        } else {
          out += tokens_[e.a].text;
        }
        break;
      case ExprKind::kList:
        out += "list(";
        for (uint32_t i = 0; i < e.b + 2; ++i) {
          if (i) out += ", ";
          if (i < e.b && !list_required(e, i)) out += "?";
          self(self, children_[e.a + i]);
        }
        out += ")";
        break;
      case ExprKind::kAnd:
      case ExprKind::kMinus:
        out += "(";
        self(self, e.a);
        out += e.kind == ExprKind::kAnd ? " & " : " - ";
        self(self, e.b);
        out += ")";
        break;
    }
  };
  for (const Rule& r : rules_) {
    out += r.name;
    out += " ::= ";
    if (r.body == kNoExpr) {
      out += "<undefined>";
    } else {
      print(print, r.body);
    }
    out += "\n";
  }
  return out;
}

}  // namespace kr::grammar
