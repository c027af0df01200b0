#include "server/serve_main.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "backend/backend.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/engine.h"
#include "engine/forward_runner.h"
#include "metrics/metrics.h"
#include "server/http_server.h"
#include "server/grammar_vocab.h"
#include "server/openai_server.h"
#include "server/structured_output.h"
#include "tokenizer/chat_prompt.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#ifdef KR_HAVE_CUDA_BACKEND
#include "backend/cuda/cuda_backend.h"
#endif

namespace kr {
namespace {

// Streaming connections each hold a descriptor: lift the soft limit to the hard one.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Request bodies of up to the body limit come and go on several threads. glibc raises its
// mmap threshold after the first large free, after which such buffers stay in the heap
// arenas and resident memory ratchets up under hostile traffic. A fixed threshold keeps
// every buffer over 256 KiB in its own mapping, returned to the system when freed.
void bound_allocator_retention() {
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
}

StatusOr<std::unique_ptr<Backend>> make_backend(const ServeOptions& a) {
  const size_t kv_bytes = static_cast<size_t>(a.kv_cache_mb) << 20;
#ifdef KR_HAVE_CUDA_BACKEND
  if (a.backend == "cuda" || (a.backend == "auto" && cuda_device_available())) {
    CudaOptions options;
    options.memory_fraction = a.gpu_memory_fraction;
    options.pdl = a.cuda_pdl == "1";
    auto b = make_cuda_backend(options);
    if (b) return b;
    if (a.backend == "cuda") return FailedPrecondition("--backend cuda: no usable CUDA device");
  }
#else
  if (a.backend == "cuda") return FailedPrecondition("--backend cuda: this build has no CUDA backend");
#endif
  return make_cpu_backend(a.threads, kv_bytes);
}

// The grammar compiler over the model's vocabulary, the tool-call format and
// the reasoning parser (flags, else what the chat template teaches).
StatusOr<StructuredOutputConfig> make_structured_config(const ServeOptions& a, const Tokenizer& tok,
                                                        const ChatPromptBuilder* chat, const std::string& chat_template,
                                                        int32_t vocab_size, std::span<const int32_t> eos_ids) {
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
  KR_LOG(kInfo, "structured outputs: %d-token vocabulary; tool calls: %s; reasoning parser: %s", vocab_size,
         s.tool_format ? tool_call_format_name(*s.tool_format) : "none",
         s.reasoning == ReasoningParserKind::kNone ? "none" : reasoning_parser_name(s.reasoning));
  return s;
}

int fail(const Status& s) {
  std::fprintf(stderr, "kr-serve serve: %s\n", s.to_string().c_str());
  return 1;
}

}  // namespace

int serve(const ServeOptions& a) {
  const EngineConfig& engine_config = a.engine;

  // Signals are taken by sigwait on this thread only: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  bound_allocator_retention();

  SteadyClock clock;
  ServerContext ctx;
  ctx.served_model_name = a.served_model_name;
  ctx.api_key = a.api_key;
  ctx.cors_origin = a.cors_origin;
  ctx.webui = !a.no_webui;
  ctx.created_unix_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  MetricsOptions mopt;
  mopt.vllm_names = a.metrics_vllm_names;
  mopt.model_name = a.served_model_name;
  Metrics metrics(&clock, mopt);
  ctx.metrics = &metrics;
  auto event_pool = std::make_unique<TaskPool>(2);
  ctx.event_pool = event_pool.get();

  // Listen first: /health answers 503 while the model loads.
  OpenAIServer api(&ctx);
  HttpServerOptions hopt;
  hopt.read_timeout_s = a.read_timeout_s;
  hopt.worker_threads = a.http_workers;
  HttpServer http(
      hopt, [&api](int tag, HttpRequest&& r, std::shared_ptr<ResponseWriter> w) { api.handle(tag, std::move(r), std::move(w)); },
      http_error_response);
  auto port = http.listen(a.host, a.port, kMainListener);
  if (!port.ok()) return fail(port.status());
  if (a.metrics_export) {
    auto mport = http.listen(a.host, a.metrics_port, kMetricsListener);
    if (!mport.ok()) return fail(mport.status());
    KR_LOG(kInfo, "metrics on http://%s:%d/metrics", a.host.c_str(), *mport);
  }
  http.start();
  KR_LOG(kInfo, "listening on http://%s:%d (model '%s' loading from %s)", a.host.c_str(), *port,
         a.served_model_name.c_str(), a.model_dir.c_str());

  // Tokenizer (its config decides the special tokens around a plain prompt) and chat template.
  auto tcfg = read_tokenizer_config(a.model_dir + "/tokenizer_config.json");
  if (!tcfg.ok() && tcfg.status().code() != StatusCode::kNotFound) return fail(tcfg.status());
  auto tok = Tokenizer::load_from_file(a.model_dir + "/tokenizer.json", tcfg.ok() ? &*tcfg : nullptr);
  if (!tok.ok()) return fail(tok.status());
  std::unique_ptr<ChatPromptBuilder> chat;
  if (tcfg.ok()) {
    auto made = make_chat_prompt_builder(tok->get(), *tcfg);
    if (!made.ok()) return fail(made.status());
    chat = std::move(made).value();
  }
  if (!chat) {
    KR_LOG(kWarn, "no chat template in %s/tokenizer_config.json: /v1/chat/completions is disabled", a.model_dir.c_str());
  }

  // Model and engine (EngineConfig::max_model_len caps the context: --max-model-len).
  auto backend = make_backend(a);
  if (!backend.ok()) return fail(backend.status());
  ModelOptions mo;
  mo.block_size = 16;
  mo.max_tokens_per_step = engine_config.max_batched_tokens;
  mo.max_logit_rows = engine_config.max_num_seqs;
  mo.dummy_weights = a.dummy_weights;
  mo.arch = a.arch;
  auto runner = make_forward_runner(a.model_dir, std::move(backend).value(), mo);
  if (!runner.ok()) return fail(runner.status());
  auto engine = std::make_unique<Engine>(runner->get(), engine_config, &clock, &metrics);
  const int32_t max_len = engine->max_model_len();
  ctx.engine = engine.get();
  ctx.limits.vocab_size = (*runner)->model().config().vocab_size;
  ctx.prompt.tokenizer = tok->get();
  ctx.prompt.chat = chat.get();
  ctx.prompt.vocab_size = ctx.limits.vocab_size;
  ctx.prompt.max_model_len = max_len;
  auto structured = make_structured_config(a, **tok, chat.get(), tcfg.ok() ? tcfg->chat_template : std::string(),
                                           ctx.limits.vocab_size, (*runner)->eos_ids());
  if (!structured.ok()) return fail(structured.status());
  ctx.structured = std::move(structured).value();
  engine->start();
  ctx.ready.store(true, std::memory_order_release);
  KR_LOG(kInfo, "ready: model '%s', max_model_len %d, %d KV blocks", a.served_model_name.c_str(), max_len,
         (*runner)->num_kv_blocks());

  int sig = 0;
  sigwait(&sigs, &sig);
  KR_LOG(kInfo, "signal %d: draining (up to %.1f s)", sig, a.shutdown_timeout_s);
  ctx.draining.store(true);
  http.stop_accepting();
  engine->stop(a.shutdown_timeout_s);  // finishes or cancels every request
  // Let the last events reach their clients.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (http.active_exchanges() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http.stop();
  event_pool.reset();
  ctx.ready.store(false);
  engine.reset();
  KR_LOG(kInfo, "stopped");
  return 0;
}

}  // namespace kr
