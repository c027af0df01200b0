#include "model/hf_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace kr {
namespace {

using json = nlohmann::json;

std::string where(const std::string& file, const std::string& key) {
  return file + ": key '" + key + "'";
}

// Typed field readers: absent → default (or error when required); wrong type → error.
Status read_int(const json& j, const std::string& file, const char* key, bool required, int64_t min_value,
                int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return InvalidArgument(where(file, key) + " is missing");
    return Status::Ok();
  }
  if (!it->is_number_integer()) return InvalidArgument(where(file, key) + " must be an integer");
  const int64_t v = it->get<int64_t>();
  if (v < min_value || v > INT32_MAX * int64_t{64})
    return InvalidArgument(where(file, key) + " is out of range: " + std::to_string(v));
  *out = v;
  return Status::Ok();
}

Status read_i32(const json& j, const std::string& file, const char* key, bool required, int32_t* out) {
  int64_t v = *out;
  KR_RETURN_IF_ERROR(read_int(j, file, key, required, 1, &v));
  if (v > INT32_MAX) return InvalidArgument(where(file, key) + " is out of range");
  *out = static_cast<int32_t>(v);
  return Status::Ok();
}

Status read_double(const json& j, const std::string& file, const char* key, double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number()) return InvalidArgument(where(file, key) + " must be a number");
  *out = it->get<double>();
  if (!std::isfinite(*out)) return InvalidArgument(where(file, key) + " must be finite");
  return Status::Ok();
}

// An id or a list of ids (HF allows both for eos_token_id).
Status read_ids(const json& j, const std::string& file, const char* key, std::vector<int32_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  auto one = [&](const json& v) -> Status {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      return InvalidArgument(where(file, key) + " must be a non-negative integer or a list of them");
    out->push_back(static_cast<int32_t>(v.get<int64_t>()));
    return Status::Ok();
  };
  out->clear();
  if (it->is_array()) {
    for (const auto& v : *it) KR_RETURN_IF_ERROR(one(v));
    return Status::Ok();
  }
  return one(*it);
}

// The scaling fields of a RoPE object: `rope_scaling` (transformers 4) or
// `rope_parameters` (transformers 5); `ctx` names it in errors. A missing or
// "default" rope_type means no scaling.
Status parse_rope_object(const json& r, const std::string& file, const std::string& ctx, RopeScaling* rs) {
  if (!r.is_object()) return InvalidArgument(where(file, ctx) + " must be an object or null");
  std::string type;
  for (const char* k : {"rope_type", "type"}) {
    auto t = r.find(k);
    if (t != r.end()) {
      if (!t->is_string()) return InvalidArgument(where(file, ctx + "." + k) + " must be a string");
      type = t->get<std::string>();
      break;
    }
  }
  if (type == "default" || type.empty()) {
    rs->type = RopeScalingType::kNone;
    return Status::Ok();
  }
  auto need_num = [&](const char* k, double* out) -> Status {
    auto f = r.find(k);
    if (f == r.end() || f->is_null()) return InvalidArgument(where(file, ctx + "." + k) + " is missing");
    if (!f->is_number()) return InvalidArgument(where(file, ctx + "." + k) + " must be a number");
    *out = f->get<double>();
    if (!(*out > 0) || !std::isfinite(*out)) return InvalidArgument(where(file, ctx + "." + k) + " must be > 0");
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
    double orig = 0;
    KR_RETURN_IF_ERROR(need_num("original_max_position_embeddings", &orig));
    rs->original_max_position_embeddings = static_cast<int64_t>(orig);
    if (rs->high_freq_factor <= rs->low_freq_factor)
      return InvalidArgument(where(file, ctx + ".high_freq_factor") + " must be > low_freq_factor");
    return Status::Ok();
  }
  return Unimplemented(where(file, ctx + ".rope_type") + ": unsupported rope scaling '" + type + "'");
}

