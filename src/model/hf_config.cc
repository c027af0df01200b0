#include "model/hf_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace kr {
namespace {

using json = nlohmann::json;

// One JSON object of a config file and how errors name its keys:
// "FILE: key 'text_config.hidden_size'".
struct Obj {
  const json& j;
  const std::string& file;
  std::string prefix;  // "" or the path of a nested object, e.g. "text_config."

  std::string where(const std::string& key) const { return file + ": key '" + prefix + key + "'"; }
  // The value of `key` when present and not null.
  const json* value(const std::string& key) const {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(const std::string& key) const { return j.find(key) != j.end(); }  // null included
  Obj sub(const json& v, const std::string& key) const { return Obj{v, file, prefix + key + "."}; }
};

// Typed field readers: absent or null → *out unchanged (or an error when required);
// wrong type → error.
Status read_int(const Obj& o, const char* key, bool required, int64_t min_value, int64_t* out) {
  const json* v = o.value(key);
  if (v == nullptr) {
    if (required) return InvalidArgument(o.where(key) + " is missing");
    return Status::Ok();
  }
  if (!v->is_number_integer()) return InvalidArgument(o.where(key) + " must be an integer");
  const int64_t x = v->get<int64_t>();
  if (x < min_value || x > INT32_MAX * int64_t{64})
    return InvalidArgument(o.where(key) + " is out of range: " + std::to_string(x));
  *out = x;
  return Status::Ok();
}

Status read_i32(const Obj& o, const char* key, bool required, int32_t* out) {
  int64_t v = *out;
  KR_RETURN_IF_ERROR(read_int(o, key, required, 1, &v));
  if (v > INT32_MAX) return InvalidArgument(o.where(key) + " is out of range");
  *out = static_cast<int32_t>(v);
  return Status::Ok();
}

Status read_double(const Obj& o, const char* key, double* out) {
  const json* v = o.value(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_number()) return InvalidArgument(o.where(key) + " must be a number");
  *out = v->get<double>();
  if (!std::isfinite(*out)) return InvalidArgument(o.where(key) + " must be finite");
  return Status::Ok();
}

Status read_bool(const Obj& o, const char* key, bool* out) {
  const json* v = o.value(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_boolean()) return InvalidArgument(o.where(key) + " must be a boolean");
  *out = v->get<bool>();
  return Status::Ok();
}

// A float option whose null means "none" (0) and whose absence keeps the default:
// the soft-caps and query_pre_attn_scalar (transformers takes an explicit null as None).
Status read_optional_float(const Obj& o, const char* key, float* out) {
  if (!o.has(key)) return Status::Ok();
  if (o.value(key) == nullptr) {
    *out = 0.0f;
    return Status::Ok();
  }
  double v = 0;
  KR_RETURN_IF_ERROR(read_double(o, key, &v));
  if (!(v > 0)) return InvalidArgument(o.where(key) + " must be > 0 or null");
  *out = static_cast<float>(v);
  return Status::Ok();
}

// An id or a list of ids (HF allows both for eos_token_id).
Status read_ids(const Obj& o, const char* key, std::vector<int32_t>* out) {
  const json* v = o.value(key);
  if (v == nullptr) return Status::Ok();
  auto one = [&](const json& x) -> Status {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > INT32_MAX)
      return InvalidArgument(o.where(key) + " must be a non-negative integer or a list of them");
    out->push_back(static_cast<int32_t>(x.get<int64_t>()));
    return Status::Ok();
  };
  out->clear();
  if (v->is_array()) {
    for (const auto& x : *v) KR_RETURN_IF_ERROR(one(x));
    return Status::Ok();
  }
  return one(*v);
}

// The MLP's gate activation, by Hugging Face's ACT2FN names.
Status read_activation(const Obj& o, const char* key, Activation* out) {
  const json* v = o.value(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_string()) return InvalidArgument(o.where(key) + " must be a string");
  const std::string name = v->get<std::string>();
  if (name == "silu" || name == "swish") {
    *out = Activation::kSilu;
  } else if (name == "gelu_pytorch_tanh" || name == "gelu_tanh") {
    *out = Activation::kGeluTanh;
  } else {
    return Unimplemented(o.where(key) + ": unsupported activation '" + name + "'");
  }
  return Status::Ok();
}

// ---- families and their config classes' defaults ----

enum class Family { kLlama, kMistral, kQwen2, kQwen3, kGemma2, kGemma3 };

Family family_of(const ArchSpec& a) {
  const std::string& n = a.architecture;
  if (n == "MistralForCausalLM") return Family::kMistral;
  if (n == "Qwen2ForCausalLM") return Family::kQwen2;
  if (n == "Qwen3ForCausalLM") return Family::kQwen3;
  if (n == "Gemma2ForCausalLM") return Family::kGemma2;
  if (n == "Gemma3ForCausalLM" || n == "Gemma3ForConditionalGeneration") return Family::kGemma3;
  return Family::kLlama;
}

// The defaults of each family's config class where config.json leaves a key out
// (transformers 5.17: models/<family>/configuration_<family>.py; the RoPE and
// window values are also in tests/golden/rope-references.json).
struct Defaults {
  bool shapes_have_defaults = false;  // Gemma 3 only: the five shape keys below
  int32_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0, num_attention_heads = 0;
  int32_t num_key_value_heads = 0;  // 0: num_attention_heads
  int32_t head_dim = 0;             // 0: hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  double rope_local_base_freq = 0.0;  // Gemma 3's sliding layers
  int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  int32_t sliding_window = 0;  // when the key is absent (and, for Qwen, use_sliding_window is true)
  float query_pre_attn_scalar = 0.0f, attn_logit_softcap = 0.0f, final_logit_softcap = 0.0f;
  int32_t sliding_window_pattern = 0;  // Gemma 3: every Nth layer is global
  std::optional<int32_t> bos_token_id, eos_token_id;
};

Defaults defaults_of(Family f) {
  Defaults d;
  switch (f) {
    case Family::kLlama:
      break;
    case Family::kMistral:
      d.num_key_value_heads = 8;
      d.max_position_embeddings = 131072;
      d.sliding_window = 4096;
      break;
    case Family::kQwen2:
    case Family::kQwen3:
      d.num_key_value_heads = 32;
      d.head_dim = f == Family::kQwen3 ? 128 : 0;
      d.max_position_embeddings = 32768;
      d.sliding_window = 4096;
      break;
    case Family::kGemma2:
      d.num_key_value_heads = 4;
      d.head_dim = 256;
      d.max_position_embeddings = 8192;
      d.tie_word_embeddings = true;
      d.sliding_window = 4096;
      d.query_pre_attn_scalar = 256.0f;
      d.attn_logit_softcap = 50.0f;
      d.final_logit_softcap = 30.0f;
      d.bos_token_id = 2;
      d.eos_token_id = 1;
      break;
    case Family::kGemma3:
      d.shapes_have_defaults = true;
      d.vocab_size = 262208;
      d.hidden_size = 2304;
      d.intermediate_size = 9216;
      d.num_hidden_layers = 26;
      d.num_attention_heads = 8;
      d.num_key_value_heads = 4;
      d.head_dim = 256;
      d.rope_theta = 1000000.0;
      d.rope_local_base_freq = 10000.0;
      d.max_position_embeddings = 131072;
      d.tie_word_embeddings = true;
      d.sliding_window = 4096;
      d.query_pre_attn_scalar = 256.0f;
      d.sliding_window_pattern = 6;
      d.bos_token_id = 2;
      d.eos_token_id = 1;
      break;
  }
  return d;
}

// ---- RoPE ----

// One RoPE object: `rope_scaling` (transformers 4), `rope_parameters` or one of its
// per-layer-type entries (transformers 5); o.where(ctx + ".x") names its fields. A
// missing or "default" rope_type means no scaling. `theta` gets the object's
// rope_theta when it has one.
Status parse_rope_object(const json& r, const Obj& o, const std::string& ctx, RopeScaling* rs, double* theta) {
  if (!r.is_object()) return InvalidArgument(o.where(ctx) + " must be an object or null");
  const Obj ro = o.sub(r, ctx);
  std::string type;
  for (const char* k : {"rope_type", "type"}) {
    const json* t = ro.value(k);
    if (t != nullptr) {
      if (!t->is_string()) return InvalidArgument(ro.where(k) + " must be a string");
      type = t->get<std::string>();
      break;
    }
  }
  if (const json* t = ro.value("rope_theta"); t != nullptr) {
    if (!t->is_number() || !(t->get<double>() > 0) || !std::isfinite(t->get<double>()))
      return InvalidArgument(ro.where("rope_theta") + " must be a finite number > 0");
    *theta = t->get<double>();
  }
  if (const json* f = ro.value("partial_rotary_factor"); f != nullptr && !(f->is_number() && f->get<double>() == 1.0))
    return Unimplemented(ro.where("partial_rotary_factor") + ": partial rotary embeddings are not supported");
  *rs = RopeScaling{};
  if (type == "default" || type.empty()) return Status::Ok();
  auto need_num = [&](const char* k, double* out) -> Status {
    const json* f = ro.value(k);
    if (f == nullptr) return InvalidArgument(ro.where(k) + " is missing");
    if (!f->is_number()) return InvalidArgument(ro.where(k) + " must be a number");
    *out = f->get<double>();
    if (!(*out > 0) || !std::isfinite(*out)) return InvalidArgument(ro.where(k) + " must be > 0");
    return Status::Ok();
  };
  // Optional numbers: HF reads them with `.get(k) or default`, so 0 and null mean the default.
  auto opt_num = [&](const char* k, double* out) -> Status {
    const json* f = ro.value(k);
    if (f == nullptr) return Status::Ok();
    if (!f->is_number() || !std::isfinite(f->get<double>()) || f->get<double>() < 0)
      return InvalidArgument(ro.where(k) + " must be a number >= 0");
    if (f->get<double>() != 0) *out = f->get<double>();
    return Status::Ok();
  };
  auto orig_max = [&]() -> Status {
    double orig = 0;
    KR_RETURN_IF_ERROR(need_num("original_max_position_embeddings", &orig));
    rs->original_max_position_embeddings = static_cast<int64_t>(orig);
    return Status::Ok();
  };
  if (type == "linear") {
    rs->type = RopeScalingType::kLinear;
    return need_num("factor", &rs->factor);
  }
  if (type == "llama3") {
    rs->type = RopeScalingType::kLlama3;
    KR_RETURN_IF_ERROR(need_num("factor", &rs->factor));
    KR_RETURN_IF_ERROR(need_num("low_freq_factor", &rs->low_freq_factor));
    KR_RETURN_IF_ERROR(need_num("high_freq_factor", &rs->high_freq_factor));
    KR_RETURN_IF_ERROR(orig_max());
    if (rs->high_freq_factor <= rs->low_freq_factor)
      return InvalidArgument(ro.where("high_freq_factor") + " must be > low_freq_factor");
    return Status::Ok();
  }
  if (type == "yarn") {
    rs->type = RopeScalingType::kYarn;
    KR_RETURN_IF_ERROR(need_num("factor", &rs->factor));
    KR_RETURN_IF_ERROR(orig_max());
    KR_RETURN_IF_ERROR(opt_num("beta_fast", &rs->beta_fast));
    KR_RETURN_IF_ERROR(opt_num("beta_slow", &rs->beta_slow));
    KR_RETURN_IF_ERROR(opt_num("attention_factor", &rs->attention_factor));
    KR_RETURN_IF_ERROR(opt_num("mscale", &rs->mscale));
    KR_RETURN_IF_ERROR(opt_num("mscale_all_dim", &rs->mscale_all_dim));
    return read_bool(ro, "truncate", &rs->truncate);
  }
  // dynamic (NTK by sequence length), longrope and the rest change the frequencies
  // with the context length or need tables we do not load.
  return Unimplemented(ro.where("rope_type") + ": unsupported rope scaling '" + type +
                       "' (supported: default, linear, llama3, yarn)");
}

const char* layer_type_name(AttentionKind k) {
  return k == AttentionKind::kSliding ? "sliding_attention" : "full_attention";
}

// The RoPE of global layers (ModelConfig) and of sliding ones (ArchSpec). A
// transformers-5 `rope_parameters` wins over the transformers-4 keys when a file
// has both: flat (one RoPE for every layer) or keyed by layer type (Gemma 3).
// Without it: `rope_theta` and `rope_scaling`, and for Gemma 3's sliding layers
// `rope_local_base_freq` without scaling (Gemma3RotaryEmbedding of transformers 4).
Status parse_rope(const Obj& o, Family family, const Defaults& d, ModelConfig* c) {
  ArchSpec& a = c->arch;
  c->rope_theta = d.rope_theta;
  KR_RETURN_IF_ERROR(read_double(o, "rope_theta", &c->rope_theta));
  if (!(c->rope_theta > 0)) return InvalidArgument(o.where("rope_theta") + " must be > 0");
  const double local_default = family == Family::kGemma3 ? d.rope_local_base_freq : 0.0;
  a.sliding_rope_theta = local_default;
  KR_RETURN_IF_ERROR(read_double(o, "rope_local_base_freq", &a.sliding_rope_theta));
  if (family != Family::kGemma3) a.sliding_rope_theta = 0.0;  // not a key of the other families
  a.sliding_rope_scaling = RopeScaling{};
  if (family == Family::kGemma3 && !(a.sliding_rope_theta > 0))
    return InvalidArgument(o.where("rope_local_base_freq") + " must be > 0");

  const json* params = o.value("rope_parameters");
  if (params != nullptr && params->is_object() &&
      (params->contains("full_attention") || params->contains("sliding_attention"))) {
    for (auto it = params->begin(); it != params->end(); ++it)
      if (it.key() != "full_attention" && it.key() != "sliding_attention")
        return Unimplemented(o.where("rope_parameters." + it.key()) + ": unknown layer type");
    bool used[2] = {false, false};
    for (AttentionKind k : a.layer_attention) used[k == AttentionKind::kSliding] = true;
    for (AttentionKind k : {AttentionKind::kGlobal, AttentionKind::kSliding}) {
      const std::string name = layer_type_name(k);
      const std::string ctx = "rope_parameters." + name;
      const json* entry = o.sub(*params, "rope_parameters").value(name);
      if (entry == nullptr) {
        if (used[k == AttentionKind::kSliding]) return InvalidArgument(o.where(ctx) + " is missing");
        continue;
      }
      double theta = 0.0;
      RopeScaling rs;
      KR_RETURN_IF_ERROR(parse_rope_object(*entry, o, ctx, &rs, &theta));
      if (!(theta > 0)) return InvalidArgument(o.where(ctx + ".rope_theta") + " is missing");
      if (k == AttentionKind::kGlobal) {
        c->rope_theta = theta;
        c->rope_scaling = rs;
      } else {
        a.sliding_rope_theta = theta;
        a.sliding_rope_scaling = rs;
      }
    }
    return Status::Ok();
  }
  if (params != nullptr) return parse_rope_object(*params, o, "rope_parameters", &c->rope_scaling, &c->rope_theta);
  const json* scaling = o.value("rope_scaling");
  if (scaling == nullptr) return Status::Ok();
  double ignored = 0;
  return parse_rope_object(*scaling, o, "rope_scaling", &c->rope_scaling, &ignored);
}

// ---- layer types and the sliding window ----

// Which layers slide, and the window: `layer_types` when the file has it (the
// families whose transformers-5 config defines it), else the family's rule:
// Mistral: every layer when sliding_window is set; Qwen2/Qwen3: layers from
// max_window_layers on, only with use_sliding_window; Gemma 2: every other layer
// from the first; Gemma 3: all but every sliding_window_pattern-th.
Status parse_layer_types(const Obj& o, Family family, const Defaults& d, int32_t L, ArchSpec* a) {
  a->layer_attention.assign(static_cast<size_t>(L), AttentionKind::kGlobal);
  a->sliding_window = 0;
  if (family == Family::kLlama) return Status::Ok();
  // The window: absent → the class default; null → none.
  int32_t window = d.sliding_window;
  if (o.has("sliding_window")) {
    window = 0;
    if (o.value("sliding_window") != nullptr) KR_RETURN_IF_ERROR(read_i32(o, "sliding_window", false, &window));
  }
  if (family == Family::kQwen2 || family == Family::kQwen3) {
    bool use = false;
    KR_RETURN_IF_ERROR(read_bool(o, "use_sliding_window", &use));
    if (!use) window = 0;  // Qwen2Config: sliding_window = sliding_window if use_sliding_window else None
  }
  const bool has_types = family != Family::kMistral && o.value("layer_types") != nullptr;
  if (has_types) {
    const json& types = *o.value("layer_types");
    if (!types.is_array() || static_cast<int32_t>(types.size()) != L)
      return InvalidArgument(o.where("layer_types") + " must be a list of num_hidden_layers (" + std::to_string(L) +
                             ") strings");
    for (int32_t l = 0; l < L; ++l) {
      const json& t = types[static_cast<size_t>(l)];
      const std::string name = t.is_string() ? t.get<std::string>() : t.dump();
      if (name == "sliding_attention") {
        a->layer_attention[l] = AttentionKind::kSliding;
      } else if (name != "full_attention") {
        return Unimplemented(o.where("layer_types") + ": unsupported layer type '" + name + "' of layer " +
                             std::to_string(l) + " (supported: full_attention, sliding_attention)");
      }
    }
  } else if (family == Family::kMistral) {
    if (window > 0) a->layer_attention.assign(static_cast<size_t>(L), AttentionKind::kSliding);
  } else if (family == Family::kQwen2 || family == Family::kQwen3) {
    int64_t first = 28;  // Qwen2Config/Qwen3Config max_window_layers
    KR_RETURN_IF_ERROR(read_int(o, "max_window_layers", false, 0, &first));
    if (window > 0)
      for (int64_t l = first; l < L; ++l) a->layer_attention[l] = AttentionKind::kSliding;
  } else if (family == Family::kGemma2) {
    for (int32_t l = 0; l < L; l += 2) a->layer_attention[l] = AttentionKind::kSliding;
  } else {  // Gemma 3: (layer + 1) % pattern != 0 slides
    int32_t pattern = d.sliding_window_pattern;
    const char* key = o.value("sliding_window_pattern") != nullptr ? "sliding_window_pattern" : "_sliding_window_pattern";
    KR_RETURN_IF_ERROR(read_i32(o, key, false, &pattern));
    for (int32_t l = 0; l < L; ++l)
      if ((l + 1) % pattern != 0) a->layer_attention[l] = AttentionKind::kSliding;
  }
  bool any = false;
  for (AttentionKind k : a->layer_attention) any |= k == AttentionKind::kSliding;
  if (any) {
    if (window <= 0)
      return InvalidArgument(o.where("sliding_window") + " must be set for the sliding_attention layers" +
                             ((family == Family::kQwen2 || family == Family::kQwen3)
                                  ? " (Qwen: sliding_window applies only with use_sliding_window: true)"
                                  : ""));
    a->sliding_window = window;
  }
  return Status::Ok();
}

// ---- the keys of each family ----

Status parse_family_keys(const Obj& o, Family family, const Defaults& d, ArchSpec* a) {
  bool attention_bias = false;
  switch (family) {
    case Family::kLlama:
      // LlamaConfig: hidden_act, attention_bias (q/k/v/o), mlp_bias.
      KR_RETURN_IF_ERROR(read_activation(o, "hidden_act", &a->activation));
      KR_RETURN_IF_ERROR(read_bool(o, "attention_bias", &attention_bias));
      a->qkv_bias = a->o_bias = attention_bias;
      return read_bool(o, "mlp_bias", &a->mlp_bias);
    case Family::kMistral:
    case Family::kQwen2:
      return read_activation(o, "hidden_act", &a->activation);
    case Family::kQwen3:
      KR_RETURN_IF_ERROR(read_activation(o, "hidden_act", &a->activation));
      KR_RETURN_IF_ERROR(read_bool(o, "attention_bias", &attention_bias));
      a->qkv_bias = a->o_bias = attention_bias;
      return Status::Ok();
    case Family::kGemma2:
    case Family::kGemma3: {
      // Gemma2Config / Gemma3TextConfig: the MLP uses hidden_activation (a legacy
      // hidden_act beside it is not read by the model).
      KR_RETURN_IF_ERROR(read_activation(o, "hidden_activation", &a->activation));
      KR_RETURN_IF_ERROR(read_bool(o, "attention_bias", &attention_bias));
      a->qkv_bias = a->o_bias = attention_bias;
      a->query_pre_attn_scalar = d.query_pre_attn_scalar;
      KR_RETURN_IF_ERROR(read_optional_float(o, "query_pre_attn_scalar", &a->query_pre_attn_scalar));
      if (a->query_pre_attn_scalar <= 0.0f)
        return InvalidArgument(o.where("query_pre_attn_scalar") + " must be a number > 0");
      a->attn_logit_softcap = d.attn_logit_softcap;
      a->final_logit_softcap = d.final_logit_softcap;
      KR_RETURN_IF_ERROR(read_optional_float(o, "attn_logit_softcapping", &a->attn_logit_softcap));
      KR_RETURN_IF_ERROR(read_optional_float(o, "final_logit_softcapping", &a->final_logit_softcap));
      bool bidirectional = false;
      KR_RETURN_IF_ERROR(read_bool(o, "use_bidirectional_attention", &bidirectional));
      if (bidirectional)
        return Unimplemented(o.where("use_bidirectional_attention") + ": bidirectional attention is not supported");
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status parse_config_object(const json& top, const std::string& file, ModelConfig* c) {
  if (!top.is_object()) return InvalidArgument(file + ": top level must be a JSON object");
  const Obj t{top, file, ""};
  const json* arch = t.value("architectures");
  if (arch == nullptr) return InvalidArgument(t.where("architectures") + " is missing");
  if (!arch->is_array() || arch->empty() || !(*arch)[0].is_string())
    return InvalidArgument(t.where("architectures") + " must be a non-empty list of strings");
  KR_ASSIGN_OR_RETURN(c->arch, family_arch_spec((*arch)[0].get<std::string>(), file));
  const Family family = family_of(c->arch);
  const Defaults d = defaults_of(family);
  // The text model of a vision-language folder is configured by its text_config.
  const json* text = &top;
  if (c->arch.text_of_multimodal) {
    text = t.value("text_config");
    if (text == nullptr || !text->is_object())
      return InvalidArgument(t.where("text_config") + " must be an object (the text model's config)");
  }
  const Obj o = c->arch.text_of_multimodal ? t.sub(*text, "text_config") : t;

  // Shapes.
  const bool req = !d.shapes_have_defaults;
  c->vocab_size = d.vocab_size;
  c->hidden_size = d.hidden_size;
  c->intermediate_size = d.intermediate_size;
  c->num_hidden_layers = d.num_hidden_layers;
  c->num_attention_heads = d.num_attention_heads;
  KR_RETURN_IF_ERROR(read_i32(o, "hidden_size", req, &c->hidden_size));
  KR_RETURN_IF_ERROR(read_i32(o, "intermediate_size", req, &c->intermediate_size));
  KR_RETURN_IF_ERROR(read_i32(o, "num_hidden_layers", req, &c->num_hidden_layers));
  KR_RETURN_IF_ERROR(read_i32(o, "num_attention_heads", req, &c->num_attention_heads));
  KR_RETURN_IF_ERROR(read_i32(o, "vocab_size", req, &c->vocab_size));
  c->num_key_value_heads = d.num_key_value_heads > 0 ? d.num_key_value_heads : c->num_attention_heads;
  KR_RETURN_IF_ERROR(read_i32(o, "num_key_value_heads", false, &c->num_key_value_heads));
  const bool has_head_dim = o.value("head_dim") != nullptr;
  if (d.head_dim == 0 && !has_head_dim && c->hidden_size % c->num_attention_heads != 0)
    return InvalidArgument(o.where("hidden_size") + " is not a multiple of num_attention_heads");
  c->head_dim = d.head_dim > 0 ? d.head_dim : c->hidden_size / c->num_attention_heads;
  KR_RETURN_IF_ERROR(read_i32(o, "head_dim", false, &c->head_dim));
  if (c->head_dim % 2 != 0) return InvalidArgument(o.where("head_dim") + " must be even");
  if (c->num_attention_heads % c->num_key_value_heads != 0)
    return InvalidArgument(o.where("num_key_value_heads") + " must divide num_attention_heads");

  KR_RETURN_IF_ERROR(parse_family_keys(o, family, d, &c->arch));
  KR_RETURN_IF_ERROR(parse_layer_types(o, family, d, c->num_hidden_layers, &c->arch));
  KR_RETURN_IF_ERROR(parse_rope(o, family, d, c));
  KR_RETURN_IF_ERROR(check_forward_supports(c->arch, file));
  c->rms_norm_eps = d.rms_norm_eps;
  KR_RETURN_IF_ERROR(read_double(o, "rms_norm_eps", &c->rms_norm_eps));
  if (!(c->rms_norm_eps > 0)) return InvalidArgument(o.where("rms_norm_eps") + " must be > 0");
  c->max_position_embeddings = d.max_position_embeddings;
  KR_RETURN_IF_ERROR(read_int(o, "max_position_embeddings", false, 1, &c->max_position_embeddings));
  // Tied embeddings and special ids of a vision-language folder: its top level
  // (Gemma3Config) first, then its text_config.
  c->tie_word_embeddings = d.tie_word_embeddings;
  KR_RETURN_IF_ERROR(read_bool(o, "tie_word_embeddings", &c->tie_word_embeddings));
  std::vector<int32_t> bos, eos;
  if (d.bos_token_id) bos = {*d.bos_token_id};
  if (d.eos_token_id) eos = {*d.eos_token_id};
  KR_RETURN_IF_ERROR(read_ids(o, "bos_token_id", &bos));
  KR_RETURN_IF_ERROR(read_ids(o, "eos_token_id", &eos));
  if (c->arch.text_of_multimodal) {
    KR_RETURN_IF_ERROR(read_bool(t, "tie_word_embeddings", &c->tie_word_embeddings));
    KR_RETURN_IF_ERROR(read_ids(t, "bos_token_id", &bos));
    KR_RETURN_IF_ERROR(read_ids(t, "eos_token_id", &eos));
  }
  if (!bos.empty()) c->bos_token_id = bos[0];
  c->eos_token_ids = eos;
  for (int32_t id : c->eos_token_ids)
    if (id >= c->vocab_size) return InvalidArgument(o.where("eos_token_id") + " is not below vocab_size");
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return DataLoss(path + ": read error");
  return ss.str();
}

StatusOr<ModelConfig> parse_model_config(const std::string& json_text, const std::string& file) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(file + ": malformed JSON");
  ModelConfig c;
  try {
    KR_RETURN_IF_ERROR(parse_config_object(j, file, &c));
  } catch (const std::exception& e) {  // defensive: a type error we did not foresee
    return InvalidArgument(file + ": " + e.what());
  }
  return c;
}

StatusOr<ModelConfig> load_model_config(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  KR_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_model_config(text, path);
}

StatusOr<GenerationDefaults> parse_generation_config(const std::string& json_text, const std::string& file) {
  json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded()) return InvalidArgument(file + ": malformed JSON");
  if (!j.is_object()) return InvalidArgument(file + ": top level must be a JSON object");
  GenerationDefaults g;
  const Obj o{j, file, ""};
  try {
    double v = 0;
    if (j.contains("temperature") && !j["temperature"].is_null()) {
      KR_RETURN_IF_ERROR(read_double(o, "temperature", &v));
      g.temperature = static_cast<float>(v);
    }
    if (j.contains("top_p") && !j["top_p"].is_null()) {
      KR_RETURN_IF_ERROR(read_double(o, "top_p", &v));
      g.top_p = static_cast<float>(v);
    }
    if (j.contains("top_k") && !j["top_k"].is_null()) {
      int64_t k = 0;
      KR_RETURN_IF_ERROR(read_int(o, "top_k", true, 0, &k));
      g.top_k = static_cast<int32_t>(k);
    }
    KR_RETURN_IF_ERROR(read_ids(o, "eos_token_id", &g.eos_token_ids));
  } catch (const std::exception& e) {
    return InvalidArgument(file + ": " + e.what());
  }
  return g;
}

StatusOr<GenerationDefaults> load_generation_config(const std::string& model_dir) {
  const std::string path = model_dir + "/generation_config.json";
  std::ifstream probe(path);
  if (!probe) return GenerationDefaults{};
  KR_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_generation_config(text, path);
}

namespace {

// The --arch presets: the config.json of each published checkpoint (the keys that
// shape the forward; the rest are the config class's defaults, as in the file),
// parsed like a folder's. Sources (Hugging Face Hub, config.json of):
//   llama-3.2-3b     meta-llama/Llama-3.2-3B-Instruct
//   llama-3.1-8b     meta-llama/Llama-3.1-8B-Instruct
//   qwen3-8b         Qwen/Qwen3-8B
//   qwen2.5-7b       Qwen/Qwen2.5-7B-Instruct
//   mistral-7b-v0.3  mistralai/Mistral-7B-Instruct-v0.3
//   gemma-3-4b       google/gemma-3-4b-it (text_config; Gemma3ForConditionalGeneration)
struct Preset {
  const char* name;
  const char* config_json;
};

constexpr Preset kPresets[] = {
    {"llama-3.2-3b", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 3072, "intermediate_size": 8192,
      "num_hidden_layers": 28, "num_attention_heads": 24, "num_key_value_heads": 8, "head_dim": 128,
      "vocab_size": 128256, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
      "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                       "original_max_position_embeddings": 8192, "rope_type": "llama3"},
      "tie_word_embeddings": true, "max_position_embeddings": 131072, "hidden_act": "silu",
      "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]})"},
    {"llama-3.1-8b", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
      "vocab_size": 128256, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
      "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                       "original_max_position_embeddings": 8192, "rope_type": "llama3"},
      "tie_word_embeddings": false, "max_position_embeddings": 131072, "hidden_act": "silu",
      "attention_bias": false, "mlp_bias": false,
      "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]})"},
    {"qwen3-8b", R"({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 4096, "intermediate_size": 12288,
      "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
      "vocab_size": 151936, "rms_norm_eps": 1e-06, "rope_theta": 1000000, "rope_scaling": null,
      "tie_word_embeddings": false, "max_position_embeddings": 40960, "hidden_act": "silu",
      "attention_bias": false, "use_sliding_window": false, "sliding_window": null, "max_window_layers": 36,
      "bos_token_id": 151643, "eos_token_id": 151645})"},
    {"qwen2.5-7b", R"({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584, "intermediate_size": 18944,
      "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
      "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "rope_scaling": null, "tie_word_embeddings": false,
      "max_position_embeddings": 32768, "hidden_act": "silu", "use_sliding_window": false,
      "sliding_window": 131072, "max_window_layers": 28, "bos_token_id": 151643, "eos_token_id": 151645})"},
    {"mistral-7b-v0.3", R"({"architectures": ["MistralForCausalLM"], "hidden_size": 4096,
      "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
      "head_dim": 128, "vocab_size": 32768, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0,
      "sliding_window": null, "tie_word_embeddings": false, "max_position_embeddings": 32768,
      "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2})"},
    {"gemma-3-4b", R"({"architectures": ["Gemma3ForConditionalGeneration"], "eos_token_id": [1, 106],
      "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                      "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                      "sliding_window": 1024}})"},
};

}  // namespace

