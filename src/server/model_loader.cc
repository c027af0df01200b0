#include "server/model_loader.h"

#include <dirent.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "base/log.h"
#include "engine/engine.h"
#include "engine/forward_runner.h"
#include "model/hf_config.h"
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
  // Tokenizer and chat template.
  KR_ASSIGN_OR_RETURN(m->tokenizer, Tokenizer::load_from_file(spec.path + "/tokenizer.json"));
  auto tcfg = read_tokenizer_config(spec.path + "/tokenizer_config.json");
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
  m->prompt.bos_id = config.bos_token_id;
  m->prompt.vocab_size = config.vocab_size;
  m->runner = std::move(runner).value();
  m->engine = std::make_unique<Engine>(m->runner.get(), engine_config, settings.clock, metrics);
  m->prompt.max_model_len = m->engine->max_model_len();
  m->engine->start();
  m->summary = "max_model_len " + std::to_string(m->prompt.max_model_len) + ", " + std::to_string(kv_blocks) +
               " KV blocks";
  return m;
}

}  // namespace kr
