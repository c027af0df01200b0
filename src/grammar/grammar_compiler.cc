#include "grammar/grammar_compiler.h"

namespace kr::grammar {

const char* grammar_kind_name(GrammarKind kind) {
  switch (kind) {
    case GrammarKind::kJsonSchema: return "json_schema";
    case GrammarKind::kJsonObject: return "json_object";
    case GrammarKind::kRegex: return "regex";
    case GrammarKind::kGbnf: return "gbnf";
    case GrammarKind::kChoices: return "choices";
  }
  return "?";
}

StatusOr<Grammar> build_grammar(const GrammarSpec& spec, const CompileOptions& options) {
  switch (spec.kind) {
    case GrammarKind::kJsonSchema: return compile_json_schema(spec.source, options.json);
    case GrammarKind::kJsonObject: return json_object_grammar(options.json);
    case GrammarKind::kGbnf: {
      if (spec.json_schema_rules.empty()) return parse_gbnf(spec.source, options.gbnf);
      std::vector<GbnfExternalRule> externals;
      for (const auto& [name, schema] : spec.json_schema_rules) externals.push_back({name, 0});
      auto g = parse_gbnf(spec.source, options.gbnf, &externals);
      if (!g.ok()) return g.status();
      for (size_t i = 0; i < externals.size(); ++i) {
        Status st = compile_json_schema_into(*g, externals[i].rule, spec.json_schema_rules[i].second, options.json);
        if (!st.ok()) return InvalidArgument("JSON schema of rule '" + externals[i].name + "': " + st.message());
      }
      return g;
    }
    case GrammarKind::kRegex: {
      Grammar g;
      uint32_t root = g.add_rule("root");
      g.set_root(root);
      RegexOptions ro = options.regex;
      ro.json_string = false;
      ro.search = false;
      auto e = compile_regex(g, spec.source, ro);
      if (!e.ok()) return e.status();
      g.set_rule_body(root, *e);
      return g;
    }
    case GrammarKind::kChoices: {
      if (spec.choices.empty()) return InvalidArgument("the list of choices is empty");
      if (spec.choices.size() > options.max_choices) {
        return InvalidArgument("too many choices (limit " + std::to_string(options.max_choices) + ")");
      }
      Grammar g;
      uint32_t root = g.add_rule("root");
      g.set_root(root);
      std::vector<ExprId> alts;
      size_t bytes = 0;
      for (const std::string& c : spec.choices) {
        bytes += c.size();
        if (bytes > options.max_choice_bytes) return InvalidArgument("the choices are too long");
        alts.push_back(g.literal(c));
      }
      g.set_rule_body(root, g.alt(alts));
      return g;
    }
  }
  return InvalidArgument("unknown grammar kind");
}

StatusOr<std::shared_ptr<const Pda>> build_spec_pda(const GrammarSpec& spec, const CompileOptions& options) {
  auto g = build_grammar(spec, options);
  if (!g.ok()) return g.status();
  return build_pda(*g, options.pda);
}

GrammarCompiler::GrammarCompiler(std::shared_ptr<const TokenVocabulary> vocab, CompileOptions options,
                                 size_t cache_entries)
    : vocab_(std::move(vocab)), options_(std::move(options)), capacity_(cache_entries) {}

uint64_t GrammarCompiler::hash_spec(const GrammarSpec& spec) {
  uint64_t h = 0xcbf29ce484222325ULL ^ static_cast<uint64_t>(spec.kind);
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    h = (h ^ 0xFF) * 0x100000001b3ULL;
  };
  mix(spec.source);
  for (const auto& c : spec.choices) mix(c);
  for (const auto& [name, schema] : spec.json_schema_rules) {
    mix(name);
    mix(schema);
  }
  return h ^ (h >> 29);
}

bool GrammarCompiler::same_spec(const Entry& e, const GrammarSpec& spec) {
  return e.kind == spec.kind && e.source == spec.source && e.choices == spec.choices &&
         e.json_schema_rules == spec.json_schema_rules;
}

StatusOr<std::shared_ptr<const CompiledGrammar>> GrammarCompiler::compile(const GrammarSpec& spec) {
  const uint64_t h = hash_spec(spec);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto range = cache_.equal_range(h);
    for (auto it = range.first; it != range.second; ++it) {
      if (!same_spec(it->second, spec)) continue;
      ++stats_.hits;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      if (!it->second.status.ok()) return it->second.status;
      return it->second.grammar;
    }
  }
  Status status;
  std::shared_ptr<const CompiledGrammar> grammar;
  auto pda = build_spec_pda(spec, options_);
  if (!pda.ok()) {
    status = pda.status();
  } else {
    auto cg = CompiledGrammar::create(*pda, vocab_);
    if (cg.ok()) {
      grammar = *cg;
    } else {
      status = cg.status();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.misses;
  auto range = cache_.equal_range(h);
  for (auto it = range.first; it != range.second; ++it) {
    if (same_spec(it->second, spec)) {  // compiled meanwhile by another thread
      if (!it->second.status.ok()) return it->second.status;
      return it->second.grammar;
    }
  }
  lru_.push_front(h);
  cache_.emplace(h, Entry{spec.kind, spec.source, spec.choices, spec.json_schema_rules, status, grammar, lru_.begin()});
  while (cache_.size() > capacity_ && !lru_.empty()) {
    uint64_t victim = lru_.back();
    auto vr = cache_.equal_range(victim);
    for (auto it = vr.first; it != vr.second; ++it) {
      if (it->second.lru == std::prev(lru_.end())) {
        cache_.erase(it);
        break;
      }
    }
    lru_.pop_back();
  }
  if (!status.ok()) return status;
  return grammar;
}

GrammarCompiler::Stats GrammarCompiler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.entries = cache_.size();
  return s;
}

}  // namespace kr::grammar
