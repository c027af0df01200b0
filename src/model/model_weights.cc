#include "model/model_weights.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "backend/dtype_convert.h"
#include "base/log.h"
#include "model/quant/dummy_quant.h"

namespace kr {
namespace {

// Where a checkpoint keeps the text model's tensors.
struct Names {
  std::string model = "model.";            // prefix of embed_tokens, layers, norm
  std::string lm_head = "lm_head.weight";  // the untied output projection

  std::string layer(int l, const std::string& suffix, const char* kind = "weight") const {
    return model + "layers." + std::to_string(l) + "." + suffix + "." + kind;
  }
  std::string top(const char* name) const { return model + name + ".weight"; }
};

// The text model of a vision-language folder: published checkpoints write
// language_model.model.* and language_model.lm_head, transformers 5 state dicts
// model.language_model.* and lm_head.
Names names_for(const ArchSpec& a, const SafetensorsSet* files) {
  Names n;
  if (!a.text_of_multimodal) return n;
  if (files != nullptr && files->find("model.language_model.embed_tokens.weight") != nullptr) {
    n.model = "model.language_model.";
  } else {
    n.model = "language_model.model.";
    n.lm_head = "language_model.lm_head.weight";
  }
  return n;
}

// Tensors of a vision-language folder that the text model does not use.
bool vision_tensor(const std::string& name, const ArchSpec& a) {
  if (!a.text_of_multimodal) return false;
  for (const char* p : {"vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector."})
    if (name.starts_with(p)) return true;
  return false;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r.append(", ");
    r.append(std::to_string(s[i]));
  }
  return r + "]";
}

// Name → expected shape for every tensor of the config's family.
std::map<std::string, std::vector<int64_t>> expected_tensors(const ModelConfig& c, const Names& n) {
  const ArchSpec& a = c.arch;
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const int64_t q = c.num_attention_heads * D, kv = c.num_key_value_heads * D;
  std::map<std::string, std::vector<int64_t>> e;
  e[n.top("embed_tokens")] = {V, H};
  e[n.top("norm")] = {H};
  if (!c.tie_word_embeddings) e[n.lm_head] = {V, H};
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    e[n.layer(l, "input_layernorm")] = {H};
    e[n.layer(l, "post_attention_layernorm")] = {H};
    if (a.post_attention_norm) e[n.layer(l, "pre_feedforward_layernorm")] = {H};
    if (a.post_feedforward_norm) e[n.layer(l, "post_feedforward_layernorm")] = {H};
    e[n.layer(l, "self_attn.q_proj")] = {q, H};
    e[n.layer(l, "self_attn.k_proj")] = {kv, H};
    e[n.layer(l, "self_attn.v_proj")] = {kv, H};
    if (a.qkv_bias) {
      e[n.layer(l, "self_attn.q_proj", "bias")] = {q};
      e[n.layer(l, "self_attn.k_proj", "bias")] = {kv};
      e[n.layer(l, "self_attn.v_proj", "bias")] = {kv};
    }
    if (a.qk_norm) {
      e[n.layer(l, "self_attn.q_norm")] = {D};
      e[n.layer(l, "self_attn.k_norm")] = {D};
    }
    e[n.layer(l, "self_attn.o_proj")] = {H, q};
    e[n.layer(l, "mlp.gate_proj")] = {I, H};
    e[n.layer(l, "mlp.up_proj")] = {I, H};
    e[n.layer(l, "mlp.down_proj")] = {H, I};
  }
  return e;
}

// "model.layers.0.mlp.up_proj" of "model.layers.0.mlp.up_proj.weight".
std::string module_of(const std::string& tensor) {
  return tensor.ends_with(".weight") ? tensor.substr(0, tensor.size() - 7) : tensor;
}

// The quantized modules of a checkpoint: which they are (decided by their
// tensors), each read, row-fused and uploaded, and the bookkeeping that every
// tensor they claim is consumed by a reader.
class QuantModules {
 public:
  QuantModules(const QuantConfig& config, const TensorMap& tensors, Backend& backend)
      : config_(config), tensors_(tensors), backend_(backend) {}

