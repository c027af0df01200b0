// kr-serve generate: one prompt through the Engine (the server's engine, its
// scheduler and step loop) on the CPU backend, or on CUDA with --device cuda
// when built with it. The prompt is admitted as the server admits one
// (admit_prompt: the chat template with --chat, BOS unless present, one
// context check).
//
// --json prints {"ids": generated ids (an EOS that stopped generation included),
// "text": their decoding without special tokens (null without a tokenizer),
// "prompt_ids": the prompt as fed, "logprobs": [...] only with --logprobs}.
//
// Sampling flags not given fall back to the model's generation_config.json.
// Exit codes: 0 ok, 2 bad arguments, 1 model/tokenizer/runtime failure.
#include <algorithm>
#include <condition_variable>
#include <functional>
#include <type_traits>
#include <cstdio>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/cli.h"
#include "app/commands.h"
#include "app/generate_prompt.h"
#include "backend/backend.h"
#include "base/clock.h"
#include "base/parse_number.h"
#include "engine/engine.h"
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
  bool no_overlap_decode = false;
  int32_t threads = 0;
  bool dummy_weights = false;
  std::string arch;
  std::string device = "cpu";
  std::string kv_cache_dtype = "auto";
};

// A flag whose absence means "the model's default" (generation_config.json).
template <typename T>
std::function<std::optional<std::string>(const std::string&)> optional_number(std::optional<T>* out, double lo,
                                                                               double hi, bool lo_open) {
  return [out, lo, hi, lo_open](const std::string& v) -> std::optional<std::string> {
    double d = 0;
    if (!parse_double(v, lo, hi, &d) || (lo_open && d == lo) || (std::is_integral_v<T> && d != static_cast<int64_t>(d)))
    {
      char range[64];
      std::snprintf(range, sizeof range, "%s%g, %g]", lo_open ? "(" : "[", lo, hi);
      return std::string("expected ") + (std::is_integral_v<T> ? "an integer" : "a number") + " in " + range;
    }
    *out = static_cast<T>(d);
    return std::nullopt;
  };
}