// rope_theta and scaling. transformers 5 writes both inside `rope_parameters`
// ({rope_type, rope_theta, factor, ...}) instead of `rope_scaling` plus a
// top-level `rope_theta`; when `rope_parameters` is there it wins (a top-level
// rope_theta is only the fallback for a rope_parameters without one, and
// rope_scaling is ignored).
Status parse_rope(const json& j, const std::string& file, ModelConfig* c) {
  KR_RETURN_IF_ERROR(read_double(j, file, "rope_theta", &c->rope_theta));
  auto params = j.find("rope_parameters");
  if (params != j.end() && !params->is_null()) {
    KR_RETURN_IF_ERROR(parse_rope_object(*params, file, "rope_parameters", &c->rope_scaling));
    auto theta = params->find("rope_theta");
    if (theta != params->end() && !theta->is_null()) {
      if (!theta->is_number() || !std::isfinite(theta->get<double>()))
        return InvalidArgument(where(file, "rope_parameters.rope_theta") + " must be a finite number");
      c->rope_theta = theta->get<double>();
    }
    if (!(c->rope_theta > 0)) return InvalidArgument(where(file, "rope_parameters.rope_theta") + " must be > 0");
    return Status::Ok();
  }
  if (!(c->rope_theta > 0)) return InvalidArgument(where(file, "rope_theta") + " must be > 0");
  auto scaling = j.find("rope_scaling");
  if (scaling == j.end() || scaling->is_null()) return Status::Ok();
  return parse_rope_object(*scaling, file, "rope_scaling", &c->rope_scaling);
}

Status read_bool(const json& j, const std::string& file, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return InvalidArgument(where(file, key) + " must be a boolean");
  *out = it->get<bool>();
  return Status::Ok();
}

// hidden_act: the MLP's gate activation, by Hugging Face's ACT2FN names.
Status read_activation(const json& j, const std::string& file, const char* key, Activation* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return InvalidArgument(where(file, key) + " must be a string");
  const std::string v = it->get<std::string>();
  if (v == "silu" || v == "swish") {
    *out = Activation::kSilu;
  } else if (v == "gelu_pytorch_tanh" || v == "gelu_tanh") {
    *out = Activation::kGeluTanh;
  } else {
    return Unimplemented(where(file, key) + ": unsupported activation '" + v + "'");
  }
  return Status::Ok();
}

// The ArchSpec keys of LlamaConfig (transformers models/llama/configuration_llama.py).
Status read_llama_keys(const json& j, const std::string& file, ArchSpec* a) {
  KR_RETURN_IF_ERROR(read_activation(j, file, "hidden_act", &a->activation));
  bool attention_bias = false;
  KR_RETURN_IF_ERROR(read_bool(j, file, "attention_bias", &attention_bias));
  a->qkv_bias = a->o_bias = attention_bias;
  return read_bool(j, file, "mlp_bias", &a->mlp_bias);
}

