#include "server/model_loader.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

#include "backend/backend.h"
#include "base/log.h"
#include "engine/engine.h"
#include "engine/forward_runner.h"
#include "model/hf_config.h"
#include "server/grammar_vocab.h"
#include "tokenizer/chat_prompt.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#ifdef KR_HAVE_CUDA_BACKEND
#include "backend/cuda/cuda_backend.h"
#endif

namespace kr {
namespace {

StatusOr<std::unique_ptr<Backend>> make_backend(const ModelLoaderSettings& s, double share) {
  const auto kv_bytes = static_cast<size_t>(static_cast<double>(s.kv_cache_mb << 20) * share);
#ifdef KR_HAVE_CUDA_BACKEND
  if (will_use_cuda(s.backend)) {
    CudaOptions options;
    options.memory_fraction = s.gpu_memory_fraction;
    options.pdl = s.cuda_pdl;
    options.flash_prefill_variant = s.cuda_flash_prefill_variant;
    options.flash_prefill_short_max_keys = s.cuda_flash_prefill_short_max_keys;
    options.decode_stack_kernel = s.cuda_decode_stack_kernel;
    if (s.device_budget_bytes > 0)
      options.memory_budget_bytes = static_cast<size_t>(static_cast<double>(s.device_budget_bytes) * share);
    auto b = make_cuda_backend(options);
    if (b) return b;
    if (s.backend == "cuda") return FailedPrecondition("--backend cuda: no usable CUDA device");
  }
#else
  if (s.backend == "cuda") return FailedPrecondition("--backend cuda: this build has no CUDA backend");
#endif
  return make_cpu_backend(s.threads, kv_bytes);
}

// The model's host tier: --kv-offload-gb over one block's bytes (all layers, K and V).
Status init_kv_offload(const ModelSpec& spec, const EngineConfig& e, ForwardRunner* runner) {
  if (e.kv_offload_gb <= 0) return Status::Ok();
  const int64_t block_bytes = runner->kv_block_bytes();
  const double slots = e.kv_offload_gb * double(int64_t{1} << 30) / static_cast<double>(block_bytes);
  if (slots < 1)
    return InvalidArgument("model '" + spec.name + "': --kv-offload-gb is smaller than one KV block (" +
                           std::to_string(block_bytes) + " bytes)");
  const int32_t n = static_cast<int32_t>(std::min(slots, double(INT32_MAX)));
  KR_RETURN_IF_ERROR(runner->init_host_tier(n));
  KR_LOG(kInfo, "model '%s': KV host tier of %d blocks x %lld bytes (%.1f GiB)%s", spec.name.c_str(), n,
         static_cast<long long>(block_bytes), e.kv_offload_gb,
         runner->model().backend().name() == "cpu" ? " in plain memory, copied synchronously" : ", pinned");
  return Status::Ok();
}

// The grammar compiler over the model's vocabulary, the tool-call format and
// the reasoning parser (settings, else what the chat template teaches).
StatusOr<StructuredOutputConfig> make_structured_config(const ModelLoaderSettings& a, const std::string& model_name,
                                                        const Tokenizer& tok, const ChatPromptBuilder* chat,
                                                        const std::string& chat_template, int32_t vocab_size,
                                                        std::span<const int32_t> eos_ids) {
  StructuredOutputConfig s;
  KR_ASSIGN_OR_RETURN(auto vocab, make_grammar_vocabulary(tok, vocab_size, eos_ids));
  s.compiler = std::make_shared<grammar::GrammarCompiler>(std::move(vocab));
  if (a.tool_call_parser == "auto") {
    s.tool_format = detect_tool_call_format(chat_template);
  } else if (a.tool_call_parser == "llama3_json") {
    s.tool_format = ToolCallFormat::kLlama3Json;
  } else if (a.tool_call_parser == "hermes") {
    s.tool_format = ToolCallFormat::kHermes;
  } else if (a.tool_call_parser == "mistral") {
    s.tool_format = ToolCallFormat::kMistral;
  } else if (a.tool_call_parser != "none") {
    return InvalidArgument("--tool-call-parser: expected auto, none, llama3_json, hermes or mistral, got '" +
                           a.tool_call_parser + "'");
  }
  if (auto id = tok.token_to_id("[TOOL_CALLS]"); id && tok.is_special(*id)) s.mistral_tool_calls_token = *id;
  if (a.reasoning_parser == "auto") {
    std::string rendered;
    if (chat != nullptr) {
      ChatMessage user;
      user.role = "user";
      user.content = "Hi";
      ChatPromptOptions o;
      auto r = chat->render({user}, o);
      if (r.ok()) rendered = *r;
    }
    s.reasoning = detect_reasoning_parser(chat_template, rendered);
  } else if (a.reasoning_parser != "none") {
    KR_ASSIGN_OR_RETURN(s.reasoning, parse_reasoning_parser_name(a.reasoning_parser));
  }
  KR_LOG(kInfo, "model '%s': structured outputs over a %d-token vocabulary; tool calls: %s; reasoning parser: %s",
         model_name.c_str(), vocab_size, s.tool_format ? tool_call_format_name(*s.tool_format) : "none",
         s.reasoning == ReasoningParserKind::kNone ? "none" : reasoning_parser_name(s.reasoning));
  return s;
}

}  // namespace

bool will_use_cuda(const std::string& backend) {
#ifdef KR_HAVE_CUDA_BACKEND
  return backend == "cuda" || (backend == "auto" && cuda_device_available());
#else
  (void)backend;
  return false;
#endif
}

bool device_memory(int64_t* free_bytes, int64_t* total_bytes) {
#ifdef KR_HAVE_CUDA_BACKEND
  size_t f = 0, t = 0;
  if (!cuda_device_memory(0, &f, &t)) return false;
  *free_bytes = static_cast<int64_t>(f);
  *total_bytes = static_cast<int64_t>(t);
  return true;
#else
  (void)free_bytes;
  (void)total_bytes;
  return false;
#endif
}

uint64_t model_weight_bytes(const ModelSpec& spec) {
  if (spec.dummy_weights) {
    auto c = spec.arch.empty() ? load_model_config(spec.path) : model_config_preset(spec.arch);
    if (!c.ok()) return 0;
    const uint64_t H = static_cast<uint64_t>(c->hidden_size), I = static_cast<uint64_t>(c->intermediate_size);
    const uint64_t D = static_cast<uint64_t>(c->head_dim), V = static_cast<uint64_t>(c->vocab_size);
    const uint64_t q = static_cast<uint64_t>(c->num_attention_heads), kv = static_cast<uint64_t>(c->num_key_value_heads);
    const uint64_t layer = (q + 2 * kv) * D * H + q * D * H + 3 * H * I + 2 * H;
    const uint64_t params = V * H * (c->tie_word_embeddings ? 1 : 2) + static_cast<uint64_t>(c->num_hidden_layers) * layer;
    return params * 2;  // bf16
  }
  uint64_t bytes = 0;
  DIR* d = ::opendir(spec.path.c_str());
  if (d == nullptr) return 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() < 12 || name.compare(name.size() - 12, 12, ".safetensors") != 0) continue;
    struct stat st {};
    if (::stat((spec.path + "/" + name).c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_size);
  }
  ::closedir(d);
  return bytes;
}

