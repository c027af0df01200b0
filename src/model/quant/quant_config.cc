#include "model/quant/quant_config.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/hf_config.h"

namespace kr {

// ordered_json: GPTQModel's `dynamic` is first-match in file order, and
// compressed-tensors' config_groups are tried in order.
using ojson = nlohmann::ordered_json;

struct QuantConfig::Impl {
  ModuleQuantParams base;
  // AWQ / fbgemm_fp8 modules_to_not_convert (substring match, as transformers and
  // vLLM's is_layer_skipped(skip_with_substr=True) do).
  std::vector<std::string> not_convert;
  // GPTQModel `dynamic`: first matching pattern wins; "-:" excludes.
  struct Dynamic {
    std::string pattern;
    bool negative = false;
    std::regex re;
    ModuleQuantParams params;
  };
  std::vector<Dynamic> dynamic;
  // compressed-tensors config_groups and ignore: a module name, "re:<regex>"
  // (re.match) or a class name ("Linear").
  struct Target {
    std::string text;
    bool is_regex = false;
    std::regex re;
  };
  struct CtGroup {
    std::string key;
    std::vector<Target> targets;
    ModuleQuantParams params;
  };
  std::vector<CtGroup> ct_groups;
  std::vector<Target> ct_ignore;
  // ModelOpt exclude_modules / ignore (exact, substring or fnmatch wildcard, as
  // vLLM modelopt.py::is_layer_excluded).
  std::vector<std::string> exclude;
  // MLX per-module overrides: params, or nullopt for `false`.
  std::map<std::string, std::optional<ModuleQuantParams>> mlx_overrides;
};

namespace {

const char* kSupported = "supported: awq (GEMM), gptq (4/8-bit, v1/v2), compressed-tensors (pack-quantized W4A16/W8A16, "
                         "float-quantized FP8), fbgemm_fp8, modelopt (FP8), MLX affine (4/8-bit)";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Reads typed fields of one JSON object; `file` and `path` ("quantization_config")
// name the key in every message.
class Obj {
 public:
  Obj(const ojson& j, std::string file, std::string path) : j_(j), file_(std::move(file)), path_(std::move(path)) {}

  std::string key(const std::string& k) const { return file_ + ": key '" + (path_.empty() ? k : path_ + "." + k) + "'"; }
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  const ojson& json() const { return j_; }
  bool has(const std::string& k) const { return j_.contains(k) && !j_.at(k).is_null(); }
  const ojson& at(const std::string& k) const { return j_.at(k); }
  Obj child(const std::string& k) const { return Obj(j_.at(k), file_, path_.empty() ? k : path_ + "." + k); }

  // First present key of `names`; nullptr when none.
  const char* first_of(std::initializer_list<const char*> names) const {
    for (const char* n : names)
      if (has(n)) return n;
    return nullptr;
  }

  Status get_int(const std::string& k, int64_t* out) const {
    const ojson& v = j_.at(k);
    if (v.is_number_integer()) {
      *out = v.get<int64_t>();
      return Status::Ok();
    }
    // Some writers store integral values as floats (e.g. 128.0).
    if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())) &&
        std::abs(v.get<double>()) < 1e12) {
      *out = static_cast<int64_t>(v.get<double>());
      return Status::Ok();
    }
    return InvalidArgument(key(k) + " must be an integer");
  }
  Status get_bool(const std::string& k, bool* out) const {
    if (!has(k)) return Status::Ok();
    if (!j_.at(k).is_boolean()) return InvalidArgument(key(k) + " must be true or false");
    *out = j_.at(k).get<bool>();
    return Status::Ok();
  }
  Status get_string(const std::string& k, std::string* out) const {
    if (!has(k)) return Status::Ok();
    if (!j_.at(k).is_string()) return InvalidArgument(key(k) + " must be a string");
    *out = j_.at(k).get<std::string>();
    return Status::Ok();
  }
  Status get_number(const std::string& k, double* out) const {
    if (!has(k)) return Status::Ok();
    if (!j_.at(k).is_number()) return InvalidArgument(key(k) + " must be a number");
    *out = j_.at(k).get<double>();
    return Status::Ok();
  }
  Status get_strings(const std::string& k, std::vector<std::string>* out) const {
    out->clear();
    if (!has(k)) return Status::Ok();
    const ojson& v = j_.at(k);
    if (v.is_string()) {  // a single module name
      out->push_back(v.get<std::string>());
      return Status::Ok();
    }
    if (!v.is_array()) return InvalidArgument(key(k) + " must be a list of strings");
    for (const auto& e : v) {
      if (!e.is_string()) return InvalidArgument(key(k) + " must be a list of strings");
      out->push_back(e.get<std::string>());
    }
    return Status::Ok();
  }

 private:
  const ojson& j_;
  std::string file_, path_;
};

Status unsupported(const Obj& o, const std::string& k, const std::string& what) {
  return Unimplemented(o.key(k) + ": " + what);
}

