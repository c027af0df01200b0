// kr-grammar-bench [--corpus PATH] [--tokenizer PATH]... [--walks N] [--seed S] [--out PATH]
//
// Structured-output cost on the CPU, per tokenizer (default: the Llama-3 one
// in models/tiny-llama3 and Qwen3's in tests/golden/qwen3-tokenizer):
//  - compile time of every schema of the JSON Schema corpus (schema -> grammar
//    -> pushdown automaton bound to the vocabulary; token masks are computed
//    lazily and counted in the mask times below);
//  - mask time per row per step (GrammarMatcher::fill_mask, one thread) over
//    random walks: "cold" is the first walk after a schema is compiled (it
//    pays for each node's mask on first use), "warm" the later walks on the
//    same compiled grammar (the server's cache keeps compiled grammars);
//  - "steady": the same walks replayed once every node mask they need exists
//    (a schema's second request onwards);
//  - the cost of each node mask computed on first use (node_mask_first_use_us).
// Times are CPU time of the measuring thread (CLOCK_THREAD_CPUTIME_ID), so a
// busy machine's preemption does not count; wall-clock figures are reported
// beside them ("wall").
// Prints JSON and writes it to --out when given. Run from the repository root.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/percentile.h"
#include "grammar/grammar_compiler.h"
#include "grammar/matcher.h"
#include "grammar/random_walk_for_test.h"
#include "grammar/vocab_for_test.h"