Status parse_config_object(const json& j, const std::string& file, ModelConfig* c) {
  if (!j.is_object()) return InvalidArgument(file + ": top level must be a JSON object");
  auto arch = j.find("architectures");
  if (arch == j.end()) return InvalidArgument(where(file, "architectures") + " is missing");
  if (!arch->is_array() || arch->empty() || !(*arch)[0].is_string())
    return InvalidArgument(where(file, "architectures") + " must be a non-empty list of strings");
  KR_ASSIGN_OR_RETURN(c->arch, family_arch_spec((*arch)[0].get<std::string>(), file));
  KR_RETURN_IF_ERROR(read_llama_keys(j, file, &c->arch));
  KR_RETURN_IF_ERROR(read_i32(j, file, "hidden_size", true, &c->hidden_size));
  KR_RETURN_IF_ERROR(read_i32(j, file, "intermediate_size", true, &c->intermediate_size));
  KR_RETURN_IF_ERROR(read_i32(j, file, "num_hidden_layers", true, &c->num_hidden_layers));
  KR_RETURN_IF_ERROR(read_i32(j, file, "num_attention_heads", true, &c->num_attention_heads));
  KR_RETURN_IF_ERROR(read_i32(j, file, "vocab_size", true, &c->vocab_size));
  c->num_key_value_heads = c->num_attention_heads;
  KR_RETURN_IF_ERROR(read_i32(j, file, "num_key_value_heads", false, &c->num_key_value_heads));
  if (c->hidden_size % c->num_attention_heads != 0 && j.find("head_dim") == j.end())
    return InvalidArgument(where(file, "hidden_size") + " is not a multiple of num_attention_heads");
  c->head_dim = c->hidden_size / c->num_attention_heads;
  KR_RETURN_IF_ERROR(read_i32(j, file, "head_dim", false, &c->head_dim));
  if (c->head_dim % 2 != 0) return InvalidArgument(where(file, "head_dim") + " must be even");
  if (c->num_attention_heads % c->num_key_value_heads != 0)
    return InvalidArgument(where(file, "num_key_value_heads") + " must divide num_attention_heads");
  c->arch.layer_attention.assign(static_cast<size_t>(c->num_hidden_layers), AttentionKind::kGlobal);
  KR_RETURN_IF_ERROR(check_forward_supports(c->arch, file));
  KR_RETURN_IF_ERROR(read_double(j, file, "rms_norm_eps", &c->rms_norm_eps));
  KR_RETURN_IF_ERROR(parse_rope(j, file, c));
  auto tie = j.find("tie_word_embeddings");
  if (tie != j.end() && !tie->is_null()) {
    if (!tie->is_boolean()) return InvalidArgument(where(file, "tie_word_embeddings") + " must be a boolean");
    c->tie_word_embeddings = tie->get<bool>();
  }
  KR_RETURN_IF_ERROR(read_int(j, file, "max_position_embeddings", false, 1, &c->max_position_embeddings));
  std::vector<int32_t> bos;
  KR_RETURN_IF_ERROR(read_ids(j, file, "bos_token_id", &bos));
  if (!bos.empty()) c->bos_token_id = bos[0];
  KR_RETURN_IF_ERROR(read_ids(j, file, "eos_token_id", &c->eos_token_ids));
  for (int32_t id : c->eos_token_ids)
    if (id >= c->vocab_size) return InvalidArgument(where(file, "eos_token_id") + " is not below vocab_size");
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
  try {
    double v = 0;
    if (j.contains("temperature") && !j["temperature"].is_null()) {
      KR_RETURN_IF_ERROR(read_double(j, file, "temperature", &v));
      g.temperature = static_cast<float>(v);
    }
    if (j.contains("top_p") && !j["top_p"].is_null()) {
      KR_RETURN_IF_ERROR(read_double(j, file, "top_p", &v));
      g.top_p = static_cast<float>(v);
    }
    if (j.contains("top_k") && !j["top_k"].is_null()) {
      int64_t k = 0;
      KR_RETURN_IF_ERROR(read_int(j, file, "top_k", true, 0, &k));
      g.top_k = static_cast<int32_t>(k);
    }
    KR_RETURN_IF_ERROR(read_ids(j, file, "eos_token_id", &g.eos_token_ids));
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

StatusOr<ModelConfig> model_config_preset(const std::string& arch) {
  if (arch != "llama-3.2-3b") return NotFound("unknown --arch '" + arch + "' (known: llama-3.2-3b)");
  ModelConfig c;
  KR_ASSIGN_OR_RETURN(c.arch, family_arch_spec("LlamaForCausalLM", "--arch " + arch));
  c.hidden_size = 3072;
  c.intermediate_size = 8192;
  c.num_hidden_layers = 28;
  c.arch.layer_attention.assign(28, AttentionKind::kGlobal);
  c.num_attention_heads = 24;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.vocab_size = 128256;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.rope_scaling = {RopeScalingType::kLlama3, 32.0, 1.0, 4.0, 8192};
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 131072;
  c.bos_token_id = 128000;
  c.eos_token_ids = {128001, 128008, 128009};
  return c;
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
  }
  return inv;
}

}  // namespace kr