Status check_group_size(const Obj& o, const char* k, int64_t g) {
  if (g == -1 || (g > 0 && g <= (int64_t{1} << 24))) return Status::Ok();
  return InvalidArgument(o.key(k) + " is " + std::to_string(g) + "; expected a positive group size or -1 (one group per row)");
}

// Python re.match semantics: anchored at the start, not at the end.
bool regex_match_start(const std::regex& re, const std::string& s) {
  return std::regex_search(s, re, std::regex_constants::match_continuous);
}

Status compile_regex(const std::string& where, const std::string& pattern, std::regex* out) {
  if (pattern.size() > 512) return InvalidArgument(where + ": pattern longer than 512 characters");
  try {
    *out = std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error&) {
    return InvalidArgument(where + ": invalid regular expression '" + pattern + "'");
  }
  return Status::Ok();
}

Status parse_targets(const Obj& o, const std::string& k, std::vector<QuantConfig::Impl::Target>* out) {
  std::vector<std::string> names;
  KR_RETURN_IF_ERROR(o.get_strings(k, &names));
  for (const std::string& n : names) {
    QuantConfig::Impl::Target t;
    t.text = n;
    if (n.rfind("re:", 0) == 0) {
      t.is_regex = true;
      KR_RETURN_IF_ERROR(compile_regex(o.key(k), n.substr(3), &t.re));
    }
    out->push_back(std::move(t));
  }
  return Status::Ok();
}

std::string object_origin(const Obj& q) {
  return q.path().empty() ? q.file() : q.file() + ": key '" + q.path() + "'";
}

// ---------------------------------------------------------------------------
// AWQ: AutoAWQ awq/models/_config.py::AwqConfig.to_transformers_dict;
// vLLM awq.py::AWQConfig.from_config reads bits|w_bit, group_size|q_group_size,
// zero_point, modules_to_not_convert.
Status parse_awq(const Obj& q, QuantConfig::Impl* impl) {
  ModuleQuantParams& p = impl->base;
  p.kind = QuantKind::kInt;
  const char* bk = q.first_of({"bits", "w_bit"});
  if (!bk) return InvalidArgument(q.key("bits") + " is missing (AWQ)");
  int64_t bits = 0;
  KR_RETURN_IF_ERROR(q.get_int(bk, &bits));
  if (bits != 4) return unsupported(q, bk, "AWQ with " + std::to_string(bits) + " bits is not supported (AWQ GEMM is 4-bit)");
  p.bits = 4;
  const char* gk = q.first_of({"group_size", "q_group_size"});
  if (!gk) return InvalidArgument(q.key("group_size") + " is missing (AWQ)");
  KR_RETURN_IF_ERROR(q.get_int(gk, &p.group_size));
  KR_RETURN_IF_ERROR(check_group_size(q, gk, p.group_size));
  bool zero_point = true;
  KR_RETURN_IF_ERROR(q.get_bool("zero_point", &zero_point));
  if (!zero_point) return unsupported(q, "zero_point", "AWQ without zero points is not supported (GEMM checkpoints always have them)");
  p.symmetric = false;
  std::string version = "gemm";
  KR_RETURN_IF_ERROR(q.get_string("version", &version));
  if (lower(version) != "gemm")
    return unsupported(q, "version",
                       "AWQ version '" + version + "' is not supported (only the GEMM layout; GEMV, GEMV-fast, Marlin, exllama and "
                       "IPEX checkpoints pack differently)");
  KR_RETURN_IF_ERROR(q.get_strings("modules_to_not_convert", &impl->not_convert));
  p.origin = object_origin(q);
  return Status::Ok();
}

// GPTQ settings of one object (the top level or a `dynamic` override on top of it).
Status parse_gptq_fields(const Obj& q, ModuleQuantParams* p) {
  if (q.has("bits")) {
    int64_t bits = 0;
    KR_RETURN_IF_ERROR(q.get_int("bits", &bits));
    if (bits != 4 && bits != 8)
      return unsupported(q, "bits", "GPTQ with " + std::to_string(bits) + " bits is not supported (4 and 8 are)");
    p->bits = static_cast<int>(bits);
  }
  if (q.has("group_size")) {
    KR_RETURN_IF_ERROR(q.get_int("group_size", &p->group_size));
    KR_RETURN_IF_ERROR(check_group_size(q, "group_size", p->group_size));
  }
  KR_RETURN_IF_ERROR(q.get_bool("desc_act", &p->act_order));
  KR_RETURN_IF_ERROR(q.get_bool("sym", &p->symmetric));
  return Status::Ok();
}

