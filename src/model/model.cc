#include "model/model.h"

#include <cmath>
#include <sys/stat.h>

#include "backend/dtype_convert.h"
#include "base/log.h"

namespace kr {

Model::Model(ModelConfig config, GenerationDefaults gen, std::unique_ptr<ModelWeights> weights,
                       Backend& backend, const ModelOptions& options)
    : config_(std::move(config)),
      gen_(std::move(gen)),
      weights_(std::move(weights)),
      backend_(backend),
      options_(options) {
  eos_ids_ = merged_eos_ids(config_, gen_);
  const ArchSpec& a = config_.arch;
  KR_CHECK(static_cast<int>(a.layer_attention.size()) == config_.num_hidden_layers);
  KR_CHECK(static_cast<int>(weights_->layers.size()) == config_.num_hidden_layers);
  KR_CHECK_MSG(check_forward_supports(a, "config").ok(), "Model: an ArchSpec the forward does not run");
}

namespace {

// sqrt(H) as transformers scales Gemma's embeddings: a float32 value cast to the
// embedding weights' dtype (Gemma3TextScaledWordEmbedding: embed_scale.to(weight.dtype)).
float embedding_scale(int32_t hidden, DType weight_dtype) {
  const float s = std::sqrt(static_cast<float>(hidden));
  switch (weight_dtype) {
    case DType::kBF16: return bf16_to_f32(f32_to_bf16(s));
    case DType::kF16: return f16_to_f32(f32_to_f16(s));
    default: return s;
  }
}

}  // namespace

Model::~Model() {
  for (Tensor* t : {&ids_, &residual_, &normed_, &qkv_, &attn_, &proj_, &gate_up_, &act_, &row_idx_, &last_, &logits_,
                    &normed_fp8_.codes, &normed_fp8_.scales, &act_fp8_.codes, &act_fp8_.scales, &attn_fp8_.codes,
                    &attn_fp8_.scales})
    if (t->data != nullptr) backend_.free(*t);
  for (RopeParams& r : ropes_) backend_.free(r.inv_freq);
  for (KvLayer& l : kv_) {
    backend_.free(l.k);
    backend_.free(l.v);
  }
}

void Model::warm_up_matmuls(std::span<const int32_t> step_tokens) {
  if (weights_->layers.empty()) return;
  const LayerWeights& w = weights_->layers[0];  // every layer has these shapes
  for (const int32_t T : step_tokens) {
    if (T < 1 || T > options_.max_tokens_per_step) continue;
    Tensor normed = normed_.rows(0, T), qkv = qkv_.rows(0, T), attn = attn_.rows(0, T);
    Tensor proj = proj_.rows(0, T), gate_up = gate_up_.rows(0, T), act = act_.rows(0, T);
    backend_.matmul(normed, w.qkv, qkv);
    backend_.matmul(attn, w.o, proj);
    backend_.matmul(normed, w.gate_up, gate_up);
    backend_.matmul(act, w.down, proj);
  }
  backend_.synchronize();
}

Status Model::init() {
  const ModelConfig& c = config_;
  if (options_.block_size <= 0 || options_.max_tokens_per_step <= 0 || options_.max_logit_rows <= 0)
    return InvalidArgument("block_size, max_tokens_per_step and max_logit_rows must be positive");
  const DType act = backend_.activation_dtype();
  const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const int64_t T = options_.max_tokens_per_step, R = options_.max_logit_rows;
  const int64_t bs = options_.block_size;
  // The cache's element type: auto follows the checkpoint's declared KV dtype.
  kv_dtype_ = options_.kv_cache_dtype;
  if (kv_dtype_ == KvCacheDType::kAuto) kv_dtype_ = weights_->fp8_kv_cache ? KvCacheDType::kFp8 : KvCacheDType::kBf16;
  const DType kv_elem = kv_dtype_ == KvCacheDType::kFp8 ? DType::kF8E4M3 : act;
  // RoPE tables: global layers use the config's RoPE; sliding ones their own when
  // the family gives them one (Gemma 3). ropes_ is not resized after this, so the
  // per-layer parameters below may point into it.
  const ArchSpec& a = c.arch;
  const bool own_sliding = a.sliding_rope_theta > 0.0;
  const RopeScaling* scalings[2] = {&c.rope_scaling, own_sliding ? &a.sliding_rope_scaling : &c.rope_scaling};
  const double thetas[2] = {c.rope_theta, own_sliding ? a.sliding_rope_theta : c.rope_theta};
  ropes_.resize(2);
  for (int i = 0; i < 2; ++i) {
    const std::vector<float> inv = rope_inv_freq(c.head_dim, thetas[i], *scalings[i]);
    ropes_[i].head_dim = c.head_dim;
    ropes_[i].inv_freq = backend_.alloc(DType::kF32, {static_cast<int64_t>(inv.size())});
    backend_.copy_from_host(ropes_[i].inv_freq, inv.data(), inv.size() * sizeof(float));
  }
  // Attention scale: 1/sqrt(query_pre_attn_scalar or D), times the square of the
  // RoPE's attention factor (yarn scales cos and sin, so q·k by its square).
  const float base_scale = 1.0f / std::sqrt(a.query_pre_attn_scalar > 0.0f ? a.query_pre_attn_scalar
                                                                            : static_cast<float>(c.head_dim));
  const float eps = static_cast<float>(c.rms_norm_eps);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const int r = a.layer_attention[l] == AttentionKind::kSliding ? 1 : 0;
    const LayerWeights& w = weights_->layers[l];
    QkvParams q{static_cast<int>(Hq), static_cast<int>(Hkv), &ropes_[r]};
    if (!w.qkv_bias.empty()) q.bias = &w.qkv_bias;
    if (!w.q_norm.empty()) {
      q.q_norm = RmsNorm{&w.q_norm, eps, a.norm};
      q.k_norm = RmsNorm{&w.k_norm, eps, a.norm};
    }
    layer_qkv_.push_back(q);
    const double factor = rope_attention_factor(*scalings[r]);
    AttentionParams p;
    p.q_heads = static_cast<int>(Hq);
    p.kv_heads = static_cast<int>(Hkv);
    p.head_dim = static_cast<int>(D);
    p.scale = static_cast<float>(base_scale * factor * factor);
    p.sliding_window = r == 1 ? a.sliding_window : 0;
    p.softcap = a.attn_logit_softcap;
    layer_attn_.push_back(p);
  }
  // The fused form of the decoder layers (Backend::decode_stack) for models without
  // post-norms, prepared before the KV cache takes its share of the memory (the CUDA
  // backend copies weights for it): the layers as the forward will hand them over, the
  // caches described by their element type only (kv_specs; not allocated yet).
  bool plain_layers = true;
  for (const LayerWeights& w : weights_->layers) plain_layers &= w.attn_out_norm.empty() && w.mlp_out_norm.empty();
  std::vector<KvLayer> kv_specs(plain_layers ? weights_->layers.size() : 0,
                                KvLayer{Tensor(nullptr, kv_elem, {}), Tensor(nullptr, kv_elem, {})});
  for (size_t l = 0; l < kv_specs.size(); ++l) {
    const LayerWeights& w = weights_->layers[l];
    Backend::DecodeLayer d;
    d.qkv = &w.qkv;
    d.o = &w.o;
    d.gate_up = &w.gate_up;
    d.down = &w.down;
    d.input_norm = RmsNorm{&w.input_norm, eps, a.norm};
    d.mlp_norm = RmsNorm{&w.mlp_norm, eps, a.norm};
    d.qkv_params = &layer_qkv_[l];
    d.attn_params = &layer_attn_[l];
    d.kv = &kv_specs[l];
    decode_layers_.push_back(d);
  }
  if (!decode_layers_.empty()) {
    Backend::DecodeStack s;
    s.layers = decode_layers_;
    s.final_norm = RmsNorm{&weights_->final_norm, eps, a.norm};
    s.activation = a.activation;
    backend_.prepare_decode_stack(s);
  }
  // K and V of every layer for one block.
  const size_t block_bytes = 2 * static_cast<size_t>(c.num_hidden_layers) * bs * Hkv * D * dtype_size_bytes(kv_elem);
  int64_t blocks = static_cast<int64_t>(backend_.kv_cache_budget_bytes() / block_bytes);
  if (options_.max_kv_tokens > 0) blocks = std::min<int64_t>(blocks, (options_.max_kv_tokens + bs - 1) / bs);
  blocks = std::min<int64_t>(blocks, INT32_MAX / bs);
  if (blocks <= 0)
    return ResourceExhausted("KV cache budget of " + std::to_string(backend_.kv_cache_budget_bytes()) +
                             " bytes holds no block of " + std::to_string(block_bytes) + " bytes");
  num_kv_blocks_ = static_cast<int32_t>(blocks);
  kv_cache_bytes_ = block_bytes * static_cast<size_t>(blocks);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    KvLayer layer{backend_.alloc(kv_elem, {blocks, bs, Hkv, D}), backend_.alloc(kv_elem, {blocks, bs, Hkv, D})};
    // FP8: the checkpoint's per-layer scales (vLLM: 1.0 where it has none).
    if (kv_elem == DType::kF8E4M3 && static_cast<size_t>(l) < weights_->kv_scales.size()) {
      layer.k_scale = weights_->kv_scales[static_cast<size_t>(l)].k_scale;
      layer.v_scale = weights_->kv_scales[static_cast<size_t>(l)].v_scale;
    }
    // Zeroed so that a stale slot can never hold NaN bits (padding reads are masked anyway).
    backend_.fill_zero(layer.k);
    backend_.fill_zero(layer.v);
    kv_.push_back(layer);
  }
  ids_ = backend_.alloc(DType::kI32, {T});
  residual_ = backend_.alloc(act, {T, H});
  normed_ = backend_.alloc(act, {T, H});
  qkv_ = backend_.alloc(act, {T, (Hq + 2 * Hkv) * D});
  attn_ = backend_.alloc(act, {T, Hq * D});
  proj_ = backend_.alloc(act, {T, H});
  gate_up_ = backend_.alloc(act, {T, 2 * static_cast<int64_t>(c.intermediate_size)});
  act_ = backend_.alloc(act, {T, c.intermediate_size});
  bool normed_fp8 = false, act_fp8 = false, attn_fp8 = false;
  for (const LayerWeights& w : weights_->layers) {
    normed_fp8 |= backend_.writes_fp8_rows(w.qkv) || backend_.writes_fp8_rows(w.gate_up);
    act_fp8 |= backend_.writes_fp8_rows(w.down);
    attn_fp8 |= backend_.attention_writes_fp8_rows() && backend_.writes_fp8_rows(w.o);
  }
  if (normed_fp8) {
    normed_fp8_.codes = backend_.alloc(DType::kF8E4M3, {T, H});
    normed_fp8_.scales = backend_.alloc(DType::kF32, {T});
  }
  if (act_fp8) {
    act_fp8_.codes = backend_.alloc(DType::kF8E4M3, {T, c.intermediate_size});
    act_fp8_.scales = backend_.alloc(DType::kF32, {T});
  }
  if (attn_fp8) {
    attn_fp8_.codes = backend_.alloc(DType::kF8E4M3, {T, Hq * D});
    attn_fp8_.scales = backend_.alloc(DType::kF32, {T});
  }
  row_idx_ = backend_.alloc(DType::kI32, {R});
  last_ = backend_.alloc(act, {R, H});
  logits_ = backend_.alloc(DType::kF32, {R, c.vocab_size});
  for (size_t l = 0; l < decode_layers_.size(); ++l) decode_layers_[l].kv = &kv_[l];  // (kv_ stays this size)
  // A quantized table (MLX) keeps the float32 scale on every backend (the CPU
  // reference holds it dequantized to float32); mlx_lm rounds it to the scales'
  // dtype, a 1e-4 relative difference, far inside the quantization error.
  const LinearWeight& embed = weights_->embed;
  embed_scale_ =
      a.scale_embeddings ? embedding_scale(c.hidden_size, embed.quantized() ? DType::kF32 : embed.dense.dtype) : 1.0f;
  return Status::Ok();
}

