// kr-serve generate: one prompt through a ForwardRunner on the CPU backend, one
// token at a time through the paged KV cache after the prefill.
//
// --json prints {"ids": generated ids (an EOS that stopped generation included),
// "text": their decoding without special tokens (null without a tokenizer),
// "prompt_ids": the prompt as fed, "logprobs": [...] only with --logprobs}.
//
//   kr-serve generate --model DIR (--prompt TEXT [--chat] | --ids 1,2,3) [--max-tokens N]
//     [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--logprobs K]
//     [--ignore-eos] [--json] [--threads N] [--dummy-weights] [--arch llama-3.2-3b]
//
// Sampling flags not given fall back to the model's generation_config.json.
// Exit codes: 0 ok, 2 bad arguments, 1 model/tokenizer/runtime failure.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/generate_prompt.h"
#include "backend/backend.h"
#include "base/clock.h"
#include "engine/forward_runner.h"
#ifdef KR_HAVE_CUDA_BACKEND
#include "backend/cuda/cuda_backend.h"
#endif

namespace kr {
namespace {

using json = nlohmann::json;

struct GenerateArgs {
  std::string model_dir;
  std::optional<std::string> prompt;
  std::optional<std::vector<int32_t>> ids;
  bool chat = false;
  int32_t max_tokens = 64;
  std::optional<float> temperature, top_p, min_p;
  std::optional<int32_t> top_k;
  std::optional<uint64_t> seed;
  int32_t logprobs = -1;
  bool ignore_eos = false;
  bool json_out = false;
  int threads = 0;
  bool dummy_weights = false;
  std::string arch;
  std::string device = "cpu";
};

void print_usage() {
  std::fprintf(stderr,
               "usage: kr-serve generate [--model DIR] (--prompt TEXT [--chat] | --ids 1,2,3)\n"
               "         [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P]\n"
               "         [--seed S] [--logprobs K] [--ignore-eos] [--json] [--threads N]\n"
               "         [--dummy-weights] [--arch llama-3.2-3b]\n"
               "  --model DIR       Hugging Face Llama folder (default: the bundled tiny model)\n"
               "  --prompt TEXT     text prompt (BOS added unless present; special tokens parsed)\n"
               "  --chat            wrap --prompt as one user message in the model's chat template\n"
               "  --ids LIST        prompt token ids, comma-separated\n"
               "  --max-tokens N    tokens to generate (default 64)\n"
               "  --logprobs K      report the chosen token's logprob and the top K (0..20)\n"
               "  --ignore-eos      do not stop at an EOS token\n"
               "  --json            print {\"ids\", \"text\", \"logprobs\"} as one JSON object\n"
               "  --threads N       CPU threads (default: all)\n"
               "  --dummy-weights   random weights of the configured shape (speed tests)\n"
               "  --arch NAME       built-in shape instead of DIR/config.json (llama-3.2-3b, llama-3.1-8b,\n"
               "                    qwen3-8b, qwen2.5-7b, mistral-7b-v0.3, gemma-3-4b)\n"
               "  --device D        cpu (default) or cuda (when built with CUDA)\n");
}

bool parse_int64(const char* s, int64_t lo, int64_t hi, int64_t* out) {
  if (*s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_float(const char* s, float lo, float hi, float* out) {
  if (*s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const float v = std::strtof(s, &end);
  if (errno != 0 || *end != '\0' || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

bool parse_ids(const std::string& s, std::vector<int32_t>* out) {
  size_t i = 0;
  while (i <= s.size()) {
    const size_t comma = s.find(',', i);
    const std::string item = s.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    int64_t v = 0;
    if (!parse_int64(item.c_str(), 0, std::numeric_limits<int32_t>::max(), &v)) return false;
    out->push_back(static_cast<int32_t>(v));
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return !out->empty();
}

// Returns 0 to go on, 2 on a usage error (already printed), -1 for --help.
int parse_args(int argc, char** argv, GenerateArgs* a) {
  auto bad = [](const std::string& msg) {
    std::fprintf(stderr, "kr-serve generate: %s\n", msg.c_str());
    print_usage();
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return -1;
    if (flag == "--chat") { a->chat = true; continue; }
    if (flag == "--ignore-eos") { a->ignore_eos = true; continue; }
    if (flag == "--json") { a->json_out = true; continue; }
    if (flag == "--dummy-weights") { a->dummy_weights = true; continue; }
    static const char* kValued[] = {"--model", "--prompt", "--ids", "--max-tokens", "--temperature", "--top-k",
                                    "--top-p", "--min-p", "--seed", "--logprobs", "--threads", "--arch", "--device"};
    bool known = false;
    for (const char* k : kValued) known |= (flag == k);
    if (!known) return bad("unknown option '" + flag + "'");
    if (i + 1 >= argc) return bad("option " + flag + " needs a value");
    const char* v = argv[++i];
    int64_t n = 0;
    float f = 0;
    if (flag == "--model") {
      a->model_dir = v;
    } else if (flag == "--prompt") {
      a->prompt = v;
    } else if (flag == "--ids") {
      std::vector<int32_t> ids;
      if (!parse_ids(v, &ids)) return bad("--ids must be non-negative integers separated by commas");
      a->ids = std::move(ids);
    } else if (flag == "--max-tokens") {
      if (!parse_int64(v, 1, 1 << 20, &n)) return bad("--max-tokens must be an integer >= 1");
      a->max_tokens = static_cast<int32_t>(n);
    } else if (flag == "--temperature") {
      if (!parse_float(v, 0.0f, 100.0f, &f)) return bad("--temperature must be a number in [0, 100]");
      a->temperature = f;
    } else if (flag == "--top-k") {
      if (!parse_int64(v, -1, std::numeric_limits<int32_t>::max(), &n)) return bad("--top-k must be an integer >= -1");
      a->top_k = static_cast<int32_t>(n);
    } else if (flag == "--top-p") {
      if (!parse_float(v, 0.0f, 1.0f, &f) || f == 0.0f) return bad("--top-p must be in (0, 1]");
      a->top_p = f;
    } else if (flag == "--min-p") {
      if (!parse_float(v, 0.0f, 1.0f, &f)) return bad("--min-p must be in [0, 1]");
      a->min_p = f;
    } else if (flag == "--seed") {
      if (!parse_int64(v, 0, std::numeric_limits<int64_t>::max(), &n)) return bad("--seed must be a non-negative integer");
      a->seed = static_cast<uint64_t>(n);
    } else if (flag == "--logprobs") {
      if (!parse_int64(v, 0, 20, &n)) return bad("--logprobs must be an integer in [0, 20]");
      a->logprobs = static_cast<int32_t>(n);
    } else if (flag == "--threads") {
      if (!parse_int64(v, 0, 1024, &n)) return bad("--threads must be an integer in [0, 1024]");
      a->threads = static_cast<int>(n);
    } else if (flag == "--arch") {
      a->arch = v;
    } else if (flag == "--device") {
      a->device = v;
#ifdef KR_HAVE_CUDA_BACKEND
      if (a->device != "cpu" && a->device != "cuda") return bad("--device must be cpu or cuda");
#else
      if (a->device != "cpu") return bad("--device must be cpu (built without CUDA)");
#endif
    }
  }
  if (a->prompt.has_value() == a->ids.has_value()) return bad("give exactly one of --prompt or --ids");
  if (a->chat && !a->prompt) return bad("--chat needs --prompt");
  if (!a->arch.empty()) {
    auto preset = model_config_preset(a->arch);
    if (!preset.ok()) return bad(preset.status().message());
  }
  if (a->model_dir.empty()) a->model_dir = default_model_dir();
  return 0;
}

SamplingParams sampling_from(const GenerateArgs& a, const GenerationDefaults& gen) {
  SamplingParams p;
  p.temperature = a.temperature.value_or(gen.temperature.value_or(1.0f));
  p.top_p = a.top_p.value_or(gen.top_p.value_or(1.0f));
  p.top_k = a.top_k.value_or(gen.top_k.value_or(0));
  p.min_p = a.min_p.value_or(0.0f);
  p.seed = a.seed;
  p.logprobs = a.logprobs;
  return p;
}

int fail(const Status& s) {
  std::fprintf(stderr, "kr-serve generate: %s\n", s.to_string().c_str());
  return 1;
}

}  // namespace

int run_generate(int argc, char** argv) {
  GenerateArgs a;
  const int rc = parse_args(argc, argv, &a);
  if (rc == -1) {
    print_usage();
    return 0;
  }
  if (rc != 0) return rc;

  // Prompt ids first: a bad tokenizer fails before the (possibly slow) model load.
  std::unique_ptr<PromptCodec> codec;
  std::vector<int32_t> prompt_ids;
  if (a.prompt) {
    auto c = PromptCodec::load(a.model_dir);
    if (!c.ok()) return fail(c.status());
    codec = std::move(c).value();
  } else {
    auto c = PromptCodec::load(a.model_dir);  // optional with --ids: only for "text"
    if (c.ok()) codec = std::move(c).value();
    prompt_ids = *a.ids;
  }

  ModelOptions opt;
  opt.arch = a.arch;
  opt.dummy_weights = a.dummy_weights;
  opt.block_size = 16;
  opt.max_logit_rows = 1;
  if (a.prompt) {
    // The BOS id comes from the config; read it through a cheap config load.
    auto cfg = a.arch.empty() ? load_model_config(a.model_dir) : model_config_preset(a.arch);
    if (!cfg.ok()) return fail(cfg.status());
    if (a.chat) {
      auto ids = codec->encode_chat_user(*a.prompt);
      if (!ids.ok()) return fail(ids.status());
      prompt_ids = std::move(ids).value();
    } else {
      prompt_ids = codec->encode_plain(*a.prompt, cfg->bos_token_id);
    }
  }
  if (prompt_ids.empty()) return fail(InvalidArgument("the prompt has no tokens"));
  const int64_t total = static_cast<int64_t>(prompt_ids.size()) + a.max_tokens;
  opt.max_kv_tokens = total;
  opt.max_tokens_per_step = static_cast<int32_t>(std::min<int64_t>(prompt_ids.size(), 2048));

  // The budget is only an upper bound: blocks are capped by max_kv_tokens.
  std::unique_ptr<Backend> backend;
#ifdef KR_HAVE_CUDA_BACKEND
  if (a.device == "cuda") backend = make_cuda_backend(CudaOptions{});
#endif
  if (!backend) backend = make_cpu_backend(a.threads, size_t{1} << 40);
  auto runner_or = make_forward_runner(a.model_dir, std::move(backend), opt);
  if (!runner_or.ok()) return fail(runner_or.status());
  ForwardRunner& runner = **runner_or;
  if (total > runner.max_model_len())
    return fail(OutOfRange("prompt (" + std::to_string(prompt_ids.size()) + ") + max tokens (" +
                           std::to_string(a.max_tokens) + ") exceed the model's context of " +
                           std::to_string(runner.max_model_len())));

  const SamplingParams sp = sampling_from(a, runner.model().generation_defaults());
  std::mt19937_64 rng(sp.seed ? *sp.seed : std::random_device{}());
  std::vector<int32_t> blocks((total + runner.block_size() - 1) / runner.block_size());
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = static_cast<int32_t>(i);

  std::vector<int32_t> output;
  std::vector<SampledToken> tokens;
  std::vector<SampledToken> sampled;
  const auto eos = runner.eos_ids();
  const int64_t t0 = steady_now_ns();
  int64_t first_token_ns = 0;
  int32_t pos = 0;
  std::vector<int32_t> feed;
  while (static_cast<int32_t>(output.size()) < a.max_tokens) {
    // Prefill in chunks of max_tokens_per_step, then one token per step.
    if (pos < static_cast<int32_t>(prompt_ids.size())) {
      const int32_t n = std::min<int32_t>(runner.max_tokens_per_step(), static_cast<int32_t>(prompt_ids.size()) - pos);
      feed.assign(prompt_ids.begin() + pos, prompt_ids.begin() + pos + n);
    } else {
      feed.assign(1, output.back());
    }
    SeqStep st;
    st.seq_id = 0;
    st.tokens = feed;
    st.start_pos = pos;
    st.block_table = blocks;
    st.sample = pos + static_cast<int32_t>(feed.size()) >= static_cast<int32_t>(prompt_ids.size());
    st.sampling = &sp;
    st.prompt_ids = prompt_ids;
    st.output_ids = output;
    st.rng = &rng;
    Status s = runner.step(std::span<const SeqStep>(&st, 1), &sampled);
    if (!s.ok()) return fail(s);
    pos += static_cast<int32_t>(feed.size());
    if (!st.sample) continue;
    if (sampled.size() != 1) return fail(Internal("runner returned no token"));
    if (sampled[0].non_finite) return fail(Internal("the model produced non-finite logits"));
    if (output.empty()) first_token_ns = steady_now_ns();
    output.push_back(sampled[0].id);
    tokens.push_back(sampled[0]);
    bool is_eos = false;
    for (int32_t e : eos) is_eos |= (e == sampled[0].id);
    if (is_eos && !a.ignore_eos) break;
  }
  const int64_t t1 = steady_now_ns();

  std::optional<std::string> text;
  if (codec) text = codec->decode(output);
  if (a.json_out) {
    json j;
    j["ids"] = output;
    j["prompt_ids"] = prompt_ids;
    j["text"] = text ? json(*text) : json(nullptr);
    if (a.logprobs >= 0) {
      json lps = json::array();
      for (const SampledToken& t : tokens) {
        json top = json::array();
        for (const auto& [id, lp] : t.top) top.push_back(json::array({id, lp}));
        lps.push_back({{"id", t.id}, {"logprob", t.logprob}, {"top", top}});
      }
      j["logprobs"] = lps;
    }
    std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  } else if (text) {
    std::printf("%s\n", text->c_str());
  } else {
    for (size_t i = 0; i < output.size(); ++i) std::printf("%s%d", i ? "," : "", output[i]);
    std::printf("\n");
  }
  const double prefill_s = static_cast<double>(first_token_ns - t0) / 1e9;
  const double decode_s = static_cast<double>(t1 - first_token_ns) / 1e9;
  std::fprintf(stderr, "prompt %zu tokens, %.1f ms to first token; %zu tokens generated, %.1f tok/s decode\n",
               prompt_ids.size(), prefill_s * 1e3, output.size(),
               output.size() > 1 ? static_cast<double>(output.size() - 1) / decode_s : 0.0);
  return 0;
}

}  // namespace kr