// GPTQ: AutoGPTQ BaseQuantizeConfig / GPTQModel QuantizeConfig; vLLM gptq.py
// (use_v2_format = checkpoint_format == "gptq_v2").
Status parse_gptq(const Obj& q, QuantConfig::Impl* impl) {
  ModuleQuantParams& p = impl->base;
  p.kind = QuantKind::kInt;
  p.symmetric = true;  // AutoGPTQ from_quant_config's default when `sym` is absent
  if (!q.has("bits")) return InvalidArgument(q.key("bits") + " is missing (GPTQ)");
  if (!q.has("group_size")) return InvalidArgument(q.key("group_size") + " is missing (GPTQ)");
  KR_RETURN_IF_ERROR(parse_gptq_fields(q, &p));
  bool marlin = false;
  KR_RETURN_IF_ERROR(q.get_bool("is_marlin_format", &marlin));
  if (marlin) return unsupported(q, "is_marlin_format", "Marlin-repacked GPTQ checkpoints are not supported (repacked weights)");
  const char* fk = q.first_of({"checkpoint_format", "format"});
  std::string fmt = "gptq";
  if (fk) KR_RETURN_IF_ERROR(q.get_string(fk, &fmt));
  fmt = lower(fmt);
  if (fmt == "gptq") {
    p.gptq_version = 1;
  } else if (fmt == "gptq_v2") {
    p.gptq_version = 2;
  } else if (fmt == "marlin") {
    return unsupported(q, fk, "Marlin-repacked GPTQ checkpoints are not supported");
  } else {
    return unsupported(q, fk, "GPTQ checkpoint format '" + fmt + "' is not supported (gptq and gptq_v2 are)");
  }
  std::string pack_dtype = "int32";
  KR_RETURN_IF_ERROR(q.get_string("pack_dtype", &pack_dtype));
  if (pack_dtype != "int32") return unsupported(q, "pack_dtype", "GPTQ words of " + pack_dtype + " are not supported (int32 is)");
  p.origin = object_origin(q);
  if (q.has("dynamic")) {
    const Obj d = q.child("dynamic");
    if (!d.json().is_object()) return InvalidArgument(q.key("dynamic") + " must be an object");
    for (auto it = d.json().begin(); it != d.json().end(); ++it) {
      QuantConfig::Impl::Dynamic dyn;
      std::string pat = it.key();
      dyn.negative = pat.rfind("-:", 0) == 0;
      if (dyn.negative || pat.rfind("+:", 0) == 0) pat = pat.substr(2);
      dyn.pattern = it.key();
      KR_RETURN_IF_ERROR(compile_regex(d.key(it.key()), pat, &dyn.re));
      if (!it.value().is_object()) return InvalidArgument(d.key(it.key()) + " must be an object");
      dyn.params = p;
      const Obj o = d.child(it.key());
      KR_RETURN_IF_ERROR(parse_gptq_fields(o, &dyn.params));
      dyn.params.origin = object_origin(o);
      impl->dynamic.push_back(std::move(dyn));
    }
  }
  return Status::Ok();
}