StatusOr<std::unique_ptr<LoadedModel>> load_served_model(const ModelSpec& spec, double memory_share, Metrics* metrics,
                                                         const ModelLoaderSettings& settings) {
  auto m = std::make_unique<LoadedModel>();
  // Tokenizer (its config decides the special tokens around a plain prompt) and chat template.
  auto tcfg = read_tokenizer_config(spec.path + "/tokenizer_config.json");
  if (!tcfg.ok() && tcfg.status().code() != StatusCode::kNotFound) return tcfg.status();
  KR_ASSIGN_OR_RETURN(m->tokenizer,
                      Tokenizer::load_from_file(spec.path + "/tokenizer.json", tcfg.ok() ? &*tcfg : nullptr));
  if (tcfg.ok()) {
    KR_ASSIGN_OR_RETURN(m->chat, make_chat_prompt_builder(m->tokenizer.get(), *tcfg));
  }
  if (!m->chat) {
    KR_LOG(kWarn, "model '%s': no chat template in %s/tokenizer_config.json: its /v1/chat/completions is disabled",
           spec.name.c_str(), spec.path.c_str());
  }
  // Backend, weights, KV pool (EngineConfig::max_model_len caps the context).
  KR_ASSIGN_OR_RETURN(auto backend, make_backend(settings, memory_share));
  EngineConfig engine_config = spec.engine;
  if (spec.max_model_len > 0) engine_config.max_model_len = spec.max_model_len;
  ModelOptions mo;
  mo.block_size = 16;
  mo.max_tokens_per_step = engine_config.max_batched_tokens;
  mo.max_logit_rows = engine_config.max_num_seqs;
  mo.dummy_weights = spec.dummy_weights;
  mo.arch = spec.arch;
  mo.kv_cache_dtype = static_cast<KvCacheDType>(engine_config.kv_cache_dtype);
  auto runner = make_forward_runner(spec.path, std::move(backend), mo);
  if (!runner.ok()) {
    if (runner.status().code() == StatusCode::kResourceExhausted && memory_share < 1.0) {
      return Status(runner.status().code(), runner.status().message() + " (the model's memory share is " +
                                                std::to_string(memory_share) + "; give it a larger memory_share)");
    }
    return runner.status();
  }
  const ModelConfig& config = (*runner)->model().config();
  const int32_t kv_blocks = (*runner)->num_kv_blocks();
  m->prompt.tokenizer = m->tokenizer.get();
  m->prompt.chat = m->chat.get();
  m->prompt.vocab_size = config.vocab_size;
  KR_RETURN_IF_ERROR(init_kv_offload(spec, engine_config, runner->get()));
  KR_ASSIGN_OR_RETURN(m->structured,
                      make_structured_config(settings, spec.name, *m->tokenizer, m->chat.get(),
                                             tcfg.ok() ? tcfg->chat_template : std::string(), config.vocab_size,
                                             (*runner)->eos_ids()));
  m->runner = std::move(runner).value();
  m->engine = std::make_unique<Engine>(m->runner.get(), engine_config, settings.clock, metrics);
  m->prompt.max_model_len = m->engine->max_model_len();
  m->engine->start();
  char step_budget[64];
  if (engine_config.max_step_ms > 0)
    std::snprintf(step_budget, sizeof(step_budget), "max_step_ms %g", engine_config.max_step_ms);
  else
    std::snprintf(step_budget, sizeof(step_budget), "max_step_ms off");
  m->summary = "max_model_len " + std::to_string(m->prompt.max_model_len) + ", " + std::to_string(kv_blocks) +
               " KV blocks, " + step_budget;
  return m;
}

}  // namespace kr
