#include "tokenizer/jinja/parser.h"

#include <charconv>
#include <cstdlib>
#include <initializer_list>

#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/filters.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/tests.h"

namespace kr::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Template parse() {
    Template t;
    std::string end;
    t.body = parse_body({}, &end);
    return t;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p(p) {
      if (++p->depth_ > kMaxParseDepth) throw TemplateError("template nested too deeply", p->cur().line);
    }
    ~DepthGuard() { --p->depth_; }
    Parser* p;
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::kOperator && cur().value == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::kName && cur().value == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  [[noreturn]] void fail(const std::string& what) const { throw TemplateError(what, cur().line); }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case TokenType::kEnd: return "end of template";
      case TokenType::kBlockEnd: return "'%}'";
      case TokenType::kVarEnd: return "'}}'";
      case TokenType::kText: return "text";
      case TokenType::kString: return "string literal";
      default: return "'" + t.value + "'";
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName) fail("expected a name, got " + describe(cur()));
    std::string n = cur().value;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::kBlockEnd) fail("expected '%}', got " + describe(cur()));
    advance();
  }

  // Parses statements until a block tag whose name is in `ends`; that name is
  // consumed and stored in *end (the rest of its tag is left to the caller).
  Body parse_body(std::initializer_list<const char*> ends, std::string* end) {
    DepthGuard guard(this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::kEnd) {
        if (ends.size() == 0) return body;
        fail(std::string("missing '{% ") + *(ends.end() - 1) + " %}'");
      }
      if (t.type == TokenType::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->line = t.line;
        s->text = t.value;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TokenType::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = t.line;
        advance();
        s->expr = parse_tuple();
        if (cur().type != TokenType::kVarEnd) fail("expected '}}', got " + describe(cur()));
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::kBlockBegin) {
        const Token& name = peek();
        if (name.type != TokenType::kName) {
          advance();
          fail("expected a statement name, got " + describe(name));
        }
        for (const char* e : ends) {
          if (name.value == e) {
            advance();
            advance();
            *end = e;
            return body;
          }
        }
        advance();
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  StmtPtr parse_statement() {
    auto s = std::make_unique<Stmt>();
    s->line = cur().line;
    std::string kw = expect_name();
    std::string end;
    if (kw == "if") {
      s->kind = Stmt::Kind::kIf;
      s->conditions.push_back(parse_tuple());
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}, &end));
        if (end == "elif") {
          s->conditions.push_back(parse_tuple());
          expect_block_end();
          continue;
        }
        if (end == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"}, &end);
        }
        expect_block_end();
        break;
      }
    } else if (kw == "for") {
      s->kind = Stmt::Kind::kFor;
      s->targets = parse_targets();
      if (!skip_name("in")) fail("expected 'in' in for statement, got " + describe(cur()));
      s->expr = parse_tuple(/*allow_condition=*/false);
      if (skip_name("if")) s->filter = parse_expression();
      if (is_name("recursive")) fail("unsupported 'recursive' loop");
      expect_block_end();
      ++loop_depth_;
      s->body = parse_body({"else", "endfor"}, &end);
      --loop_depth_;
      if (end == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"}, &end);
      }
      expect_block_end();
    } else if (kw == "set") {
      s->kind = Stmt::Kind::kSet;
      if (cur().type == TokenType::kName && peek().type == TokenType::kOperator && peek().value == ".") {
        auto ns = std::make_unique<Expr>();
        ns->kind = Expr::Kind::kName;
        ns->line = cur().line;
        ns->name = expect_name();
        advance();  // '.'
        s->filter = std::move(ns);
        s->attr = expect_name();
        expect_op("=");
        s->expr = parse_tuple();
        expect_block_end();
      } else {
        s->targets = parse_targets();
        if (skip_op("=")) {
          s->expr = parse_tuple();
          expect_block_end();
        } else {
          if (s->targets.size() != 1) fail("block set takes one name");
          expect_block_end();
          s->body = parse_body({"endset"}, &end);
          expect_block_end();
        }
      }
    } else if (kw == "macro") {
      s->kind = Stmt::Kind::kMacro;
      s->text = expect_name();
      parse_params(s.get());
      expect_block_end();
      int saved_loop_depth = loop_depth_;
      loop_depth_ = 0;  // break/continue cannot leave a macro
      s->body = parse_body({"endmacro"}, &end);
      loop_depth_ = saved_loop_depth;
      if (cur().type == TokenType::kName) advance();  // {% endmacro name %}
      expect_block_end();
    } else if (kw == "call") {
      s->kind = Stmt::Kind::kCallBlock;
      if (is_op("(")) parse_params(s.get());
      s->expr = parse_expression();
      if (s->expr->kind != Expr::Kind::kCall) fail("call block needs a macro call");
      expect_block_end();
      s->body = parse_body({"endcall"}, &end);
      expect_block_end();
    } else if (kw == "filter") {
      s->kind = Stmt::Kind::kFilterBlock;
      s->expr = parse_filter(nullptr);
      while (skip_op("|")) s->expr = parse_filter(std::move(s->expr));
      expect_block_end();
      s->body = parse_body({"endfilter"}, &end);
      expect_block_end();
    } else if (kw == "break" || kw == "continue") {
      s->kind = kw == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      if (loop_depth_ == 0) throw TemplateError("'" + kw + "' outside a loop", s->line);
      expect_block_end();
    } else if (kw == "generation") {
      s->kind = Stmt::Kind::kPlain;
      expect_block_end();
      s->body = parse_body({"endgeneration"}, &end);
      expect_block_end();
    } else if (kw.rfind("end", 0) == 0 || kw == "elif" || kw == "else") {
      throw TemplateError("unexpected '" + kw + "' without an open block", s->line);
    } else {
      throw TemplateError("unsupported statement '" + kw + "'", s->line);
    }
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    do {
      names.push_back(expect_name());
    } while (skip_op(","));
    if (paren) expect_op(")");
    return names;
  }

  void parse_params(Stmt* s) {
    expect_op("(");
    while (!is_op(")")) {
      s->targets.push_back(expect_name());
      s->defaults.push_back(skip_op("=") ? parse_expression() : nullptr);
      if (!skip_op(",")) break;
    }
    expect_op(")");
  }

  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  ExprPtr binary(std::string op, ExprPtr a, ExprPtr b, int line) {
    auto e = make(Expr::Kind::kBinary, line);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  // expr [, expr ...] -> a tuple when there is a comma.
  ExprPtr parse_tuple(bool allow_condition = true) {
    int line = cur().line;
    ExprPtr first = allow_condition ? parse_expression() : parse_or();
    if (!is_op(",")) return first;
    auto t = make(Expr::Kind::kTuple, line);
    t->args.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().type == TokenType::kBlockEnd || cur().type == TokenType::kVarEnd || is_op(")")) break;
      t->args.push_back(allow_condition ? parse_expression() : parse_or());
    }
    return t;
  }

  ExprPtr parse_expression() {
    DepthGuard guard(this);
    int line = cur().line;
    ExprPtr e = parse_or();
    while (skip_name("if")) {
      auto c = make(Expr::Kind::kCondition, line);
      ExprPtr cond = parse_or();
      ExprPtr otherwise = skip_name("else") ? parse_expression() : nullptr;
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(otherwise));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      int line = cur().line;
      advance();
      e = binary("or", std::move(e), parse_and(), line);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      int line = cur().line;
      advance();
      e = binary("and", std::move(e), parse_not(), line);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(this);
      auto e = make(Expr::Kind::kUnary, cur().line);
      advance();
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr left = parse_math1();
    ExprPtr result;
    const Expr* last_right = nullptr;
    while (true) {
      int line = cur().line;
      std::string op;
      if (cur().type == TokenType::kOperator &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == "<=" ||
           cur().value == ">" || cur().value == ">=")) {
        op = cur().value;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == TokenType::kName && peek().value == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      ExprPtr right = parse_math1();
      // Chained a < b < c means a < b and b < c; b is evaluated twice (no side effects).
      const Expr* right_ptr = right.get();
      if (!result) {
        result = binary(op, std::move(left), std::move(right), line);
      } else {
        result = binary("and", std::move(result), binary(op, clone(*last_right), std::move(right), line), line);
      }
      last_right = right_ptr;
    }
    return result ? std::move(result) : std::move(left);
  }

  ExprPtr clone(const Expr& e) {
    auto c = make(e.kind, e.line);
    c->literal = e.literal;
    c->name = e.name;
    c->negated = e.negated;
    for (const auto& a : e.args) c->args.push_back(a ? clone(*a) : nullptr);
    for (const auto& [k, v] : e.kwargs) c->kwargs.emplace_back(k, clone(*v));
    return c;
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().value;
      int line = cur().line;
      advance();
      e = binary(op, std::move(e), parse_concat(), line);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      int line = cur().line;
      advance();
      e = binary("~", std::move(e), parse_math2(), line);
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().value;
      int line = cur().line;
      advance();
      e = binary(op, std::move(e), parse_pow(), line);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      int line = cur().line;
      advance();
      e = binary("**", std::move(e), parse_unary(true), line);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = make(Expr::Kind::kUnary, cur().line);
      e->name = cur().value;
      advance();
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    int line = t.line;
    if (t.type == TokenType::kName) {
      std::string n = t.value;
      advance();
      if (n == "true" || n == "True") return literal(Value(true), line);
      if (n == "false" || n == "False") return literal(Value(false), line);
      if (n == "none" || n == "None") return literal(Value::none(), line);
      auto e = make(Expr::Kind::kName, line);
      e->name = n;
      return e;
    }
    if (t.type == TokenType::kString) {
      std::string s;
      while (cur().type == TokenType::kString) {  // adjacent literals concatenate
        s += cur().value;
        advance();
      }
      return literal(Value(std::move(s)), line);
    }
    if (t.type == TokenType::kInt) {
      int64_t v = 0;
      auto r = std::from_chars(t.value.data(), t.value.data() + t.value.size(), v);
      if (r.ec != std::errc()) fail("integer literal out of range");
      advance();
      return literal(Value(v), line);
    }
    if (t.type == TokenType::kFloat) {
      double v = std::strtod(t.value.c_str(), nullptr);
      advance();
      return literal(Value(v), line);
    }
    if (skip_op("(")) {
      if (skip_op(")")) return make(Expr::Kind::kTuple, line);
      ExprPtr e = parse_expression();
      if (is_op(",")) {
        auto tup = make(Expr::Kind::kTuple, line);
        tup->args.push_back(std::move(e));
        while (skip_op(",")) {
          if (is_op(")")) break;
          tup->args.push_back(parse_expression());
        }
        e = std::move(tup);
      }
      expect_op(")");
      return e;
    }
    if (skip_op("[")) {
      auto e = make(Expr::Kind::kList, line);
      while (!is_op("]")) {
        e->args.push_back(parse_expression());
        if (!skip_op(",")) break;
      }
      expect_op("]");
      return e;
    }
    if (skip_op("{")) {
      auto e = make(Expr::Kind::kDict, line);
      while (!is_op("}")) {
        e->args.push_back(parse_expression());
        expect_op(":");
        e->args.push_back(parse_expression());
        if (!skip_op(",")) break;
      }
      expect_op("}");
      return e;
    }
    fail("unexpected " + describe(t));
  }

  ExprPtr literal(Value v, int line) {
    auto e = make(Expr::Kind::kLiteral, line);
    e->literal = std::move(v);
    return e;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      int line = cur().line;
      if (skip_op(".")) {
        if (cur().type == TokenType::kInt) {  // foo.0 is foo[0]
          auto item = make(Expr::Kind::kItem, line);
          item->args.push_back(std::move(e));
          item->args.push_back(parse_primary());
          e = std::move(item);
        } else {
          auto attr = make(Expr::Kind::kAttr, line);
          attr->name = expect_name();
          attr->args.push_back(std::move(e));
          e = std::move(attr);
        }
      } else if (skip_op("[")) {
        e = parse_subscript(std::move(e), line);
      } else if (is_op("(")) {
        auto call = make(Expr::Kind::kCall, line);
        call->args.push_back(std::move(e));
        parse_call_args(call.get());
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target, int line) {
    ExprPtr parts[3];
    int n = 0;
    bool is_slice = false;
    while (true) {
      if (!is_op(":") && !is_op("]")) parts[n] = parse_expression();
      if (is_op(":")) {
        is_slice = true;
        advance();
        if (++n > 2) fail("too many ':' in slice");
        continue;
      }
      break;
    }
    expect_op("]");
    if (!is_slice) {
      if (!parts[0]) fail("empty subscript");
      auto item = make(Expr::Kind::kItem, line);
      item->args.push_back(std::move(target));
      item->args.push_back(std::move(parts[0]));
      return item;
    }
    auto slice = make(Expr::Kind::kSlice, line);
    slice->args.push_back(std::move(target));
    for (auto& p : parts) slice->args.push_back(std::move(p));
    return slice;
  }

  void parse_call_args(Expr* call) {
    expect_op("(");
    while (!is_op(")")) {
      if (cur().type == TokenType::kName && peek().type == TokenType::kOperator && peek().value == "=") {
        std::string key = cur().value;
        advance();
        advance();
        call->kwargs.emplace_back(key, parse_expression());
      } else {
        if (!call->kwargs.empty()) fail("positional argument after keyword argument");
        call->args.push_back(parse_expression());
      }
      if (!skip_op(",")) break;
    }
    expect_op(")");
  }

  // operand | name(args): operand may be null (filter blocks fill it in at render).
  ExprPtr parse_filter(ExprPtr operand) {
    int line = cur().line;
    auto f = make(Expr::Kind::kFilter, line);
    f->name = expect_name();
    if (!is_known_filter(f->name)) throw TemplateError("unsupported filter '" + f->name + "'", line);
    f->args.push_back(std::move(operand));
    if (is_op("(")) parse_call_args(f.get());
    return f;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (skip_op("|")) {
        e = parse_filter(std::move(e));
      } else if (is_name("is")) {
        int line = cur().line;
        advance();
        auto t = make(Expr::Kind::kTest, line);
        t->negated = skip_name("not");
        t->name = expect_name();
        if (!is_known_test(t->name)) throw TemplateError("unsupported test '" + t->name + "'", line);
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_call_args(t.get());
        } else if ((cur().type == TokenType::kName || cur().type == TokenType::kString ||
                    cur().type == TokenType::kInt || cur().type == TokenType::kFloat || is_op("[") ||
                    is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if") &&
                   !is_name("in") && !is_name("not") && !is_name("is")) {
          t->args.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Template parse_template(std::string_view source) { return Parser(tokenize(source)).parse(); }

}  // namespace kr::jinja