// compressed-tensors: quantization/quant_args.py::QuantizationArgs (weights and
// input_activations of one config group); vLLM compressed_tensors.py
// _get_scheme_from_parts for which combinations load.
Status parse_ct_group(const Obj& g, const std::string& top_format, ModuleQuantParams* p) {
  std::string fmt = top_format;
  KR_RETURN_IF_ERROR(g.get_string("format", &fmt));
  if (!g.has("weights")) return unsupported(g, "weights", "a config group without weight quantization is not supported");
  const Obj w = g.child("weights");
  if (!w.json().is_object()) return InvalidArgument(g.key("weights") + " must be an object");
  std::string type = "int", strategy;
  KR_RETURN_IF_ERROR(w.get_string("type", &type));
  KR_RETURN_IF_ERROR(w.get_string("strategy", &strategy));
  int64_t bits = 0;
  if (!w.has("num_bits")) return InvalidArgument(w.key("num_bits") + " is missing");
  KR_RETURN_IF_ERROR(w.get_int("num_bits", &bits));
  bool dynamic = false;
  if (w.has("dynamic") && !w.at("dynamic").is_boolean())
    return unsupported(w, "dynamic", "dynamic weight quantization is not supported");
  KR_RETURN_IF_ERROR(w.get_bool("dynamic", &dynamic));
  if (dynamic) return unsupported(w, "dynamic", "dynamic weight quantization is not supported");
  int64_t group_size = 0;
  if (w.has("group_size")) KR_RETURN_IF_ERROR(w.get_int("group_size", &group_size));
  if (strategy.empty()) strategy = group_size > 0 ? "group" : group_size == -1 ? "channel" : "tensor";  // QuantizationArgs inference
  p->symmetric = true;
  KR_RETURN_IF_ERROR(w.get_bool("symmetric", &p->symmetric));
  p->origin = object_origin(g);
  if (type == "int") {
    if (fmt != "pack-quantized")
      return unsupported(g, "format", "compressed-tensors format '" + fmt + "' with integer weights is not supported (pack-quantized is)");
    if (bits != 4 && bits != 8)
      return unsupported(w, "num_bits", "compressed-tensors integer weights of " + std::to_string(bits) + " bits are not supported (4 and 8 are)");
    p->kind = QuantKind::kInt;
    p->bits = static_cast<int>(bits);
    if (strategy == "group") {
      if (group_size <= 0) return InvalidArgument(w.key("group_size") + " must be positive for strategy 'group'");
      p->group_size = group_size;
    } else if (strategy == "channel") {
      p->group_size = -1;
    } else {
      return unsupported(w, "strategy", "compressed-tensors integer strategy '" + strategy + "' is not supported (group and channel are)");
    }
    std::string actorder;
    if (w.has("actorder")) {
      if (w.at("actorder").is_boolean()) {
        actorder = w.at("actorder").get<bool>() ? "group" : "";
      } else {
        KR_RETURN_IF_ERROR(w.get_string("actorder", &actorder));
      }
    }
    // "dynamic" is the old alias of "group", "static" of "weight" (QuantizationArgs validator).
    if (actorder == "group" || actorder == "dynamic") {
      if (strategy != "group") return InvalidArgument(w.key("actorder") + " needs strategy 'group'");
      p->act_order = true;
    } else if (!actorder.empty() && actorder != "weight" && actorder != "static") {
      return unsupported(w, "actorder", "actorder '" + actorder + "' is not supported (null, group, weight are)");
    }
    if (g.has("input_activations"))
      return unsupported(g, "input_activations", "integer weights with quantized activations (W4A8/W8A8 int) are not supported");
    return Status::Ok();
  }
  if (type != "float") return unsupported(w, "type", "compressed-tensors weight type '" + type + "' is not supported");
  if (fmt != "float-quantized" && fmt != "naive-quantized")
    return unsupported(g, "format", "compressed-tensors format '" + fmt + "' with float weights is not supported (float-quantized is)");
  if (bits != 8) return unsupported(w, "num_bits", "compressed-tensors float weights of " + std::to_string(bits) + " bits are not supported (FP8 is)");
  if (!p->symmetric) return unsupported(w, "symmetric", "asymmetric FP8 weights are not supported");
  p->kind = QuantKind::kFp8;
  p->bits = 8;
  if (strategy == "tensor") {
    p->weight_scale = ScaleLayout::kTensor;
  } else if (strategy == "channel") {
    p->weight_scale = ScaleLayout::kGroup;
  } else if (strategy == "block") {
    p->weight_scale = ScaleLayout::kBlock;
    const ojson* bs = w.has("block_structure") ? &w.at("block_structure") : nullptr;
    if (!bs || !bs->is_array() || bs->size() != 2 || !(*bs)[0].is_number_integer() || !(*bs)[1].is_number_integer() ||
        (*bs)[0].get<int64_t>() <= 0 || (*bs)[1].get<int64_t>() <= 0 || (*bs)[0].get<int64_t>() > (1 << 20) ||
        (*bs)[1].get<int64_t>() > (1 << 20))
      return InvalidArgument(w.key("block_structure") + " must be two positive integers for strategy 'block'");
    p->block_n = (*bs)[0].get<int64_t>();
    p->block_k = (*bs)[1].get<int64_t>();
  } else {
    return unsupported(w, "strategy", "compressed-tensors FP8 strategy '" + strategy + "' is not supported (tensor, channel, block are)");
  }
  p->act = ActQuant::kNone;
  if (g.has("input_activations")) {
    const Obj a = g.child("input_activations");
    if (!a.json().is_object()) return InvalidArgument(g.key("input_activations") + " must be an object or null");
    std::string atype = "int", astrategy;
    KR_RETURN_IF_ERROR(a.get_string("type", &atype));
    KR_RETURN_IF_ERROR(a.get_string("strategy", &astrategy));
    int64_t abits = 0;
    if (a.has("num_bits")) KR_RETURN_IF_ERROR(a.get_int("num_bits", &abits));
    if (atype != "float" || abits != 8)
      return unsupported(a, "type", "FP8 weights with " + std::to_string(abits) + "-bit " + atype + " activations are not supported");
    bool adyn = false;
    if (a.has("dynamic") && !a.at("dynamic").is_boolean())
      return unsupported(a, "dynamic", "activation dynamic mode other than true/false is not supported");
    KR_RETURN_IF_ERROR(a.get_bool("dynamic", &adyn));
    if (astrategy == "tensor") {
      p->act = adyn ? ActQuant::kDynamicTensor : ActQuant::kStaticTensor;
    } else if (astrategy == "token" && adyn) {
      p->act = ActQuant::kDynamicToken;
    } else if (astrategy == "group" && adyn) {
      p->act = ActQuant::kDynamicGroup;
      if (!a.has("group_size")) return InvalidArgument(a.key("group_size") + " is missing for strategy 'group'");
      KR_RETURN_IF_ERROR(a.get_int("group_size", &p->act_group_size));
      if (p->act_group_size <= 0) return InvalidArgument(a.key("group_size") + " must be positive");
    } else {
      return unsupported(a, "strategy", "FP8 activation strategy '" + astrategy + "' (dynamic " + (adyn ? "true" : "false") +
                                            ") is not supported");
    }
  }
  return Status::Ok();
}