  bool quantized(const std::string& module) const {
    return config_.quantized() && is_quantized_module(config_, tensors_, module);
  }
  // A tensor that belongs to a quantized module (PREFIX.SUFFIX with PREFIX
  // quantized) or to the checkpoint's KV-cache scales.
  bool claims(const std::string& tensor) {
    if (!config_.quantized()) return false;
    const size_t dot = tensor.rfind('.');
    if (dot == std::string::npos) return false;
    const std::string prefix = tensor.substr(0, dot), suffix = tensor.substr(dot + 1);
    if (suffix == "k_scale" || suffix == "v_scale" || suffix == "output_scale" || quantized(prefix)) {
      claimed_.insert(tensor);
      return true;
    }
    return false;
  }
  StatusOr<LinearWeight> load(const std::vector<std::string>& modules, const std::vector<int64_t>& rows, int64_t K,
                              ModuleRole role) {
    std::vector<QuantizedMatrix> parts;
    for (size_t i = 0; i < modules.size(); ++i) {
      KR_ASSIGN_OR_RETURN(QuantizedMatrix m, load_quantized_matrix(config_, tensors_, modules[i], role, rows[i], K));
      consumed_.insert(m.source_tensors.begin(), m.source_tensors.end());
      parts.push_back(std::move(m));
    }
    if (parts.size() == 1) return backend_.upload_quantized(parts[0]);
    std::vector<const QuantizedMatrix*> ptrs;
    for (const QuantizedMatrix& m : parts) ptrs.push_back(&m);
    const std::string last = modules.back().substr(modules.back().rfind('.') + 1);
    KR_ASSIGN_OR_RETURN(QuantizedMatrix fused, fuse_rows(ptrs, modules[0] + "+" + last));
    return backend_.upload_quantized(fused);
  }
  StatusOr<std::optional<KvCacheScales>> kv_scales(const std::string& attn) {
    if (!config_.quantized()) return std::optional<KvCacheScales>();
    KR_ASSIGN_OR_RETURN(std::optional<KvCacheScales> s, load_kv_cache_scales(tensors_, attn));
    if (s) consumed_.insert(s->source_tensors.begin(), s->source_tensors.end());
    return s;
  }
  // Every claimed tensor was read by a reader: one the reader did not use (e.g. a
  // quantized module's bias this model has no place for) is an error naming it.
  Status check_all_consumed() const {
    for (const std::string& t : claimed_)
      if (!consumed_.count(t)) {
        const TensorView& v = tensors_.at(t);
        return InvalidArgument(v.file + ": unexpected tensor '" + t + "' for this config (" + config_.source() + ")");
      }
    return Status::Ok();
  }

 private:
  const QuantConfig& config_;
  const TensorMap& tensors_;
  Backend& backend_;
  std::set<std::string> claimed_, consumed_;
};

// Tensors that old checkpoints carry and we recompute or do not need.
bool ignorable(const std::string& name, const ModelConfig& c, const Names& n) {
  if (name.ends_with(".rotary_emb.inv_freq")) return true;
  return c.tie_word_embeddings && name == n.lm_head;
}

class Uploader {
 public:
  Uploader(Backend& be, ModelWeights& w) : be_(be), w_(w) {}

  Tensor direct(const TensorView& v) {
    w_.weight_bytes += v.bytes;
    return be_.upload_weight(v.as_tensor());
  }

  // Row-concatenation of same-dtype matrices of equal width into one [Σ rows, K],
  // or of vectors into one [Σ n].
  Tensor fused(const std::vector<const TensorView*>& parts) {
    int64_t rows = 0;
    const bool vectors = parts[0]->shape.size() == 1;
    const int64_t k = vectors ? 1 : parts[0]->shape[1];
    for (const auto* p : parts) rows += p->shape[0];
    const DType dt = parts[0]->dtype;
    const size_t bytes = static_cast<size_t>(rows * k) * dtype_size_bytes(dt);
    void* dst;
    std::unique_ptr<uint16_t[]> b16;
    std::unique_ptr<float[]> b32;
    if (dt == DType::kF32) {
      b32.reset(new float[rows * k]);
      dst = b32.get();
    } else {
      b16.reset(new uint16_t[rows * k]);
      dst = b16.get();
    }
    size_t off = 0;
    for (const auto* p : parts) {
      std::memcpy(static_cast<char*>(dst) + off, p->data, p->bytes);
      off += p->bytes;
    }
    w_.weight_bytes += bytes;
    Tensor t = be_.upload_weight(vectors ? Tensor(dst, dt, {rows}) : Tensor(dst, dt, {rows, k}));
    if (be_.upload_keeps_host_pointer()) {
      if (b16) w_.host_buffers.push_back(std::move(b16));
      if (b32) w_.host_buffers_f32.push_back(std::move(b32));
    }
    return t;
  }