Status Model::validate_step(const StepMetadata& m, std::span<const int32_t> ids,
                                 std::span<const int32_t> rows, bool fed_ids) const {
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T == 0 || m.num_tokens != T) return InvalidArgument("forward: token count does not match the step metadata");
  if (T > options_.max_tokens_per_step)
    return InvalidArgument("forward: " + std::to_string(T) + " tokens exceed max_tokens_per_step " +
                           std::to_string(options_.max_tokens_per_step));
  if (static_cast<int64_t>(rows.size()) > options_.max_logit_rows)
    return InvalidArgument("forward: " + std::to_string(rows.size()) + " logit rows exceed max_logit_rows " +
                           std::to_string(options_.max_logit_rows));
  if (m.block_size != options_.block_size) return InvalidArgument("forward: step block_size differs from the model's");
  for (int32_t id : fed_ids ? std::span<const int32_t>{} : ids)
    if (id < 0 || id >= config_.vocab_size)
      return InvalidArgument("forward: token id " + std::to_string(id) + " is outside the vocabulary");
  for (int32_t r : rows)
    if (r < 0 || r >= T) return InvalidArgument("forward: logit row out of range");
  for (int32_t b : m.block_tables)
    if (b < -1 || b >= num_kv_blocks_) return InvalidArgument("forward: KV block id out of range");
  for (int32_t s : m.slot_mapping)
    if (s >= static_cast<int64_t>(num_kv_blocks_) * options_.block_size)
      return InvalidArgument("forward: KV slot out of range");
  for (int32_t s = 0; s < m.num_seqs; ++s) {
    const int32_t needed_blocks = (m.context_lens[s] + m.block_size - 1) / m.block_size;
    if (needed_blocks > m.max_blocks_per_seq) return InvalidArgument("forward: block table too short");
    for (int32_t b = 0; b < needed_blocks; ++b)
      if (m.block_tables[static_cast<size_t>(s) * m.max_blocks_per_seq + b] < 0)
        return InvalidArgument("forward: block table has a hole below the context length");
    for (int32_t t = m.query_start[s]; t < m.query_start[s + 1]; ++t)
      if (m.positions[t] < 0 || m.positions[t] >= m.context_lens[s])
        return InvalidArgument("forward: position outside the sequence's context");
  }
  return Status::Ok();
}