Status parse_compressed_tensors(const Obj& q, QuantConfig::Impl* impl, bool* fp8_kv) {
  std::string fmt;
  KR_RETURN_IF_ERROR(q.get_string("format", &fmt));
  if (fmt == "int-quantized") return unsupported(q, "format", "compressed-tensors int-quantized (W8A8 int8) is not supported");
  if (fmt == "marlin-24" || fmt.find("sparse") != std::string::npos)
    return unsupported(q, "format", "compressed-tensors sparse format '" + fmt + "' is not supported");
  if (fmt.find("fp4") != std::string::npos) return unsupported(q, "format", "compressed-tensors '" + fmt + "' (FP4) is not supported");
  if (q.has("sparsity_config")) {
    const ojson& s = q.at("sparsity_config");
    if (!s.is_object()) return InvalidArgument(q.key("sparsity_config") + " must be an object or null");
    if (!s.empty()) {
      const auto f = s.find("format");
      if (!(f != s.end() && f->is_string() && f->get<std::string>() == "dense"))
        return unsupported(q, "sparsity_config", "sparse compressed-tensors checkpoints are not supported");
    }
  }
  if (q.has("transform_config")) {
    const ojson& t = q.at("transform_config");
    if (!t.is_object() || !t.empty())
      return unsupported(q, "transform_config", "compressed-tensors transforms (rotations) are not supported");
  }
  KR_RETURN_IF_ERROR(parse_targets(q, "ignore", &impl->ct_ignore));
  if (!q.has("config_groups")) return InvalidArgument(q.key("config_groups") + " is missing (compressed-tensors)");
  const Obj groups = q.child("config_groups");
  if (!groups.json().is_object() || groups.json().empty())
    return InvalidArgument(q.key("config_groups") + " must be a non-empty object");
  for (auto it = groups.json().begin(); it != groups.json().end(); ++it) {
    const Obj g = groups.child(it.key());
    if (!g.json().is_object()) return InvalidArgument(groups.key(it.key()) + " must be an object");
    QuantConfig::Impl::CtGroup cg;
    cg.key = it.key();
    KR_RETURN_IF_ERROR(parse_targets(g, "targets", &cg.targets));
    if (cg.targets.empty()) return InvalidArgument(g.key("targets") + " is missing or empty");
    KR_RETURN_IF_ERROR(parse_ct_group(g, fmt, &cg.params));
    impl->ct_groups.push_back(std::move(cg));
  }
  if (q.has("kv_cache_scheme")) {
    const Obj kv = q.child("kv_cache_scheme");
    if (!kv.json().is_object()) return InvalidArgument(q.key("kv_cache_scheme") + " must be an object or null");
    std::string type, strategy = "tensor";
    int64_t bits = 0;
    KR_RETURN_IF_ERROR(kv.get_string("type", &type));
    KR_RETURN_IF_ERROR(kv.get_string("strategy", &strategy));
    if (kv.has("num_bits")) KR_RETURN_IF_ERROR(kv.get_int("num_bits", &bits));
    if (type != "float" || bits != 8 || strategy != "tensor")
      return unsupported(q, "kv_cache_scheme", "KV-cache quantization other than FP8 per-tensor is not supported");
    *fp8_kv = true;
  }
  return Status::Ok();
}

// Meta fbgemm_fp8: transformers FbgemmFp8Config; vLLM fbgemm_fp8.py.
Status parse_fbgemm(const Obj& q, QuantConfig::Impl* impl) {
  ModuleQuantParams& p = impl->base;
  p.kind = QuantKind::kFp8;
  p.bits = 8;
  p.weight_scale = ScaleLayout::kGroup;
  p.act = ActQuant::kDynamicToken;
  double ub = 0.0;
  KR_RETURN_IF_ERROR(q.get_number("activation_scale_ub", &ub));
  if (!(ub >= 0.0 && ub < 1e30)) return InvalidArgument(q.key("activation_scale_ub") + " must be a non-negative number");
  p.activation_scale_ub = static_cast<float>(ub);
  KR_RETURN_IF_ERROR(q.get_strings("modules_to_not_convert", &impl->not_convert));
  p.origin = object_origin(q);
  return Status::Ok();
}

