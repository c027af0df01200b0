// Syntax tree of a parsed template. Built once by the parser and never changed
// afterwards, so any number of threads may render from one tree at once.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace kr::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // literal
    kName,      // name
    kList,      // args = items
    kTuple,     // args = items
    kDict,      // args = key0, value0, key1, value1, ...
    kAttr,      // args[0].name
    kItem,      // args[0][args[1]]
    kSlice,     // args[0][args[1]:args[2]:args[3]] (null = omitted)
    kCall,      // args[0](args[1:], kwargs)
    kFilter,    // args[0] | name(args[1:], kwargs)
    kTest,      // args[0] is [not] name(args[1:])
    kUnary,     // op args[0]; op is "not", "-", "+"
    kBinary,    // args[0] op args[1]; op is + - * / // % ** ~ and or == != < <= > >= in "not in"
    kCondition, // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;  // name, attribute, filter, test or operator
  bool negated = false;  // for kTest: "is not"
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // conditions[i] -> bodies[i]; else_body
    kFor,       // for targets in expr [if filter] body [else else_body]
    kSet,       // set targets = expr | set targets %}body{% endset | set expr.attr = value
    kMacro,     // macro name(params = defaults) body
    kCallBlock, // call expr (the macro call) with body as caller()
    kBreak,
    kContinue,
    kFilterBlock,  // filter name(args) body endfilter: expr is a kFilter over a null operand
    kPlain,     // body rendered as is ({% generation %} from transformers)
  };
  Kind kind;
  int line = 0;
  std::string text;
  std::vector<std::string> targets;  // loop / set variable names; macro parameter names
  ExprPtr expr;          // output, for iterable, set value, call-block call
  ExprPtr filter;        // for ... if filter; set ns.attr: the namespace expression
  std::string attr;      // set ns.attr
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  std::vector<ExprPtr> defaults;  // macro defaults, aligned with targets (null = none)
  Body body;
  Body else_body;
};

struct Template {
  Body body;
};

}  // namespace kr::jinja
