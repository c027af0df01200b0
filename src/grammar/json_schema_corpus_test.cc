// The JSON Schema corpus (testdata/json_schema_corpus.jsonl: real API shapes of
// growing difficulty) against the Llama-3 vocabulary:
//  - every schema compiles;
//  - its hand-written valid documents are accepted and invalid ones rejected;
//  - random walks (random choices among allowed tokens) end in documents that
//    Python's jsonschema (a validator this project does not write) accepts;
//  - mutations of those documents that jsonschema rejects are rejected too.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "grammar/grammar_compiler.h"
#include "grammar/matcher.h"
#include "grammar/random_walk_for_test.h"
#include "grammar/vocab_for_test.h"

namespace kr::grammar {
namespace {

using Json = nlohmann::ordered_json;

const std::string kDir = std::string(KR_SOURCE_DIR) + "/src/grammar/testdata/";

std::vector<Json> load_corpus() {
  std::ifstream in(kDir + "json_schema_corpus.jsonl");
  std::vector<Json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(Json::parse(line));
  }
  return out;
}

bool matcher_accepts(const std::shared_ptr<const CompiledGrammar>& g, const std::string& text) {
  GrammarMatcher m(g);
  return m.accept_bytes(text) && m.can_terminate();
}

// Structural mutations of a valid document (some stay valid; jsonschema decides).
std::vector<std::string> mutations(const Json& doc, std::mt19937_64& rng) {
  std::vector<Json*> nodes;
  Json copy = doc;
  std::vector<Json*> stack{&copy};
  while (!stack.empty()) {
    Json* n = stack.back();
    stack.pop_back();
    nodes.push_back(n);
    if (n->is_object()) {
      for (auto& [k, v] : n->items()) stack.push_back(&v);
    } else if (n->is_array()) {
      for (auto& v : *n) stack.push_back(&v);
    }
  }
  std::vector<std::string> out;
  for (int kind = 0; kind < 6; ++kind) {
    Json m = doc;
    // Re-walk the copy to find the node with the same index.
    std::vector<Json*> ns;
    std::vector<Json*> st{&m};
    while (!st.empty()) {
      Json* n = st.back();
      st.pop_back();
      ns.push_back(n);
      if (n->is_object()) {
        for (auto& [k, v] : n->items()) st.push_back(&v);
      } else if (n->is_array()) {
        for (auto& v : *n) st.push_back(&v);
      }
    }
    Json* target = ns[rng() % ns.size()];
    switch (kind) {
      case 0:  // drop a key
        if (target->is_object() && !target->empty()) target->erase(target->begin().key());
        else *target = Json::array();
        break;
      case 1:  // add an unknown key / element
        if (target->is_object()) (*target)["zz_unexpected"] = 1;
        else if (target->is_array()) target->push_back("zz");
        else *target = Json::object();
        break;
      case 2:  // change the type
        if (target->is_string()) *target = 12345;
        else if (target->is_number()) *target = "12345";
        else *target = nullptr;
        break;
      case 3:  // push numbers out of range, extend strings
        if (target->is_number()) *target = target->get<double>() * -1000 - 1e7;
        else if (target->is_string()) *target = target->get<std::string>() + "~!0";
        else if (target->is_array()) target->clear();
        break;
      case 4: *target = true; break;
      default: {
        std::string t = m.dump();
        size_t cut = t.size() / 2;  // truncated, at a UTF-8 character boundary
        while (cut > 0 && (static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) --cut;
        out.push_back(t.substr(0, cut));
        continue;
      }
    }
    out.push_back(m.dump());
  }
  return out;
}

std::string python3() { return KR_PYTHON3; }

TEST(JsonSchemaCorpus, CompileAcceptRejectRandomWalkValidate) {
  auto vocab = load_vocabulary(std::string(KR_SOURCE_DIR) + "/models/tiny-llama3/tokenizer.json",
                               {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"});
  ASSERT_TRUE(vocab.ok()) << vocab.status().to_string();
  const auto corpus = load_corpus();
  ASSERT_GE(corpus.size(), 100u);
  GrammarCompiler compiler(*vocab);
  const WalkTokenClasses classes = WalkTokenClasses::for_vocab(**vocab);
  std::mt19937_64 rng(20250101);

  struct Doc {
    size_t schema;
    std::string text;
    bool from_walk;
    bool matcher_accepts;
  };
  std::vector<Doc> docs;
  size_t walks_finished = 0, walks_total = 0, checked_valid = 0, checked_invalid = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const Json& entry = corpus[i];
    const std::string name = entry["name"].get<std::string>();
    SCOPED_TRACE(name);
    auto g = compiler.compile(GrammarSpec::json_schema(entry["schema"].dump()));
    ASSERT_TRUE(g.ok()) << name << ": " << g.status().message();
    for (const Json& v : entry["valid"]) {
      EXPECT_TRUE(matcher_accepts(*g, v.dump())) << name << " should accept " << v.dump();
      ++checked_valid;
    }
    for (const Json& v : entry["invalid"]) {
      EXPECT_FALSE(matcher_accepts(*g, v.dump())) << name << " should reject " << v.dump();
      ++checked_invalid;
    }
    int finished = 0;
    for (int attempt = 0; attempt < 6 && finished < 2; ++attempt) {
      WalkResult w = random_walk(*g, classes, rng);
      ++walks_total;
      ASSERT_FALSE(w.mask_error) << name << ": a token allowed by the mask was rejected after '" << w.text << "'";
      if (!w.finished) continue;
      ++finished;
      ++walks_finished;
      docs.push_back({i, w.text, true, true});
      Json parsed = Json::parse(w.text, nullptr, false);
      ASSERT_FALSE(parsed.is_discarded()) << name << ": walk produced invalid JSON: " << w.text;
      for (std::string& m : mutations(parsed, rng)) {
        bool acc = matcher_accepts(*g, m);
        docs.push_back({i, std::move(m), false, acc});
      }
    }
    EXPECT_GE(finished, 1) << name << ": no random walk finished";
  }

  // One jsonschema run over every document.
  char path[] = "/tmp/kr_grammar_docs_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  {
    std::ofstream out(path);
    for (const Doc& d : docs) out << Json{{"schema", d.schema}, {"doc", d.text}}.dump() << "\n";
  }
  close(fd);
  std::string cmd = python3() + " " + kDir + "validate_json.py " + kDir + "json_schema_corpus.jsonl " + path;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  int rc = pclose(p);
  std::remove(path);
  ASSERT_EQ(rc, 0) << "validator failed (is python3-jsonschema installed?): " << cmd;
  std::istringstream lines(output);
  std::string verdict;
  size_t k = 0, walk_valid = 0, mutants_invalid = 0;
  while (std::getline(lines, verdict) && k < docs.size()) {
    const Doc& d = docs[k++];
    const std::string name = corpus[d.schema]["name"].get<std::string>();
    if (d.from_walk) {
      EXPECT_EQ(verdict, "valid") << name << ": generated document fails validation: " << d.text;
      walk_valid += verdict == "valid";
    } else if (verdict != "valid") {
      ++mutants_invalid;
      EXPECT_FALSE(d.matcher_accepts) << name << ": matcher accepts a document jsonschema rejects (" << verdict
                                      << "): " << d.text;
    }
  }
  EXPECT_EQ(k, docs.size()) << "validator output is short";
  std::printf("corpus: %zu schemas, %zu/%zu walks finished, %zu valid; %zu valid and %zu invalid examples checked; "
              "%zu mutants rejected by jsonschema\n",
              corpus.size(), walks_finished, walks_total, walk_valid, checked_valid, checked_invalid, mutants_invalid);
}

}  // namespace
}  // namespace kr::grammar