// NVIDIA ModelOpt: vLLM modelopt.py::ModelOptQuantConfigBase.from_config reads the
// legacy {"quantization": {quant_algo, kv_cache_quant_algo, exclude_modules}} or
// the config.json form {quant_algo, kv_cache_scheme, ignore}.
Status parse_modelopt(const Obj& top, QuantConfig::Impl* impl, bool* fp8_kv) {
  const bool legacy = top.has("quantization");
  const Obj q = legacy ? top.child("quantization") : top;
  if (!q.json().is_object()) return InvalidArgument(top.key("quantization") + " must be an object");
  std::string algo;
  KR_RETURN_IF_ERROR(q.get_string("quant_algo", &algo));
  if (algo.empty()) return InvalidArgument(q.key("quant_algo") + " is missing (ModelOpt)");
  ModuleQuantParams& p = impl->base;
  p.kind = QuantKind::kFp8;
  p.bits = 8;
  const std::string up = [&] { std::string s = algo; for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c))); return s; }();
  if (up == "FP8") {
    p.weight_scale = ScaleLayout::kTensor;
    p.act = ActQuant::kStaticTensor;
  } else if (up == "FP8_PER_CHANNEL_PER_TOKEN") {
    p.weight_scale = ScaleLayout::kGroup;
    p.act = ActQuant::kDynamicToken;
  } else {
    return unsupported(q, "quant_algo", "ModelOpt quant_algo '" + algo + "' is not supported (FP8 and FP8_PER_CHANNEL_PER_TOKEN are)");
  }
  KR_RETURN_IF_ERROR(q.get_strings(legacy ? "exclude_modules" : "ignore", &impl->exclude));
  if (legacy) {
    std::string kv;
    KR_RETURN_IF_ERROR(q.get_string("kv_cache_quant_algo", &kv));
    if (!kv.empty() && lower(kv) != "fp8") return unsupported(q, "kv_cache_quant_algo", "KV-cache algorithm '" + kv + "' is not supported (FP8 is)");
    *fp8_kv = !kv.empty();
  } else if (q.has("kv_cache_scheme")) {
    const Obj kv = q.child("kv_cache_scheme");
    std::string type;
    int64_t bits = 0;
    if (!kv.json().is_object()) return InvalidArgument(q.key("kv_cache_scheme") + " must be an object or null");
    KR_RETURN_IF_ERROR(kv.get_string("type", &type));
    if (kv.has("num_bits")) KR_RETURN_IF_ERROR(kv.get_int("num_bits", &bits));
    if (type != "float" || bits != 8) return unsupported(q, "kv_cache_scheme", "KV-cache quantization other than FP8 is not supported");
    *fp8_kv = true;
  }
  p.origin = object_origin(q);
  return Status::Ok();
}

// MLX affine parameters of one object (the top level or a per-module override).
Status parse_mlx_fields(const Obj& q, ModuleQuantParams* p) {
  if (!q.has("bits")) return InvalidArgument(q.key("bits") + " is missing (MLX)");
  if (!q.has("group_size")) return InvalidArgument(q.key("group_size") + " is missing (MLX)");
  int64_t bits = 0, g = 0;
  KR_RETURN_IF_ERROR(q.get_int("bits", &bits));
  KR_RETURN_IF_ERROR(q.get_int("group_size", &g));
  std::string mode = "affine";
  KR_RETURN_IF_ERROR(q.get_string("mode", &mode));
  if (mode != "affine") return unsupported(q, "mode", "MLX quantization mode '" + mode + "' is not supported (affine is)");
  if (bits != 4 && bits != 8) return unsupported(q, "bits", "MLX " + std::to_string(bits) + "-bit quantization is not supported (4 and 8 are)");
  if (g != 32 && g != 64 && g != 128)
    return unsupported(q, "group_size", "MLX group size " + std::to_string(g) + " is not supported (32, 64, 128 are)");
  p->kind = QuantKind::kInt;
  p->bits = static_cast<int>(bits);
  p->group_size = g;
  p->symmetric = false;
  p->origin = object_origin(q);
  return Status::Ok();
}

// mlx-lm utils.py::quantize_model / load_model: {"group_size", "bits", "mode",
// "<module path>": {...} | bool, ...}.
Status parse_mlx(const Obj& q, QuantConfig::Impl* impl) {
  KR_RETURN_IF_ERROR(parse_mlx_fields(q, &impl->base));
  for (auto it = q.json().begin(); it != q.json().end(); ++it) {
    const std::string& k = it.key();
    if (k == "group_size" || k == "bits" || k == "mode" || k == "quant_method") continue;
    if (it.value().is_boolean()) {
      if (it.value().get<bool>()) impl->mlx_overrides[k] = impl->base;
      else impl->mlx_overrides[k] = std::nullopt;
    } else if (it.value().is_object()) {
      ModuleQuantParams p;
      KR_RETURN_IF_ERROR(parse_mlx_fields(q.child(k), &p));
      impl->mlx_overrides[k] = p;
    } else {
      return InvalidArgument(q.key(k) + " must be an object of quantization parameters or a boolean");
    }
  }
  return Status::Ok();
}

Status method_error(const Obj& q, const std::string& method) {
  const std::string m = lower(method);
  std::string why;
  if (m == "bitsandbytes") why = "bitsandbytes checkpoints are not supported";
  else if (m == "exl2" || m == "exllama" || m == "exllamav2") why = "exllama v2 (EXL2) checkpoints are not supported";
  else if (m == "marlin" || m == "gptq_marlin" || m == "awq_marlin") why = "Marlin-repacked checkpoints are not supported";
  else if (m == "fp8") why = "Hugging Face block FP8 checkpoints (weight_scale_inv) are not supported";
  else why = "unknown quantization method '" + method + "'";
  return Unimplemented(q.key("quant_method") + " is '" + method + "': " + why + " (" + kSupported + ")");
}