StatusOr<Tensor> Model::forward(const StepMetadata& meta, std::span<const int32_t> token_ids,
                                std::span<const int32_t> logit_rows, bool fed_ids) {
  KR_RETURN_IF_ERROR(validate_step(meta, token_ids, logit_rows, fed_ids));
  const ModelConfig& c = config_;
  const int64_t T = static_cast<int64_t>(token_ids.size()), R = static_cast<int64_t>(logit_rows.size());
  const float eps = static_cast<float>(c.rms_norm_eps);
  const int L = c.num_hidden_layers;
  // One token and one logit row: that row is the token's (validate_step), so the
  // lm_head reads the final norm's output directly, without a gather.
  const bool gather = !(T == 1 && R == 1);

  // All host->device copies of the step come first: in a step graph each is a copy
  // node, and one in the middle of the layer chain would sit on its critical path.
  backend_.set_step_metadata(meta);
  Tensor ids = ids_.rows(0, T);
  if (!fed_ids) backend_.copy_from_host(ids, token_ids.data(), token_ids.size_bytes());
  Tensor idx = row_idx_.rows(0, R);
  if (R > 0 && gather) backend_.copy_from_host(idx, logit_rows.data(), logit_rows.size_bytes());
  Tensor logits = logits_.rows(0, R);  // [R, V] f32
  // A replayed step graph: the ops below were recorded by the first step of its
  // key and run at end_graph() on the inputs just copied.
  if (backend_.replaying_graph()) return logits;

  Tensor residual = residual_.rows(0, T);  // [T, H]
  Tensor normed = normed_.rows(0, T);      // [T, H]
  Tensor qkv = qkv_.rows(0, T);            // [T, (Hq + 2 Hkv) * D]
  Tensor attn = attn_.rows(0, T);          // [T, Hq * D]
  Tensor proj = proj_.rows(0, T);          // [T, H]: output of o_proj and of down_proj
  Tensor gate_up = gate_up_.rows(0, T);    // [T, 2 I]
  Tensor act = act_.rows(0, T);            // [T, I]

  const NormKind kind = c.arch.norm;
  auto norm = [&](const Tensor& w) { return w.empty() ? RmsNorm{} : RmsNorm{&w, eps, kind}; };
  // W8A8 activations (Fp8Rows): the op that writes normed, attn or act also
  // writes its FP8 rows for the weight that reads it next, and that matmul takes
  // them instead of quantizing (where the backend does so: writes_fp8_rows).
  const Fp8Rows* normed_fp8 = normed_fp8_.codes.data != nullptr ? &normed_fp8_ : nullptr;
  const Fp8Rows* act_fp8 = act_fp8_.codes.data != nullptr ? &act_fp8_ : nullptr;
  const Fp8Rows* attn_fp8 = attn_fp8_.codes.data != nullptr ? &attn_fp8_ : nullptr;
  auto fp8_out = [](Fp8Rows& rows, const LinearWeight* reader) {
    return rows.codes.data != nullptr ? Fp8Out{&rows, reader} : Fp8Out{};
  };
  if (fed_ids) backend_.feed_sampled_ids(ids);
  backend_.embedding(weights_->embed, ids, embed_scale_, residual);
  // Every layer as one op where the backend fuses them (a plain pre-norm model
  // without FP8 rows): the same ops as the loop below.
  Backend::DecodeStack stack;
  if (!decode_layers_.empty() && !normed_fp8 && !act_fp8 && !attn_fp8) {
    stack.layers = decode_layers_;
    stack.final_norm = norm(weights_->final_norm);
    stack.activation = c.arch.activation;
    stack.residual = &residual;
    stack.normed = &normed;
    stack.qkv = &qkv;
    stack.attn_out = &attn;
    stack.proj = &proj;
    stack.gate_up_out = &gate_up;
    stack.act = &act;
  }
  const bool fused_stack = !stack.layers.empty() && backend_.fuses_decode_stack(stack);
  if (fused_stack) backend_.decode_stack(stack);
  for (int l = 0; l < (fused_stack ? 0 : L); ++l) {
    const LayerWeights& w = weights_->layers[l];
    // Attention block. Its input, normed = the input norm of residual, is computed
    // inside layer 0's qkv projection, and by the previous layer's last op for the others
    // (with its FP8 rows for a W8A8 qkv).
    const MatmulInput attn_in = l == 0 ? MatmulInput::rms_normed(residual, norm(w.input_norm), normed)
                                       : MatmulInput(normed).with_fp8(normed_fp8);
    backend_.qkv_rope_store(attn_in, w.qkv, qkv, layer_qkv_[l], kv_[l]);
    // attn (and its FP8 rows for o_proj).
    backend_.attention(qkv, kv_[l], layer_attn_[l], attn, fp8_out(attn_fp8_, &w.o));
    // residual += attn · Woᵀ (normalised first by Gemma's post-attention norm);
    // normed = the norm before the MLP of residual (and its FP8 rows for gate_up).
    const bool last_layer = l + 1 == L;
    const Tensor& next_norm = last_layer ? weights_->final_norm : weights_->layers[l + 1].input_norm;
    backend_.matmul_add_rms_norm(MatmulInput(attn).with_fp8(attn_fp8), w.o, proj, norm(w.attn_out_norm), residual,
                                 norm(w.mlp_norm), normed, fp8_out(normed_fp8_, &w.gate_up));
    // MLP block: act = f(normed · Wgateᵀ) * (normed · Wupᵀ) (and act's FP8 rows for
    // down); residual += act · Wdownᵀ (normalised first by Gemma's post-feedforward
    // norm), then the next layer's input norm (the final norm after the last layer;
    // FP8 rows for the next layer's qkv).
    backend_.matmul_silu_mul(MatmulInput(normed).with_fp8(normed_fp8), w.gate_up, c.arch.activation, gate_up, act,
                             fp8_out(act_fp8_, &w.down));
    const LinearWeight* next_qkv = last_layer ? nullptr : &weights_->layers[l + 1].qkv;
    backend_.matmul_add_rms_norm(MatmulInput(act).with_fp8(act_fp8), w.down, proj, norm(w.mlp_out_norm), residual,
                                 norm(next_norm), normed, fp8_out(normed_fp8_, next_qkv));
  }
  if (R == 0) return logits;
  Tensor last = last_.rows(0, R);  // [R, H]
  if (gather) backend_.gather_rows(normed, idx, last);
  backend_.matmul(gather ? last : normed, weights_->lm_head, logits);
  if (c.arch.final_logit_softcap > 0.0f) backend_.softcap(logits, c.arch.final_logit_softcap);
  return logits;
}