std::vector<std::string> model_config_preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

StatusOr<ModelConfig> model_config_preset(const std::string& arch) {
  std::string known;
  for (const Preset& p : kPresets) {
    if (arch == p.name) return parse_model_config(p.config_json, "--arch " + arch);
    known += (known.empty() ? "" : ", ") + std::string(p.name);
  }
  return NotFound("unknown --arch '" + arch + "' (known: " + known + ")");
}

double rope_attention_factor(const RopeScaling& rs) {
  if (rs.type != RopeScalingType::kYarn) return 1.0;
  if (rs.attention_factor > 0) return rs.attention_factor;
  // HF get_mscale: 0.1 * mscale * ln(scale) + 1 for scale > 1.
  auto mscale = [](double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
  if (rs.mscale > 0 && rs.mscale_all_dim > 0) return mscale(rs.factor, rs.mscale) / mscale(rs.factor, rs.mscale_all_dim);
  return mscale(rs.factor, 1.0);
}

std::vector<int32_t> merged_eos_ids(const ModelConfig& config, const GenerationDefaults& gen) {
  std::vector<int32_t> ids = config.eos_token_ids;
  for (int32_t id : gen.eos_token_ids) {
    bool seen = false;
    for (int32_t x : ids) seen |= (x == id);
    if (!seen) ids.push_back(id);
  }
  return ids;
}

std::vector<float> rope_inv_freq(int32_t head_dim, double theta, const RopeScaling& rs) {
  const int half = head_dim / 2;
  std::vector<float> inv(half);
  const float base = static_cast<float>(theta);
  for (int i = 0; i < half; ++i) {
    // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all float32.
    const float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[i] = 1.0f / std::pow(base, expo);
  }
  if (rs.type == RopeScalingType::kLinear) {
    for (float& f : inv) f = f / static_cast<float>(rs.factor);
  } else if (rs.type == RopeScalingType::kLlama3) {
    // HF _compute_llama3_parameters, elementwise, float32 tensors with Python scalars.
    const float factor = static_cast<float>(rs.factor);
    const float low = static_cast<float>(rs.low_freq_factor);
    const float high = static_cast<float>(rs.high_freq_factor);
    const float old_len = static_cast<float>(rs.original_max_position_embeddings);
    const float low_freq_wavelen = old_len / low;
    const float high_freq_wavelen = old_len / high;
    const float two_pi = static_cast<float>(2.0 * M_PI);
    for (float& f : inv) {
      const float wavelen = two_pi / f;
      float llama = wavelen > low_freq_wavelen ? f / factor : f;
      const float smooth = (old_len / wavelen - low) / (high - low);
      const float smoothed = (1.0f - smooth) * llama / factor + smooth * llama;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      f = medium ? smoothed : llama;
    }
  } else if (rs.type == RopeScalingType::kYarn) {
    // HF _compute_yarn_parameters: a blend of the extrapolated (original) and the
    // interpolated (÷ factor) frequencies with a linear ramp over the dimensions
    // between the correction range [low, high] (Python doubles), in float32.
    const double dim = head_dim, base_d = theta, orig = static_cast<double>(rs.original_max_position_embeddings);
    auto correction_dim = [&](double rotations) {
      return dim * std::log(orig / (rotations * 2.0 * M_PI)) / (2.0 * std::log(base_d));
    };
    double low = correction_dim(rs.beta_fast), high = correction_dim(rs.beta_slow);
    if (rs.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, dim - 1.0);
    if (low == high) high += 0.001;  // HF: prevent a singularity
    const float lo = static_cast<float>(low), span = static_cast<float>(high - low);
    const float factor = static_cast<float>(rs.factor);
    for (int i = 0; i < half; ++i) {
      const float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
      const float p = std::pow(base, expo);
      const float extrapolation = 1.0f / p, interpolation = 1.0f / (factor * p);
      const float ramp = std::min(1.0f, std::max(0.0f, (static_cast<float>(i) - lo) / span));
      const float extrapolation_factor = 1.0f - ramp;
      inv[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
    }
  }
  return inv;
}

}  // namespace kr