StatusOr<ojson> parse_json_object(const std::string& text, const std::string& file) {
  ojson j = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return DataLoss(file + ": malformed JSON");
  if (!j.is_object()) return DataLoss(file + ": top level must be an object");
  return j;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

const char* quant_method_name(QuantMethod m) {
  switch (m) {
    case QuantMethod::kNone: return "none";
    case QuantMethod::kAwq: return "awq";
    case QuantMethod::kGptq: return "gptq";
    case QuantMethod::kCompressedTensors: return "compressed-tensors";
    case QuantMethod::kFbgemmFp8: return "fbgemm_fp8";
    case QuantMethod::kModelOpt: return "modelopt";
    case QuantMethod::kMlx: return "mlx";
  }
  return "?";
}

StatusOr<QuantConfig> parse_quant_config(const std::string& config_json, const std::string& config_file,
                                         const std::map<std::string, std::string>& side_files) {
  KR_ASSIGN_OR_RETURN(ojson cfg, parse_json_object(config_json, config_file));
  QuantConfig c;
  auto impl = std::make_shared<QuantConfig::Impl>();
  const Obj top(cfg, config_file, "");
  // Vision-language configs keep the language model's settings in text_config
  // (mlx-lm load_model does the same lookup).
  const ojson* qc = nullptr;
  std::string qc_path = "quantization_config";
  if (top.has("quantization_config")) {
    qc = &cfg.at("quantization_config");
  } else if (top.has("text_config") && cfg.at("text_config").is_object() && cfg.at("text_config").contains("quantization_config") &&
             !cfg.at("text_config").at("quantization_config").is_null()) {
    qc = &cfg.at("text_config").at("quantization_config");
    qc_path = "text_config.quantization_config";
  }
  if (qc && !qc->is_object()) return InvalidArgument(top.key(qc_path) + " must be an object");
  const bool mlx_old = top.has("quantization");
  if (mlx_old && !cfg.at("quantization").is_object()) return InvalidArgument(top.key("quantization") + " must be an object");
  // mlx-lm reads `quantization` first (utils.py::load_model); vLLM never reads it, so a
  // folder that has it is an MLX folder.
  if (!mlx_old && qc && qc->contains("quant_method") && !qc->at("quant_method").is_null()) {
    const Obj q(*qc, config_file, qc_path);
    std::string method;
    KR_RETURN_IF_ERROR(q.get_string("quant_method", &method));
    const std::string m = lower(method);
    c.source_ = q.key("quant_method");
    if (m == "awq") {
      c.method_ = QuantMethod::kAwq;
      KR_RETURN_IF_ERROR(parse_awq(q, impl.get()));
    } else if (m == "gptq") {
      c.method_ = QuantMethod::kGptq;
      KR_RETURN_IF_ERROR(parse_gptq(q, impl.get()));
    } else if (m == "compressed-tensors") {
      c.method_ = QuantMethod::kCompressedTensors;
      KR_RETURN_IF_ERROR(parse_compressed_tensors(q, impl.get(), &c.fp8_kv_cache_));
    } else if (m == "fbgemm_fp8") {
      c.method_ = QuantMethod::kFbgemmFp8;
      KR_RETURN_IF_ERROR(parse_fbgemm(q, impl.get()));
    } else if (m.rfind("modelopt", 0) == 0) {
      c.method_ = QuantMethod::kModelOpt;
      KR_RETURN_IF_ERROR(parse_modelopt(q, impl.get(), &c.fp8_kv_cache_));
    } else {
      return method_error(q, method);
    }
  } else if (mlx_old || (qc && (qc->contains("bits") || qc->contains("group_size")))) {
    // mlx-lm prefers `quantization` when both are present.
    const Obj q = mlx_old ? top.child("quantization") : Obj(*qc, config_file, qc_path);
    c.method_ = QuantMethod::kMlx;
    c.source_ = object_origin(q);
    KR_RETURN_IF_ERROR(parse_mlx(q, impl.get()));
  } else if (qc) {
    return InvalidArgument(top.key(qc_path) + " has no 'quant_method' and is not MLX's {bits, group_size}");
  } else if (auto it = side_files.find("hf_quant_config.json"); it != side_files.end()) {
    const std::string file = config_file.substr(0, config_file.rfind('/') + 1) + it->first;
    KR_ASSIGN_OR_RETURN(ojson h, parse_json_object(it->second, file));
    const Obj ho(h, file, "");
    std::string producer;
    if (ho.has("producer") && h.at("producer").is_object()) KR_RETURN_IF_ERROR(ho.child("producer").get_string("name", &producer));
    if (lower(producer) != "modelopt") return unsupported(ho, "producer.name", "hf_quant_config.json from '" + producer + "' is not supported (modelopt is)");
    c.method_ = QuantMethod::kModelOpt;
    c.source_ = ho.key("quantization");
    KR_RETURN_IF_ERROR(parse_modelopt(ho, impl.get(), &c.fp8_kv_cache_));
  } else if (auto it2 = side_files.find("quantize_config.json"); it2 != side_files.end()) {
    const std::string file = config_file.substr(0, config_file.rfind('/') + 1) + it2->first;
    KR_ASSIGN_OR_RETURN(ojson h, parse_json_object(it2->second, file));
    const Obj ho(h, file, "");
    std::string method = "gptq";
    KR_RETURN_IF_ERROR(ho.get_string("quant_method", &method));
    if (lower(method) == "awq") {
      c.method_ = QuantMethod::kAwq;
      KR_RETURN_IF_ERROR(parse_awq(ho, impl.get()));
    } else if (lower(method) == "gptq") {
      c.method_ = QuantMethod::kGptq;
      KR_RETURN_IF_ERROR(parse_gptq(ho, impl.get()));
    } else {
      return method_error(ho, method);
    }
    c.source_ = file;
  } else if (auto it3 = side_files.find("quant_config.json"); it3 != side_files.end()) {
    const std::string file = config_file.substr(0, config_file.rfind('/') + 1) + it3->first;
    KR_ASSIGN_OR_RETURN(ojson h, parse_json_object(it3->second, file));
    const Obj ho(h, file, "");
    c.method_ = QuantMethod::kAwq;
    c.source_ = file;
    KR_RETURN_IF_ERROR(parse_awq(ho, impl.get()));
  }
  c.impl_ = std::move(impl);
  return c;
}

StatusOr<QuantConfig> load_quant_config(const std::string& model_dir) {
  const std::string config_path = model_dir + "/config.json";
  KR_ASSIGN_OR_RETURN(std::string text, read_text_file(config_path));
  std::map<std::string, std::string> side;
  for (const char* name : {"hf_quant_config.json", "quantize_config.json", "quant_config.json"}) {
    const std::string p = model_dir + "/" + name;
    if (!file_exists(p)) continue;
    KR_ASSIGN_OR_RETURN(side[name], read_text_file(p));
  }
  return parse_quant_config(text, config_path, side);
}

StatusOr<std::optional<ModuleQuantParams>> QuantConfig::params_for(const std::string& module, ModuleRole role) const {
  using Out = std::optional<ModuleQuantParams>;
  if (module.size() > 1024) return InvalidArgument("module name longer than 1024 characters: '" + module.substr(0, 64) + "...'");
  if (!impl_) return Out();
  const Impl& im = *impl_;
  auto substring_skip = [&](const std::vector<std::string>& list) {
    for (const std::string& s : list)
      if (!s.empty() && module.find(s) != std::string::npos) return true;
    return false;
  };
  switch (method_) {
    case QuantMethod::kNone:
      return Out();
    case QuantMethod::kAwq:
    case QuantMethod::kFbgemmFp8:
      if (role != ModuleRole::kLinear || substring_skip(im.not_convert)) return Out();
      return Out(im.base);
    case QuantMethod::kGptq:
      if (role != ModuleRole::kLinear) return Out();
      for (const Impl::Dynamic& d : im.dynamic) {
        if (!regex_match_start(d.re, module)) continue;
        if (d.negative) return Out();
        return Out(d.params);
      }
      return Out(im.base);
    case QuantMethod::kModelOpt:
      if (role != ModuleRole::kLinear) return Out();
      for (const std::string& e : im.exclude) {
        if (e.empty()) continue;
        if (e == module || module.find(e) != std::string::npos || ::fnmatch(e.c_str(), module.c_str(), 0) == 0) return Out();
      }
      return Out(im.base);
    case QuantMethod::kCompressedTensors: {
      if (role != ModuleRole::kLinear) return Out();
      // vLLM compressed_tensors utils.py: a target matches by exact name, then by
      // "re:" regex (re.match), then by class name.
      for (const Impl::Target& t : im.ct_ignore) {
        if (t.is_regex ? regex_match_start(t.re, module) : t.text == module) return Out();
      }
      for (int pass = 0; pass < 3; ++pass) {
        for (const Impl::CtGroup& g : im.ct_groups) {
          for (const Impl::Target& t : g.targets) {
            const bool hit = pass == 0   ? (!t.is_regex && t.text == module)
                             : pass == 1 ? (t.is_regex && regex_match_start(t.re, module))
                                         : t.text == "Linear";
            if (hit) return Out(g.params);
          }
        }
      }
      return Out();
    }
    case QuantMethod::kMlx: {
      auto it = im.mlx_overrides.find(module);
      if (it != im.mlx_overrides.end()) return it->second;
      return Out(im.base);
    }
  }
  return Out();
}

}  // namespace kr
