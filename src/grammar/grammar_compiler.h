// GrammarCompiler: the module's entry point. Turns a constraint spec (JSON
// Schema, free JSON object, regex, GBNF, list of choices) into a
// CompiledGrammar for one vocabulary, caching results by a hash of the spec,
// so that requests repeating a schema compile it once.
//
// Usage (the server validates and compiles on its request thread, the engine
// creates one matcher per sequence):
//   GrammarCompiler compiler(vocab);
//   auto g = compiler.compile(GrammarSpec::json_schema(schema_text));
//   if (!g.ok()) -> 400 with g.status().message()
//   GrammarMatcher m(*g);  m.fill_mask(bits); m.accept_token(id); ...
//
// Threading: compile() may be called from any number of threads at once.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "grammar/automaton.h"
#include "grammar/compiled_grammar.h"
#include "grammar/gbnf_parser.h"
#include "grammar/grammar_ir.h"
#include "grammar/json_schema.h"
#include "grammar/regex_parser.h"
#include "grammar/vocabulary.h"

namespace kr::grammar {

enum class GrammarKind : uint8_t {
  kJsonSchema,  // source: schema JSON text
  kJsonObject,  // any JSON object (source unused)
  kRegex,       // source: pattern; the whole output must match
  kGbnf,        // source: llama.cpp GBNF text
  kChoices,     // choices: the output is exactly one of them
};

const char* grammar_kind_name(GrammarKind kind);

struct GrammarSpec {
  GrammarKind kind = GrammarKind::kJsonObject;
  std::string source;
  std::vector<std::string> choices;
  // kGbnf only: rules the GBNF text uses that are defined by JSON Schemas
  // (name, schema JSON text); e.g. a tool call wrapped in literal tags.
  std::vector<std::pair<std::string, std::string>> json_schema_rules;

  static GrammarSpec json_schema(std::string schema) { return make(GrammarKind::kJsonSchema, std::move(schema)); }
  static GrammarSpec json_object() { return make(GrammarKind::kJsonObject, ""); }
  static GrammarSpec regex(std::string pattern) { return make(GrammarKind::kRegex, std::move(pattern)); }
  static GrammarSpec gbnf(std::string text, std::vector<std::pair<std::string, std::string>> schema_rules = {}) {
    GrammarSpec s = make(GrammarKind::kGbnf, std::move(text));
    s.json_schema_rules = std::move(schema_rules);
    return s;
  }
  static GrammarSpec choices_of(std::vector<std::string> list) {
    GrammarSpec s = make(GrammarKind::kChoices, "");
    s.choices = std::move(list);
    return s;
  }

 private:
  static GrammarSpec make(GrammarKind kind, std::string source) {
    GrammarSpec s;
    s.kind = kind;
    s.source = std::move(source);
    return s;
  }
};

struct CompileOptions {
  JsonSchemaOptions json;
  GbnfLimits gbnf;
  RegexOptions regex;  // json_string/search are set per use
  PdaLimits pda;
  size_t max_choices = 4096;
  size_t max_choice_bytes = 64 * 1024;
};

// Spec -> grammar IR (vocabulary-independent; errors are InvalidArgument).
StatusOr<Grammar> build_grammar(const GrammarSpec& spec, const CompileOptions& options = {});
// Spec -> pushdown automaton.
StatusOr<std::shared_ptr<const Pda>> build_spec_pda(const GrammarSpec& spec, const CompileOptions& options = {});

class GrammarCompiler {
 public:
  explicit GrammarCompiler(std::shared_ptr<const TokenVocabulary> vocab, CompileOptions options = {},
                           size_t cache_entries = 512);

  StatusOr<std::shared_ptr<const CompiledGrammar>> compile(const GrammarSpec& spec);
  const TokenVocabulary& vocab() const { return *vocab_; }
  const std::shared_ptr<const TokenVocabulary>& vocab_ptr() const { return vocab_; }

  struct Stats {
    size_t hits = 0;
    size_t misses = 0;
    size_t entries = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    GrammarKind kind;
    std::string source;
    std::vector<std::string> choices;
    std::vector<std::pair<std::string, std::string>> json_schema_rules;
    Status status;
    std::shared_ptr<const CompiledGrammar> grammar;
    std::list<uint64_t>::iterator lru;
  };
  static uint64_t hash_spec(const GrammarSpec& spec);
  static bool same_spec(const Entry& e, const GrammarSpec& spec);

  std::shared_ptr<const TokenVocabulary> vocab_;
  CompileOptions options_;
  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_multimap<uint64_t, Entry> cache_;
  std::list<uint64_t> lru_;  // most recent first
  Stats stats_;
};

}  // namespace kr::grammar