namespace {

using namespace kr::grammar;
using Json = nlohmann::ordered_json;

Json summary(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  return Json{{"n", v.size()},
              {"mean", v.empty() ? 0.0 : sum / static_cast<double>(v.size())},
              {"p50", kr::percentile_sorted(v, 0.50)},
              {"p90", kr::percentile_sorted(v, 0.90)},
              {"p99", kr::percentile_sorted(v, 0.99)},
              {"max", v.empty() ? 0.0 : v.back()}};
}

double thread_cpu_us() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

double thread_cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

struct TokenizerSpec {
  std::string path;
  std::vector<std::string> eos;
};

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_path = "src/grammar/testdata/json_schema_corpus.jsonl";
  std::vector<TokenizerSpec> tokenizers;
  int walks = 3;
  uint64_t seed = 42;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return std::strcmp(argv[i], name) == 0 && i + 1 < argc; };
    if (arg("--corpus")) {
      corpus_path = argv[++i];
    } else if (arg("--tokenizer")) {
      tokenizers.push_back({argv[++i], {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>"}});
    } else if (arg("--walks")) {
      walks = std::max(2, std::atoi(argv[++i]));
    } else if (arg("--seed")) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg("--out")) {
      out_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: kr-grammar-bench [--corpus PATH] [--tokenizer PATH]... [--walks N] [--seed S] [--out PATH]\n");
      return 2;
    }
  }
  if (tokenizers.empty()) {
    tokenizers.push_back({"models/tiny-llama3/tokenizer.json", {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"}});
    tokenizers.push_back({"tests/golden/qwen3-tokenizer/tokenizer.json", {"<|im_end|>", "<|endoftext|>"}});
  }
  std::vector<Json> corpus;
  {
    std::ifstream in(corpus_path);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) corpus.push_back(Json::parse(line));
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "kr-grammar-bench: no schemas in %s\n", corpus_path.c_str());
    return 1;
  }
  Json report = {{"benchmark", "grammar"}, {"corpus", corpus_path}, {"schemas", corpus.size()},
                 {"walks_per_schema", walks}, {"seed", seed}, {"tokenizers", Json::array()}};
  for (const TokenizerSpec& ts : tokenizers) {
    auto vocab = load_vocabulary(ts.path, ts.eos);
    if (!vocab.ok()) {
      std::fprintf(stderr, "kr-grammar-bench: %s\n", vocab.status().to_string().c_str());
      return 1;
    }
    const WalkTokenClasses classes = WalkTokenClasses::for_vocab(**vocab);
    std::mt19937_64 rng(seed);
    std::vector<double> compile_ms, cold_us, warm_us, steady_us, walk_tokens, wall_us;
    std::vector<double> node_mask_us;  // CPU time of each node mask computed on first use
    size_t unfinished = 0, mask_errors = 0;
    Json per_schema = Json::array();
    for (const Json& entry : corpus) {
      const std::string schema = entry["schema"].dump();
      const double c0 = thread_cpu_ms();
      auto pda = build_spec_pda(GrammarSpec::json_schema(schema));
      if (!pda.ok()) {
        std::fprintf(stderr, "kr-grammar-bench: %s: %s\n", entry["name"].get<std::string>().c_str(),
                     pda.status().message().c_str());
        return 1;
      }
      auto cg = CompiledGrammar::create(*pda, *vocab);
      const double ms = thread_cpu_ms() - c0;
      if (!cg.ok()) return 1;
      compile_ms.push_back(ms);
      std::vector<double> cold;
      std::vector<std::vector<int32_t>> token_seqs;
      for (int w = 0; w < walks; ++w) {
        WalkResult r = random_walk(*cg, classes, rng);
        token_seqs.push_back(r.tokens);
        unfinished += !r.finished;
        mask_errors += r.mask_error;
        walk_tokens.push_back(static_cast<double>(r.tokens.size()));
        auto& dst = w == 0 ? cold_us : warm_us;
        dst.insert(dst.end(), r.mask_us.begin(), r.mask_us.end());
        wall_us.insert(wall_us.end(), r.mask_wall_us.begin(), r.mask_wall_us.end());
        if (w == 0) cold = r.mask_us;
      }
      for (uint32_t n = 0; n < (*pda)->num_nodes; ++n) {
        if (const NodeMask* m = (*cg)->peek_mask(n)) node_mask_us.push_back(m->compute_us);
      }
      std::vector<uint32_t> bits((*vocab)->mask_words());
      for (const auto& seq : token_seqs) {
        GrammarMatcher m(*cg);
        for (size_t k = 0; k <= seq.size(); ++k) {
          const double t0 = thread_cpu_us();
          m.fill_mask(bits.data());
          steady_us.push_back(thread_cpu_us() - t0);
          if (k < seq.size() && !m.accept_token(seq[k])) break;
        }
      }
      std::sort(cold.begin(), cold.end());
      per_schema.push_back({{"name", entry["name"]}, {"compile_ms", ms}, {"nodes", (*pda)->num_nodes},
                            {"cold_p50_us", kr::percentile_sorted(cold, 0.5)},
                            {"cold_max_us", cold.empty() ? 0.0 : cold.back()}});
    }
    std::vector<double> all = cold_us;
    all.insert(all.end(), warm_us.begin(), warm_us.end());
    auto stats = (*vocab)->region_cache_stats();
    Json t = {{"tokenizer", ts.path},
              {"vocab_size", (*vocab)->size()},
              {"compile_ms", summary(compile_ms)},
              {"mask_us_all", summary(all)},
              {"mask_us_cold", summary(cold_us)},
              {"mask_us_warm", summary(warm_us)},
              {"mask_us_steady", summary(steady_us)},
              {"mask_us_all_wall", summary(wall_us)},
              {"node_mask_first_use_us", summary(node_mask_us)},
              {"tokens_per_walk", summary(walk_tokens)},
              {"unfinished_walks", unfinished},
              {"mask_errors", mask_errors},
              {"region_cache", {{"entries", stats.entries}, {"bytes", stats.bytes}, {"hits", stats.hits}, {"misses", stats.misses}}},
              {"per_schema", per_schema}};
    report["tokenizers"].push_back(t);
    Json brief = t;
    brief.erase("per_schema");
    std::fprintf(stderr, "%s\n", brief.dump(2).c_str());
  }
  std::string text = report.dump(2);
  std::printf("%s\n", text.c_str());
  if (!out_path.empty()) {
    std::ofstream out(out_path);
    out << text << "\n";
  }
  return 0;
}