FlagSet generate_flags(GenerateArgs* a) {
  FlagSet f("kr-serve generate", "(--prompt TEXT [--chat] | --ids 1,2,3) [options]");
  f.string("model", "DIR", &a->model_dir, "Hugging Face model folder").default_text("the bundled models/tiny-llama3");
  f.custom("prompt", "TEXT", "none", "text prompt (special tokens parsed; BOS added unless present)",
           [a](const std::string& v) -> std::optional<std::string> {
             a->prompt = v;
             return std::nullopt;
           });
  f.switch_("chat", &a->chat, "wrap --prompt as one user message in the model's chat template");
  f.custom("ids", "LIST", "none", "prompt token ids, comma-separated",
           [a](const std::string& v) -> std::optional<std::string> {
             std::vector<int32_t> ids;
             size_t i = 0;
             while (true) {
               const size_t comma = v.find(',', i);
               int64_t x = 0;
               if (!parse_int(v.substr(i, comma == std::string::npos ? std::string::npos : comma - i), 0,
                              std::numeric_limits<int32_t>::max(), &x))
                 return "expected non-negative integers separated by commas";
               ids.push_back(static_cast<int32_t>(x));
               if (comma == std::string::npos) break;
               i = comma + 1;
             }
             a->ids = std::move(ids);
             return std::nullopt;
           });
  f.int32("max-tokens", 1, 1 << 20, &a->max_tokens, "tokens to generate");
  f.section("sampling (absent: the model's generation_config.json, else the OpenAI default)");
  f.custom("temperature", "T", "generation_config, else 1", "0 = greedy",
           optional_number(&a->temperature, 0.0, 100.0, false));
  f.custom("top-k", "K", "generation_config, else off", "keep the K most likely tokens (0 or -1: off)",
           optional_number(&a->top_k, -1.0, 2147483647.0, false));
  f.custom("top-p", "P", "generation_config, else 1", "nucleus sampling mass in (0, 1]",
           optional_number(&a->top_p, 0.0, 1.0, true));
  f.custom("min-p", "P", "0", "drop tokens below P x the top probability",
           optional_number(&a->min_p, 0.0, 1.0, false));
  f.custom("seed", "S", "random", "seed of the request's generator (same seed, same output)",
           [a](const std::string& v) -> std::optional<std::string> {
             int64_t x = 0;
             if (!parse_int(v, 0, std::numeric_limits<int64_t>::max(), &x)) return "expected a non-negative integer";
             a->seed = static_cast<uint64_t>(x);
             return std::nullopt;
           });
  f.int32("logprobs", 0, 20, &a->logprobs, "report the chosen token's logprob and the top K").default_text("none");
  f.switch_("ignore-eos", &a->ignore_eos, "do not stop at an EOS token");
  f.section("output and device");
  f.switch_("json", &a->json_out, "print {\"ids\", \"text\", \"prompt_ids\", \"logprobs\"} as one JSON object");
#ifdef KR_HAVE_CUDA_BACKEND
  f.choice("device", {"cpu", "cuda"}, &a->device, "where the model runs");
#else
  f.choice("device", {"cpu"}, &a->device, "where the model runs (this build has no CUDA)");
#endif
  f.int32("threads", 0, 1024, &a->threads, "CPU backend threads (0: all cores)");
  f.choice("kv-cache-dtype", {"auto", "bf16", "fp8"}, &a->kv_cache_dtype,
           "KV cache elements (fp8: e4m3 with the checkpoint's k/v scales; auto: fp8 when the checkpoint declares it)");
  f.switch_("dummy-weights", &a->dummy_weights, "random weights of the configured shape (speed tests)");
  f.switch_("no-overlap-decode", &a->no_overlap_decode,
            "read each greedy step's token before launching the next (the engine's --overlap-decode off)");
  f.string("arch", "NAME", &a->arch, "built-in shape instead of DIR/config.json (llama-3.2-3b, llama-3.1-8b, qwen3-8b, qwen2.5-7b, mistral-7b-v0.3, gemma-3-4b)");
  return f;
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

// The request's events, collected for the main thread.
struct Collected {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<SampledToken> tokens;
  bool finished = false;
  FinishReason reason = FinishReason::kNone;
  Status error;
  double ttft_s = 0, e2e_s = 0;
};

}  // namespace

std::string generate_help() {
  GenerateArgs a;
  return generate_flags(&a).help();
}