 private:
  Backend& be_;
  ModelWeights& w_;
};

// Counter-based generator (splitmix64 of seed and index): any element can be
// computed independently, so the fill parallelises trivially.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void fill_dummy(uint16_t* dst, int64_t n, uint64_t seed, float scale) {
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t words = (n + 3) / 4;  // one 64-bit draw → four 16-bit values
  auto work = [&](int64_t wb, int64_t we) {
    for (int64_t w = wb; w < we; ++w) {
      uint64_t r = splitmix64(seed ^ (static_cast<uint64_t>(w) * 0xd1342543de82ef95ull));
      for (int j = 0; j < 4; ++j) {
        const int64_t i = w * 4 + j;
        if (i >= n) break;
        // 16 random bits → uniform in [-scale, scale).
        const float u = (static_cast<float>(r & 0xffff) / 32768.0f - 1.0f) * scale;
        dst[i] = f32_to_bf16(u);
        r >>= 16;
      }
    }
  };
  if (threads == 1 || words < (1 << 16)) {
    work(0, words);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t chunk = (words + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    const int64_t b = t * chunk, e = std::min(words, b + chunk);
    if (b < e) pool.emplace_back(work, b, e);
  }
  for (auto& th : pool) th.join();
}

}  // namespace

StatusOr<std::unique_ptr<ModelWeights>> load_model_weights(const ModelConfig& c,
                                                           std::unique_ptr<SafetensorsSet> files,
                                                           Backend& backend, const QuantConfig& quant) {
  const ArchSpec& a = c.arch;
  const Names n = names_for(a, files.get());
  const auto expected = expected_tensors(c, n);
  QuantModules qm(quant, files->all(), backend);
  // Extra tensors first: a folder of another model shape or family shows up here clearly.
  // Tensors of a quantized module (its qweight, scales, ...) are claimed here and
  // must be consumed by its reader below.
  size_t skipped = 0;
  for (const auto& [name, view] : files->all()) {
    if (vision_tensor(name, a)) {
      ++skipped;
    } else if (!expected.count(name) && !ignorable(name, c, n) && !qm.claims(name)) {
      return InvalidArgument(view.file + ": unexpected tensor '" + name + "' for " + a.architecture +
                             " with this config");
    }
  }
  if (skipped > 0)
    KR_LOG(kInfo, "model: %s: skipping %zu vision-tower and projector tensors (text only)", a.architecture.c_str(),
           skipped);
  for (const auto& [name, shape] : expected) {
    if (qm.quantized(module_of(name))) continue;  // its reader checks every shape
    const TensorView* v = files->find(name);
    if (v == nullptr)
      return NotFound("missing tensor '" + name + "' in the model's safetensors (" + a.architecture + ")");
    if (v->shape != shape)
      return InvalidArgument(v->file + ": tensor '" + name + "' has shape " + shape_str(v->shape) + ", expected " +
                             shape_str(shape));
    if (v->storage != StorageType::kBF16 && v->storage != StorageType::kF16 && v->storage != StorageType::kF32)
      return InvalidArgument(v->file + ": tensor '" + name + "' has dtype " + storage_type_name(v->storage) +
                             "; an unquantized weight must be BF16, F16 or F32");
  }
  auto w = std::make_unique<ModelWeights>();
  Uploader up(backend, *w);
  auto get = [&](const std::string& name) { return files->find(name); };
  auto same_dtype = [&](const std::vector<const TensorView*>& parts) -> Status {
    for (const auto* p : parts)
      if (p->dtype != parts[0]->dtype)
        return Unimplemented(p->file + ": tensor '" + p->name + "' is " + dtype_name(p->dtype) + " but '" +
                             parts[0]->name + "' is " + dtype_name(parts[0]->dtype) + " (fused tensors must match)");
    return Status::Ok();
  };
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  // One Linear or a row-fused group of them ([rows[i], K] each), by module name
  // (the tensor name less ".weight"): quantized when the checkpoint stores them so
  // (all of them), dense otherwise. Biases and norms are never quantized: they
  // are read as dense tensors below whatever the format.
  auto linear = [&](const std::vector<std::string>& modules, const std::vector<int64_t>& rows, int64_t K,
                    ModuleRole role) -> StatusOr<LinearWeight> {
    int quantized = 0;
    for (const std::string& m : modules) quantized += qm.quantized(m);
    if (quantized == static_cast<int>(modules.size())) {
      KR_ASSIGN_OR_RETURN(LinearWeight lw, qm.load(modules, rows, K, role));
      w->weight_bytes += lw.bytes();
      return lw;
    }
    if (quantized != 0)
      return Unimplemented("modules '" + modules[0] + "' .. '" + modules.back() +
                           "' are fused into one matrix but only some of them are quantized in the checkpoint");
    std::vector<const TensorView*> parts;
    for (const std::string& m : modules) parts.push_back(get(m + ".weight"));
    if (parts.size() == 1) return LinearWeight(up.direct(*parts[0]));
    KR_RETURN_IF_ERROR(same_dtype(parts));
    return LinearWeight(up.fused(parts));
  };
  KR_ASSIGN_OR_RETURN(w->embed, linear({module_of(n.top("embed_tokens"))}, {V}, H, ModuleRole::kEmbedding));
  w->final_norm = up.direct(*get(n.top("norm")));
  if (c.tie_word_embeddings) {
    w->lm_head = w->embed;
  } else {
    KR_ASSIGN_OR_RETURN(w->lm_head, linear({module_of(n.lm_head)}, {V}, H, ModuleRole::kLinear));
  }
  const int64_t q = int64_t{c.num_attention_heads} * D, kv = int64_t{c.num_key_value_heads} * D;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    LayerWeights L;
    auto mod = [&](const char* suffix) { return module_of(n.layer(l, suffix)); };
    L.input_norm = up.direct(*get(n.layer(l, "input_layernorm")));
    if (a.post_attention_norm) {
      L.attn_out_norm = up.direct(*get(n.layer(l, "post_attention_layernorm")));
      L.mlp_norm = up.direct(*get(n.layer(l, "pre_feedforward_layernorm")));
    } else {
      L.mlp_norm = up.direct(*get(n.layer(l, "post_attention_layernorm")));
    }
    if (a.post_feedforward_norm) L.mlp_out_norm = up.direct(*get(n.layer(l, "post_feedforward_layernorm")));
    KR_ASSIGN_OR_RETURN(L.qkv, linear({mod("self_attn.q_proj"), mod("self_attn.k_proj"), mod("self_attn.v_proj")},
                                      {q, kv, kv}, H, ModuleRole::kLinear));
    KR_ASSIGN_OR_RETURN(L.gate_up, linear({mod("mlp.gate_proj"), mod("mlp.up_proj")}, {I, I}, H, ModuleRole::kLinear));
    if (a.qkv_bias) {
      std::vector<const TensorView*> bias = {get(n.layer(l, "self_attn.q_proj", "bias")),
                                             get(n.layer(l, "self_attn.k_proj", "bias")),
                                             get(n.layer(l, "self_attn.v_proj", "bias"))};
      KR_RETURN_IF_ERROR(same_dtype(bias));
      L.qkv_bias = up.fused(bias);
    }
    if (a.qk_norm) {
      L.q_norm = up.direct(*get(n.layer(l, "self_attn.q_norm")));
      L.k_norm = up.direct(*get(n.layer(l, "self_attn.k_norm")));
    }
    KR_ASSIGN_OR_RETURN(L.o, linear({mod("self_attn.o_proj")}, {H}, q, ModuleRole::kLinear));
    KR_ASSIGN_OR_RETURN(L.down, linear({mod("mlp.down_proj")}, {H}, I, ModuleRole::kLinear));
    w->layers.push_back(L);
    KR_ASSIGN_OR_RETURN(std::optional<KvCacheScales> kvs, qm.kv_scales(module_of(n.layer(l, "self_attn"))));
    if (kvs) {
      w->kv_scales.resize(static_cast<size_t>(c.num_hidden_layers));
      w->kv_scales[static_cast<size_t>(l)] = *kvs;
    }
  }
  KR_RETURN_IF_ERROR(qm.check_all_consumed());
  w->fp8_kv_cache = quant.fp8_kv_cache();
  if (backend.upload_keeps_host_pointer()) w->files = std::move(files);
  return w;
}