StatusOr<std::unique_ptr<Model>> load_model(const std::string& dir, Backend& backend,
                                                 const ModelOptions& options) {
  ModelConfig config;
  GenerationDefaults gen;
  if (!options.arch.empty()) {
    KR_ASSIGN_OR_RETURN(config, model_config_preset(options.arch));
  } else {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return NotFound(dir + ": model folder does not exist");
    KR_ASSIGN_OR_RETURN(config, load_model_config(dir));
    KR_ASSIGN_OR_RETURN(gen, load_generation_config(dir));
  }
  std::unique_ptr<ModelWeights> weights;
  if (options.dummy_weights) {
    KR_ASSIGN_OR_RETURN(weights, make_dummy_weights(config, backend, options.dummy_seed, options.dummy_quant));
  } else {
    if (!options.arch.empty() && dir.empty())
      return InvalidArgument("--arch without --dummy-weights needs a model folder for the weights");
    // config.json's quantization_config (or MLX's quantization, or a side file):
    // quantized folders hold packed I32/U32 and F8 tensors besides the float ones.
    KR_ASSIGN_OR_RETURN(QuantConfig quant, load_quant_config(dir));
    KR_ASSIGN_OR_RETURN(auto files,
                        SafetensorsSet::open_dir(dir, quant.quantized() ? DTypePolicy::kAny : DTypePolicy::kFloatOnly));
    KR_ASSIGN_OR_RETURN(weights, load_model_weights(config, std::move(files), backend, quant));
  }
  auto model = std::make_unique<Model>(std::move(config), std::move(gen), std::move(weights), backend, options);
  KR_RETURN_IF_ERROR(model->init());
  KR_LOG(kInfo, "model: %d layers, hidden %d, vocab %d, weights %.1f MB on %s; KV cache %s, %d blocks x %d tokens (%.1f MB)",
         model->config().num_hidden_layers, model->config().hidden_size, model->config().vocab_size,
         static_cast<double>(model->weight_bytes()) / 1e6, backend.name().c_str(),
         kv_cache_dtype_name(model->kv_cache_dtype()), model->num_kv_blocks(), model->block_size(),
         static_cast<double>(model->kv_cache_bytes()) / 1e6);
  return model;
}

}  // namespace kr
