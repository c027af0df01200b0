// kr-bench long-context: long prompts alone and next to streaming clients.
//   1. TTFT alone: prompts of each length (fresh random token ids each run, so
//      a prefix cache cannot help), one output token; the prefill's FLOPs
//      (matmuls of every token, causal attention pairs, the last row's lm_head)
//      over the TTFT, next to the 775 TFLOP/s bf16 ceiling;
//   2. mixed: `streams` clients decoding, then one prompt of mixed_prompt tokens
//      arrives: the clients' inter-token gaps (p50, p99, max) while it prefills
//      (send to its first token), their gaps just before it, and its TTFT
//      against its TTFT alone.
// Prompts are token ids through POST /v1/completions (completion_stream.h), so a
// server with dummy weights and any tokenizer serves them. Results print beside
// the targets and the figures before this work, and go to OUT_DIR/long-context.json.
// Call from one thread (it starts client threads of its own).
#pragma once

#include <string>
#include <vector>

#include "bench/kr_bench/target.h"

namespace kr::bench {

struct LongContextOptions {
  std::vector<int> lengths = {8192, 32768, 120000};
  int runs = 2;               // TTFT-alone runs per length
  int streams = 16;           // decoding clients of the mixed run
  int stream_prompt = 128;    // their prompt tokens
  int mixed_prompt = 32768;   // the prompt that arrives among them
  double steady_s = 0.5;      // the clients decode alone this long first
  // Model shape for the FLOP counts: a preset name, or "" for --model's config.json.
  std::string arch = "llama-3.2-3b";
};

int run_long_context(const CommonOptions& opts, const LongContextOptions& lc);

}  // namespace kr::bench
