#include "model/quant/quant_loader.h"

#include "model/quant/quant_tensors.h"

namespace kr {

using namespace quant_detail;

namespace {

bool has(const TensorMap& t, const std::string& name) { return t.count(name) != 0; }

bool has_fp8_weight(const TensorMap& t, const std::string& module) {
  const TensorView* w = find(t, module + ".weight");
  return w != nullptr && (w->storage == StorageType::kF8E4M3 || w->storage == StorageType::kF8E5M2);
}

// The tensor that marks `module` as quantized in this format (for messages).
std::string marker(const QuantConfig& c, const TensorMap& t, const std::string& module) {
  switch (c.method()) {
    case QuantMethod::kAwq:
    case QuantMethod::kGptq: return module + ".qweight";
    case QuantMethod::kCompressedTensors: return has(t, module + ".weight_packed") ? module + ".weight_packed" : module + ".weight";
    case QuantMethod::kMlx: return module + ".scales";
    default: return module + ".weight";
  }
}

}  // namespace

bool is_quantized_module(const QuantConfig& c, const TensorMap& t, const std::string& module) {
  switch (c.method()) {
    case QuantMethod::kNone: return false;
    case QuantMethod::kAwq:
    case QuantMethod::kGptq: return has(t, module + ".qweight");
    case QuantMethod::kCompressedTensors: return has(t, module + ".weight_packed") || has_fp8_weight(t, module);
    case QuantMethod::kFbgemmFp8:
    case QuantMethod::kModelOpt: return has_fp8_weight(t, module);
    case QuantMethod::kMlx: return has(t, module + ".scales");
  }
  return false;
}

StatusOr<QuantizedMatrix> load_quantized_matrix(const QuantConfig& c, const TensorMap& t, const std::string& module,
                                                ModuleRole role, int64_t N, int64_t K) {
  if (!c.quantized()) return FailedPrecondition("module '" + module + "': the checkpoint declares no quantization");
  if (N <= 0 || K <= 0 || N > (int64_t{1} << 31) || K > (int64_t{1} << 31))
    return InvalidArgument("module '" + module + "': bad shape [" + std::to_string(N) + ", " + std::to_string(K) + "]");
  KR_ASSIGN_OR_RETURN(const std::optional<ModuleQuantParams> params, c.params_for(module, role));
  if (!params) {
    if (is_quantized_module(c, t, module))
      return InvalidArgument("module '" + module + "' has quantized tensors ('" + marker(c, t, module) + "') but " + c.source() +
                             " excludes it from quantization");
    return InvalidArgument("module '" + module + "' is not quantized according to " + c.source());
  }
  StatusOr<QuantizedMatrix> r = Internal("unreachable");
  switch (c.method()) {
    case QuantMethod::kAwq: r = read_awq(*params, t, module, N, K); break;
    case QuantMethod::kGptq: r = read_gptq(*params, t, module, N, K); break;
    case QuantMethod::kCompressedTensors:
      if (params->kind == QuantKind::kInt) {
        if (has_fp8_weight(t, module))
          return InvalidArgument("module '" + module + "' stores an FP8 weight but " + params->origin + " quantizes it to integers");
        r = read_ct_packed(*params, t, module, N, K);
      } else {
        if (has(t, module + ".weight_packed"))
          return InvalidArgument("module '" + module + "' stores packed integers but " + params->origin + " quantizes it to FP8");
        r = read_fp8(*params, "compressed-tensors", t, module, N, K);
      }
      break;
    case QuantMethod::kFbgemmFp8: r = read_fp8(*params, "fbgemm_fp8", t, module, N, K); break;
    case QuantMethod::kModelOpt: r = read_fp8(*params, "modelopt", t, module, N, K); break;
    case QuantMethod::kMlx: r = read_mlx(*params, t, module, N, K); break;
    case QuantMethod::kNone: break;
  }
  if (!r.ok()) return r.status();
  QuantizedMatrix m = std::move(r).value();
  m.format = quant_method_name(c.method());
  m.name = module;
  KR_RETURN_IF_ERROR(m.validate());
  return m;
}

StatusOr<std::optional<KvCacheScales>> load_kv_cache_scales(const TensorMap& t, const std::string& attn) {
  // ModelOpt (vLLM modelopt.py: k_proj.k_scale / v_proj.v_scale), compressed-tensors
  // (self_attn.k_scale / v_scale; older files k_proj.output_scale, vLLM
  // compressed_tensors.py::get_cache_scale).
  const std::pair<const char*, const char*> names[] = {
      {".k_proj.k_scale", ".v_proj.v_scale"}, {".k_scale", ".v_scale"}, {".k_proj.output_scale", ".v_proj.output_scale"}};
  for (const auto& [kn, vn] : names) {
    const TensorView* k = find(t, attn + kn);
    const TensorView* v = find(t, attn + vn);
    if (k == nullptr && v == nullptr) continue;
    if (k == nullptr) return NotFound("missing tensor '" + attn + kn + "' (its pair '" + attn + vn + "' is present)");
    if (v == nullptr) return NotFound("missing tensor '" + attn + vn + "' (its pair '" + attn + kn + "' is present)");
    KvCacheScales s;
    for (const TensorView* x : {k, v}) {
      KR_RETURN_IF_ERROR(expect_scalar(*x, "per-tensor KV-cache scale"));
      std::vector<float> f;
      KR_RETURN_IF_ERROR(read_floats(*x, &f, nullptr));
      if (!(f[0] > 0.0f)) return InvalidArgument(where(*x) + " is " + std::to_string(f[0]) + "; a KV-cache scale must be positive");
      (x == k ? s.k_scale : s.v_scale) = f[0];
      s.source_tensors.push_back(x->name);
    }
    return std::optional<KvCacheScales>(s);
  }
  return std::optional<KvCacheScales>();
}

}  // namespace kr