int run_generate(int argc, char** argv) {
  GenerateArgs a;
  FlagSet flags = generate_flags(&a);
  if (const int rc = parse_command_line(flags, "generate", argc, argv); rc >= 0) return rc;
  if (a.prompt.has_value() == a.ids.has_value()) return usage_error(flags, "generate", "give exactly one of --prompt or --ids");
  if (a.chat && !a.prompt) return usage_error(flags, "generate", "--chat needs --prompt");
  if (!a.arch.empty() && !model_config_preset(a.arch).ok())
    return usage_error(flags, "generate", "unknown --arch '" + a.arch + "' (known: llama-3.2-3b)");
  if (a.model_dir.empty()) a.model_dir = default_model_dir();

  // Tokenizer and config first: a bad folder fails before the (possibly slow) model load.
  std::unique_ptr<PromptCodec> codec;
  {
    auto c = PromptCodec::load(a.model_dir);
    if (c.ok()) {
      codec = std::move(c).value();
    } else if (a.prompt) {
      return fail(c.status());  // with --ids the tokenizer is optional (only for "text")
    }
  }
  if (a.chat && !codec->has_chat_template()) return fail(FailedPrecondition(codec->config_path() + ": no chat_template"));
  auto cfg = a.arch.empty() ? load_model_config(a.model_dir) : model_config_preset(a.arch);
  if (!cfg.ok()) return fail(cfg.status());

  // Admission against the model's context; the KV cache is then sized to fit it.
  PromptContext pctx = codec ? codec->context(cfg->vocab_size, cfg->max_position_embeddings)
                             : PromptContext{};
  pctx.vocab_size = cfg->vocab_size;
  pctx.max_model_len = cfg->max_position_embeddings;
  ChatMessage user;
  std::vector<ChatMessage> messages;
  PromptInput in;
  if (a.chat) {
    user.role = "user";
    user.content = *a.prompt;
    messages.push_back(user);
    in.messages = &messages;
  } else if (a.prompt) {
    in.text = &*a.prompt;
  } else {
    in.ids = &*a.ids;
  }
  in.max_tokens = a.max_tokens;
  auto admitted = admit_prompt(in, pctx);
  if (!admitted.ok()) return fail(admitted.status());
  const std::vector<int32_t>& prompt_ids = admitted->ids;
  const int32_t prompt_len = static_cast<int32_t>(prompt_ids.size());

  ModelOptions opt;
  opt.arch = a.arch;
  opt.dummy_weights = a.dummy_weights;
  opt.kv_cache_dtype = parse_kv_cache_dtype(a.kv_cache_dtype).value_or(KvCacheDType::kAuto);
  opt.block_size = 16;
  opt.max_logit_rows = 1;
  opt.max_kv_tokens = static_cast<int64_t>(prompt_len) + a.max_tokens;
  opt.max_tokens_per_step = std::min(prompt_len, 2048);
  std::unique_ptr<Backend> backend;
#ifdef KR_HAVE_CUDA_BACKEND
  if (a.device == "cuda") backend = make_cuda_backend(CudaOptions{});
  if (a.device == "cuda" && !backend) return fail(FailedPrecondition("--device cuda: no usable CUDA device"));
#endif
  // The budget is only an upper bound: blocks are capped by max_kv_tokens.
  if (!backend) backend = make_cpu_backend(a.threads, size_t{1} << 40);
  auto runner = make_forward_runner(a.model_dir, std::move(backend), opt);
  if (!runner.ok()) return fail(runner.status());

  EngineConfig ec;
  ec.max_num_seqs = 1;
  ec.max_batched_tokens = opt.max_tokens_per_step;
  ec.overlap_decode = !a.no_overlap_decode;
  SteadyClock clock;
  Engine engine(runner->get(), ec, &clock, /*metrics=*/nullptr);
  Collected got;
  GenerationRequest req;
  req.id = 1;
  req.prompt_ids = prompt_ids;
  req.sampling = sampling_from(a, (*runner)->model().generation_defaults());
  req.max_tokens = admitted->max_tokens;
  req.ignore_eos = a.ignore_eos;
  req.on_event = [&got](TokenEvent&& ev) {
    std::lock_guard<std::mutex> lock(got.mu);
    for (SampledToken& t : ev.tokens) got.tokens.push_back(std::move(t));
    if (!ev.finished) return;
    got.finished = true;
    got.reason = ev.finish_reason;
    got.error = ev.error;
    got.ttft_s = ev.ttft_s;
    got.e2e_s = ev.e2e_s;
    got.cv.notify_one();
  };
  if (Status s = engine.submit(std::move(req)); !s.ok()) return fail(s);
  engine.start();
  {
    std::unique_lock<std::mutex> lock(got.mu);
    got.cv.wait(lock, [&] { return got.finished; });
  }
  engine.stop(0);
  if (got.reason == FinishReason::kError) return fail(got.error.ok() ? Internal("generation failed") : got.error);

  std::vector<int32_t> output;
  for (const SampledToken& t : got.tokens) output.push_back(t.id);
  std::optional<std::string> text;
  if (codec) text = codec->decode(output);
  if (a.json_out) {
    json j;
    j["ids"] = output;
    j["prompt_ids"] = prompt_ids;
    j["text"] = text ? json(*text) : json(nullptr);
    if (a.logprobs >= 0) {
      json lps = json::array();
      for (const SampledToken& t : got.tokens) {
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
  const double decode_s = got.e2e_s - got.ttft_s;
  std::fprintf(stderr, "prompt %d tokens, %.1f ms to first token; %zu tokens generated, %.1f tok/s decode\n",
               prompt_len, got.ttft_s * 1e3, output.size(),
               output.size() > 1 && decode_s > 0 ? static_cast<double>(output.size() - 1) / decode_s : 0.0);
  return 0;
}

}  // namespace kr
