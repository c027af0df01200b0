#include "model/model_weights.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "backend/dtype_convert.h"

namespace kr {
namespace {

std::string layer_name(int l, const char* suffix) {
  return "model.layers." + std::to_string(l) + "." + suffix + ".weight";
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r.append(", ");
    r.append(std::to_string(s[i]));
  }
  return r + "]";
}

// Name → expected shape for every tensor of the config.
std::map<std::string, std::vector<int64_t>> expected_tensors(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const int64_t q = c.num_attention_heads * D, kv = c.num_key_value_heads * D;
  std::map<std::string, std::vector<int64_t>> e;
  e["model.embed_tokens.weight"] = {V, H};
  e["model.norm.weight"] = {H};
  if (!c.tie_word_embeddings) e["lm_head.weight"] = {V, H};
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    e[layer_name(l, "input_layernorm")] = {H};
    e[layer_name(l, "post_attention_layernorm")] = {H};
    e[layer_name(l, "self_attn.q_proj")] = {q, H};
    e[layer_name(l, "self_attn.k_proj")] = {kv, H};
    e[layer_name(l, "self_attn.v_proj")] = {kv, H};
    e[layer_name(l, "self_attn.o_proj")] = {H, q};
    e[layer_name(l, "mlp.gate_proj")] = {I, H};
    e[layer_name(l, "mlp.up_proj")] = {I, H};
    e[layer_name(l, "mlp.down_proj")] = {H, I};
  }
  return e;
}

// Tensors that old checkpoints carry and we recompute or do not need.
bool ignorable(const std::string& name, const ModelConfig& c) {
  if (name.ends_with(".rotary_emb.inv_freq")) return true;
  return c.tie_word_embeddings && name == "lm_head.weight";
}

class Uploader {
 public:
  Uploader(Backend& be, ModelWeights& w) : be_(be), w_(w) {}

  Tensor direct(const TensorView& v) {
    w_.weight_bytes += v.bytes;
    return be_.upload_weight(v.as_tensor());
  }

  // Row-concatenation of same-dtype matrices of equal width into one [Σ rows, K].
  Tensor fused(const std::vector<const TensorView*>& parts) {
    int64_t rows = 0;
    const int64_t k = parts[0]->shape[1];
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
    Tensor t = be_.upload_weight(Tensor(dst, dt, {rows, k}));
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
                                                           Backend& backend) {
  const auto expected = expected_tensors(c);
  // Extra tensors first: a folder of another model shape shows up here clearly.
  for (const auto& [name, view] : files->all()) {
    if (!expected.count(name) && !ignorable(name, c))
      return InvalidArgument(view.file + ": unexpected tensor '" + name + "' for this config");
  }
  for (const auto& [name, shape] : expected) {
    const TensorView* v = files->find(name);
    if (v == nullptr) return NotFound("missing tensor '" + name + "' in the model's safetensors");
    if (v->shape != shape)
      return InvalidArgument(v->file + ": tensor '" + name + "' has shape " + shape_str(v->shape) + ", expected " +
                             shape_str(shape));
  }
  auto w = std::make_unique<ModelWeights>();
  Uploader up(backend, *w);
  auto get = [&](const std::string& n) { return files->find(n); };
  auto same_dtype = [&](const std::vector<const TensorView*>& parts) -> Status {
    for (const auto* p : parts)
      if (p->dtype != parts[0]->dtype)
        return Unimplemented(p->file + ": tensor '" + p->name + "' is " + dtype_name(p->dtype) + " but '" +
                             parts[0]->name + "' is " + dtype_name(parts[0]->dtype) + " (fused tensors must match)");
    return Status::Ok();
  };
  w->embed = up.direct(*get("model.embed_tokens.weight"));
  w->final_norm = up.direct(*get("model.norm.weight"));
  w->lm_head = c.tie_word_embeddings ? w->embed : up.direct(*get("lm_head.weight"));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    LayerWeights L;
    L.input_norm = up.direct(*get(layer_name(l, "input_layernorm")));
    L.post_norm = up.direct(*get(layer_name(l, "post_attention_layernorm")));
    std::vector<const TensorView*> qkv = {get(layer_name(l, "self_attn.q_proj")), get(layer_name(l, "self_attn.k_proj")),
                                          get(layer_name(l, "self_attn.v_proj"))};
    std::vector<const TensorView*> gu = {get(layer_name(l, "mlp.gate_proj")), get(layer_name(l, "mlp.up_proj"))};
    KR_RETURN_IF_ERROR(same_dtype(qkv));
    KR_RETURN_IF_ERROR(same_dtype(gu));
    L.qkv = up.fused(qkv);
    L.gate_up = up.fused(gu);
    L.o = up.direct(*get(layer_name(l, "self_attn.o_proj")));
    L.down = up.direct(*get(layer_name(l, "mlp.down_proj")));
    w->layers.push_back(L);
  }
  if (backend.upload_keeps_host_pointer()) w->files = std::move(files);
  return w;
}

StatusOr<std::unique_ptr<ModelWeights>> make_dummy_weights(const ModelConfig& c, Backend& backend,
                                                                 uint64_t seed) {
  auto w = std::make_unique<ModelWeights>();
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const int64_t qkv_rows = (c.num_attention_heads + 2 * c.num_key_value_heads) * D;
  uint64_t tensor_index = 0;
  // One host buffer at a time when the backend copies, so peak host memory stays at
  // the largest tensor instead of the whole model.
  auto make = [&](std::initializer_list<int64_t> dims, bool norm) {
    Tensor shape(nullptr, DType::kBF16, dims);
    const int64_t n = shape.numel();
    std::unique_ptr<uint16_t[]> buf(new uint16_t[n]);
    if (norm) {
      std::fill(buf.get(), buf.get() + n, f32_to_bf16(1.0f));
    } else {
      fill_dummy(buf.get(), n, splitmix64(seed + 0x1000 * ++tensor_index), 0.02f);
    }
    shape.data = buf.get();
    w->weight_bytes += shape.bytes();
    Tensor t = backend.upload_weight(shape);
    if (backend.upload_keeps_host_pointer()) w->host_buffers.push_back(std::move(buf));
    return t;
  };
  w->embed = make({V, H}, false);
  w->final_norm = make({H}, true);
  w->lm_head = c.tie_word_embeddings ? w->embed : make({V, H}, false);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    LayerWeights L;
    L.input_norm = make({H}, true);
    L.post_norm = make({H}, true);
    L.qkv = make({qkv_rows, H}, false);
    L.o = make({H, c.num_attention_heads * D}, false);
    L.gate_up = make({2 * I, H}, false);
    L.down = make({H, I}, false);
    w->layers.push_back(L);
  }
  return w;
}

}  // namespace kr
