#include "tokenizer/jinja/interpreter.h"

#include <optional>
#include <unordered_map>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/filters.h"
#include "tokenizer/jinja/methods.h"
#include "tokenizer/jinja/operators.h"
#include "tokenizer/jinja/tests.h"

namespace kr::jinja {
namespace {

// A variable scope. Loops and macro calls open one; `if` does not (as in Jinja).
struct Frame {
  std::unordered_map<std::string, Value> vars;
  const Frame* parent = nullptr;

  const Value* lookup(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent) {
      auto it = f->vars.find(name);
      if (it != f->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  Renderer(const Value& context, const RenderLimits& limits) : limits_(limits) {
    for (const auto& [k, v] : context.as_dict()->entries()) root_.vars[k] = v;
  }

  ~Renderer() {
    // Namespaces are the only mutable objects, so the only way to build a
    // reference cycle; clearing them frees everything the render created.
    for (const DictPtr& ns : namespaces_) ns->clear();
  }

  std::string run(const Template& tmpl) {
    std::string out;
    exec_body(tmpl.body, root_, out);
    return out;
  }

 private:
  CallSite site(int line) const { return CallSite{line, &limits_}; }

  void append(std::string& out, const std::string& s, int line) {
    out += s;
    if (out.size() > limits_.max_output_bytes) {
      throw LimitError("output exceeds the limit of " + std::to_string(limits_.max_output_bytes) + " bytes", line);
    }
  }

  Flow exec_body(const Body& body, Frame& frame, std::string& out) {
    for (const StmtPtr& s : body) {
      Flow f = exec(*s, frame, out);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  // Bounds the recursion of exec/eval, so that the stack a render needs is bounded too.
  struct DepthGuard {
    DepthGuard(Renderer* r, int line) : r(r) {
      if (++r->render_depth_ > r->limits_.max_render_depth) {
        --r->render_depth_;
        throw LimitError("template evaluation nested deeper than " + std::to_string(r->limits_.max_render_depth),
                         line);
      }
    }
    ~DepthGuard() { --r->render_depth_; }
    Renderer* r;
  };

  Flow exec(const Stmt& s, Frame& frame, std::string& out) {
    DepthGuard guard(this, s.line);
    switch (s.kind) {
      case Stmt::Kind::kText: append(out, s.text, s.line); return Flow::kNormal;
      case Stmt::Kind::kOutput: append(out, eval(*s.expr, frame).str(), s.line); return Flow::kNormal;
      case Stmt::Kind::kIf:
        for (size_t i = 0; i < s.conditions.size(); ++i) {
          if (eval(*s.conditions[i], frame).truthy()) return exec_body(s.bodies[i], frame, out);
        }
        return exec_body(s.else_body, frame, out);
      case Stmt::Kind::kFor: return exec_for(s, frame, out);
      case Stmt::Kind::kSet: exec_set(s, frame); return Flow::kNormal;
      case Stmt::Kind::kMacro: {
        auto c = std::make_shared<Callable>();
        c->name = s.text;
        c->macro = &s;
        frame.vars[s.text] = Value(CallablePtr(std::move(c)));
        return Flow::kNormal;
      }
      case Stmt::Kind::kCallBlock: {
        callers_.push_back({&s, &frame});
        Value result;
        try {
          result = eval_call(*s.expr, frame, &s);
        } catch (...) {
          callers_.pop_back();
          throw;
        }
        callers_.pop_back();
        append(out, result.str(), s.line);
        return Flow::kNormal;
      }
      case Stmt::Kind::kFilterBlock: {
        std::string inner;
        Frame child{{}, &frame};
        exec_body(s.body, child, inner);
        append(out, apply_filter_chain(*s.expr, Value(std::move(inner)), frame).str(), s.line);
        return Flow::kNormal;
      }
      case Stmt::Kind::kBreak: return Flow::kBreak;
      case Stmt::Kind::kContinue: return Flow::kContinue;
      case Stmt::Kind::kPlain: return exec_body(s.body, frame, out);
    }
    return Flow::kNormal;
  }

  Value apply_filter_chain(const Expr& f, Value base, Frame& frame) {
    Value operand = f.args[0] ? apply_filter_chain(*f.args[0], std::move(base), frame) : std::move(base);
    return apply_filter(f.name, operand, eval_args(f, 1, frame), site(f.line));
  }

  void bind_targets(const std::vector<std::string>& targets, const Value& v, Frame& frame, int line) {
    if (targets.size() == 1) {
      frame.vars[targets[0]] = v;
      return;
    }
    std::vector<Value> items = iterate(v, site(line));
    if (items.size() != targets.size()) {
      site(line).fail("ValueError: cannot unpack " + std::to_string(items.size()) + " values into " +
                      std::to_string(targets.size()) + " names");
    }
    for (size_t i = 0; i < targets.size(); ++i) frame.vars[targets[i]] = items[i];
  }

  void count_iteration(int line) {
    if (++iterations_ > limits_.max_loop_iterations) {
      throw LimitError("more than " + std::to_string(limits_.max_loop_iterations) + " loop iterations", line);
    }
  }

  Flow exec_for(const Stmt& s, Frame& frame, std::string& out) {
    std::vector<Value> items = iterate(eval(*s.expr, frame), site(s.line));
    if (s.filter) {
      std::vector<Value> kept;
      for (Value& item : items) {
        count_iteration(s.line);
        Frame probe{{}, &frame};
        bind_targets(s.targets, item, probe, s.line);
        if (eval(*s.filter, probe).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      Frame child{{}, &frame};
      return exec_body(s.else_body, child, out) == Flow::kBreak ? Flow::kBreak : Flow::kNormal;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      count_iteration(s.line);
      Frame child{{}, &frame};
      Value loop = Value::dict();
      Dict& l = *loop.as_dict();
      l.set("index0", Value(i));
      l.set("index", Value(i + 1));
      l.set("revindex0", Value(n - i - 1));
      l.set("revindex", Value(n - i));
      l.set("first", Value(i == 0));
      l.set("last", Value(i == n - 1));
      l.set("length", Value(n));
      l.set("depth", Value(int64_t{1}));
      l.set("depth0", Value(int64_t{0}));
      l.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item"));
      l.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item"));
      child.vars["loop"] = std::move(loop);
      bind_targets(s.targets, items[static_cast<size_t>(i)], child, s.line);
      if (exec_body(s.body, child, out) == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  void exec_set(const Stmt& s, Frame& frame) {
    if (!s.attr.empty()) {
      Value ns = eval(*s.filter, frame);
      if (!ns.is_dict() || !ns.as_dict()->is_namespace) {
        site(s.line).fail("cannot assign attribute '" + s.attr + "' on a non-namespace object");
      }
      ns.as_dict()->set(s.attr, eval(*s.expr, frame));
      return;
    }
    if (s.expr) {
      bind_targets(s.targets, eval(*s.expr, frame), frame, s.line);
      return;
    }
    std::string captured;
    Frame child{{}, &frame};
    exec_body(s.body, child, captured);
    frame.vars[s.targets[0]] = Value(std::move(captured));
  }

  CallArgs eval_args(const Expr& e, size_t first, Frame& frame) {
    CallArgs a;
    for (size_t i = first; i < e.args.size(); ++i) a.positional.push_back(eval(*e.args[i], frame));
    for (const auto& [k, v] : e.kwargs) a.keyword.emplace_back(k, eval(*v, frame));
    return a;
  }

  Value eval(const Expr& e, Frame& frame) {
    DepthGuard guard(this, e.line);
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.literal;
      case Expr::Kind::kName: {
        if (const Value* v = frame.lookup(e.name)) return *v;
        if (is_builtin_function(e.name)) {
          auto c = std::make_shared<Callable>();
          c->name = e.name;
          return Value(CallablePtr(std::move(c)));
        }
        return Value::undefined("'" + e.name + "' is undefined");
      }
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        std::vector<Value> items;
        for (const auto& a : e.args) items.push_back(eval(*a, frame));
        return Value::list(std::move(items), e.kind == Expr::Kind::kTuple);
      }
      case Expr::Kind::kDict: {
        Value d = Value::dict();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value k = eval(*e.args[i], frame);
          if (!k.is_string()) site(e.line).fail("dict keys must be strings, got " + k.type_repr());
          d.as_dict()->set(k.as_string(), eval(*e.args[i + 1], frame));
        }
        return d;
      }
      case Expr::Kind::kAttr: return get_attr(eval(*e.args[0], frame), e.name, site(e.line));
      case Expr::Kind::kItem:
        return get_item(eval(*e.args[0], frame), eval(*e.args[1], frame), site(e.line));
      case Expr::Kind::kSlice: {
        Value parts[3];
        for (int i = 0; i < 3; ++i) {
          if (e.args[static_cast<size_t>(i) + 1]) parts[i] = eval(*e.args[static_cast<size_t>(i) + 1], frame);
        }
        return slice(eval(*e.args[0], frame), parts[0], parts[1], parts[2], site(e.line));
      }
      case Expr::Kind::kCall: return eval_call(e, frame, nullptr);
      case Expr::Kind::kFilter: {
        Value operand = eval(*e.args[0], frame);
        return apply_filter(e.name, operand, eval_args(e, 1, frame), site(e.line));
      }
      case Expr::Kind::kTest: {
        Value operand = eval(*e.args[0], frame);
        bool r = apply_test(e.name, operand, eval_args(e, 1, frame), site(e.line));
        return Value(e.negated ? !r : r);
      }
      case Expr::Kind::kUnary: {
        Value v = eval(*e.args[0], frame);
        if (e.name == "not") return Value(!v.truthy());
        if (v.is_undefined()) fail_undefined(v, site(e.line));
        if (!v.is_number()) site(e.line).fail("TypeError: bad operand type for unary " + e.name + ": " + v.type_repr());
        if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
        if (v.is_float()) return Value(-v.as_float());
        if (v.as_int() == INT64_MIN) site(e.line).fail("integer overflow");
        return Value(-v.as_int());
      }
      case Expr::Kind::kBinary: {
        if (e.name == "and" || e.name == "or") {
          Value left = eval(*e.args[0], frame);
          if (left.truthy() == (e.name == "or")) return left;
          return eval(*e.args[1], frame);
        }
        Value left = eval(*e.args[0], frame);
        Value right = eval(*e.args[1], frame);
        return binary_op(e.name, left, right, site(e.line));
      }
      case Expr::Kind::kCondition:
        if (eval(*e.args[1], frame).truthy()) return eval(*e.args[0], frame);
        return e.args[2] ? eval(*e.args[2], frame) : Value::undefined("the condition was false and there is no else");
    }
    return Value();
  }

  // `call_block` is set when a {% call %} block makes this call (binds caller()).
  Value eval_call(const Expr& e, Frame& frame, const Stmt* call_block) {
    const Expr& callee = *e.args[0];
    Value fn;
    std::optional<CallArgs> args;
    if (callee.kind == Expr::Kind::kAttr) {
      Value obj = eval(*callee.args[0], frame);
      if (obj.is_undefined()) fail_undefined(obj, site(e.line));
      if (obj.is_string() || obj.is_dict()) {
        args = eval_args(e, 1, frame);
        if (std::optional<Value> r = call_method(obj, callee.name, *args, site(e.line))) return *r;
      }
      fn = get_attr(obj, callee.name, site(e.line));
    } else {
      fn = eval(callee, frame);
    }
    if (fn.is_undefined()) fail_undefined(fn, site(e.line));
    if (!fn.is_callable()) site(e.line).fail("TypeError: '" + fn.type_repr() + "' is not callable");
    if (!args) args = eval_args(e, 1, frame);
    const Callable& c = fn.as_callable();
    if (!c.macro) return call_builtin(c.name, *args, site(e.line), &namespaces_);
    return call_macro(c, *args, e.line, call_block);
  }

  Value call_macro(const Callable& c, const CallArgs& args, int line, const Stmt* call_block) {
    const Stmt& m = *c.macro;
    if (call_depth_ >= limits_.max_call_depth) {
      throw LimitError("macro calls nested deeper than " + std::to_string(limits_.max_call_depth), line);
    }
    // caller() runs the body of the {% call %} block in the scope that holds it.
    const Frame* parent = &root_;
    if (m.kind == Stmt::Kind::kCallBlock) {
      parent = nullptr;
      for (auto it = callers_.rbegin(); it != callers_.rend(); ++it) {
        if (it->first == &m) {
          parent = it->second;
          break;
        }
      }
      if (!parent) site(line).fail("caller() used outside its call block");
    }
    Frame f{{}, parent};
    if (args.positional.size() > m.targets.size()) {
      site(line).fail("TypeError: macro '" + c.name + "' takes " + std::to_string(m.targets.size()) +
                      " arguments, got " + std::to_string(args.positional.size()));
    }
    for (const auto& [k, v] : args.keyword) {
      bool known = false;
      for (const auto& t : m.targets) known = known || t == k;
      if (!known) site(line).fail("TypeError: macro '" + c.name + "' has no parameter '" + k + "'");
    }
    for (size_t i = 0; i < m.targets.size(); ++i) {
      const Value* v = args.get(i, m.targets[i].c_str());
      if (v) {
        f.vars[m.targets[i]] = *v;
      } else if (m.defaults[i]) {
        f.vars[m.targets[i]] = eval(*m.defaults[i], f);
      } else {
        f.vars[m.targets[i]] = Value::undefined("parameter '" + m.targets[i] + "' was not provided");
      }
    }
    if (call_block) {
      auto caller = std::make_shared<Callable>();
      caller->name = "caller";
      caller->macro = call_block;
      f.vars["caller"] = Value(CallablePtr(std::move(caller)));
    }
    ++call_depth_;
    std::string out;
    try {
      exec_body(m.body, f, out);
    } catch (...) {
      --call_depth_;
      throw;
    }
    --call_depth_;
    return Value(std::move(out));
  }

  const RenderLimits& limits_;
  Frame root_;
  int64_t iterations_ = 0;
  int call_depth_ = 0;
  int render_depth_ = 0;
  std::vector<std::pair<const Stmt*, Frame*>> callers_;  // active {% call %} blocks
  std::vector<DictPtr> namespaces_;
};

}  // namespace

std::string render_template(const Template& tmpl, const Value& context, const RenderLimits& limits) {
  if (!context.is_dict()) throw TemplateError("the render context must be an object", 0);
  Renderer r(context, limits);
  return r.run(tmpl);
}

}  // namespace kr::jinja