StatusOr<std::unique_ptr<ModelWeights>> make_dummy_weights(const ModelConfig& c, Backend& backend,
                                                           uint64_t seed, const std::string& quant_format) {
  const ArchSpec& a = c.arch;
  auto w = std::make_unique<ModelWeights>();
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const int64_t qkv_rows = (c.num_attention_heads + 2 * c.num_key_value_heads) * D;
  uint64_t tensor_index = 0;
  // The identity norm: weights 1 for x̂ · w, 0 for x̂ · (1 + w).
  const float norm_value = a.norm == NormKind::kTimesOnePlusWeight ? 0.0f : 1.0f;
  // One host buffer at a time when the backend copies, so peak host memory stays at
  // the largest tensor instead of the whole model.
  auto make = [&](std::initializer_list<int64_t> dims, bool norm) {
    Tensor shape(nullptr, DType::kBF16, dims);
    const int64_t count = shape.numel();
    std::unique_ptr<uint16_t[]> buf(new uint16_t[count]);
    if (norm) {
      std::fill(buf.get(), buf.get() + count, f32_to_bf16(norm_value));
    } else {
      fill_dummy(buf.get(), count, splitmix64(seed + 0x1000 * ++tensor_index), 0.02f);
    }
    shape.data = buf.get();
    w->weight_bytes += shape.bytes();
    Tensor t = backend.upload_weight(shape);
    if (backend.upload_keeps_host_pointer()) w->host_buffers.push_back(std::move(buf));
    return t;
  };
  // A Linear of the decoder layers: BF16, or a random quantized matrix of quant_format.
  auto linear = [&](int64_t N, int64_t K, const std::string& name) -> StatusOr<LinearWeight> {
    if (quant_format.empty()) return LinearWeight(make({N, K}, false));
    KR_ASSIGN_OR_RETURN(QuantizedMatrix m, make_dummy_quantized(quant_format, N, K, seed + 0x1000 * ++tensor_index, name));
    KR_ASSIGN_OR_RETURN(LinearWeight lw, backend.upload_quantized(m));
    w->weight_bytes += lw.bytes();
    return lw;
  };
  w->embed = make({V, H}, false);
  w->final_norm = make({H}, true);
  w->lm_head = c.tie_word_embeddings ? w->embed : LinearWeight(make({V, H}, false));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights L;
    L.input_norm = make({H}, true);
    L.mlp_norm = make({H}, true);
    if (a.post_attention_norm) L.attn_out_norm = make({H}, true);
    if (a.post_feedforward_norm) L.mlp_out_norm = make({H}, true);
    KR_ASSIGN_OR_RETURN(L.qkv, linear(qkv_rows, H, p + "self_attn.qkv_proj"));
    if (a.qkv_bias) L.qkv_bias = make({qkv_rows}, false);
    if (a.qk_norm) {
      L.q_norm = make({D}, true);
      L.k_norm = make({D}, true);
    }
    KR_ASSIGN_OR_RETURN(L.o, linear(H, int64_t{c.num_attention_heads} * D, p + "self_attn.o_proj"));
    KR_ASSIGN_OR_RETURN(L.gate_up, linear(2 * I, H, p + "mlp.gate_up_proj"));
    KR_ASSIGN_OR_RETURN(L.down, linear(H, I, p + "mlp.down_proj"));
    w->layers.push_back(L);
  }
  return w;
}

}  // namespace kr
