#include "model/quant/quantize_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend/dtype_convert.h"
#include "model/hf_config.h"
#include "model/quant/float_codec.h"
#include "model/quant/safetensors_writer.h"

namespace kr {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

bool is_mlx(QuantizeFormat f) { return f == QuantizeFormat::kMlx4 || f == QuantizeFormat::kMlx8; }
bool is_fp16_format(QuantizeFormat f) { return f == QuantizeFormat::kAwq || f == QuantizeFormat::kGptq; }

bool ends_with(const std::string& s, const std::string& t) { return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0; }
bool contains(const std::string& s, const char* t) { return s.find(t) != std::string::npos; }

// A 2-D weight of a Linear inside the decoder blocks (or an MLX embedding/lm_head).
enum class Kind { kOther, kBlockLinear, kEmbedOrHead };

Kind classify(const TensorView& v) {
  const std::string& n = v.name;
  if (v.shape.size() != 2 || !ends_with(n, ".weight")) return Kind::kOther;
  if (contains(n, "vision") || contains(n, "visual") || contains(n, "multi_modal_projector")) return Kind::kOther;
  if (ends_with(n, "embed_tokens.weight") || n == "lm_head.weight") return Kind::kEmbedOrHead;
  if (!contains(n, ".layers.") || contains(n, "norm") || ends_with(n, ".mlp.gate.weight")) return Kind::kOther;
  return Kind::kBlockLinear;
}

std::vector<float> to_f32(const TensorView& v) {
  std::vector<float> out(v.bytes / dtype_size_bytes(v.dtype));
  const auto* p = static_cast<const uint8_t*>(v.data);
  for (size_t i = 0; i < out.size(); ++i) {
    if (v.dtype == DType::kF32) {
      std::memcpy(&out[i], p + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = v.dtype == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  return out;
}

ojson ct_args(int bits, const char* type, const char* strategy, bool dynamic, ojson group_size) {
  return {{"num_bits", bits},      {"type", type},       {"symmetric", true},       {"group_size", group_size},
          {"strategy", strategy},  {"block_structure", nullptr}, {"dynamic", dynamic}, {"actorder", nullptr},
          {"observer", dynamic ? ojson(nullptr) : ojson("minmax")}, {"observer_kwargs", ojson::object()}};
}

// compressed-tensors ModelCompressor.update_config: quant_method, format, status,
// config_groups (QuantizationScheme: targets, weights, input_activations,
// output_activations, format), ignore, kv_cache_scheme, sparsity/transform configs,
// version (of compressed-tensors whose layout this follows: 0.12.2).
ojson ct_config(const char* format, ojson weights, ojson inputs, const std::vector<std::string>& ignore) {
  ojson group = {{"targets", {"Linear"}}, {"weights", std::move(weights)}, {"input_activations", std::move(inputs)},
                 {"output_activations", nullptr}, {"format", format}};
  return {{"quant_method", "compressed-tensors"}, {"format", format}, {"quantization_status", "compressed"},
          {"config_groups", {{"group_0", std::move(group)}}}, {"ignore", ignore}, {"kv_cache_scheme", nullptr},
          {"global_compression_ratio", nullptr}, {"sparsity_config", ojson::object()}, {"transform_config", ojson::object()},
          {"version", "0.12.2"}};
}

bool copied_file(const std::string& name) {
  return name.rfind("tokenizer", 0) == 0 || name == "special_tokens_map.json" || name == "generation_config.json" ||
         name == "added_tokens.json" || name == "vocab.json" || name == "merges.txt" || name.rfind("chat_template", 0) == 0 ||
         ends_with(name, ".jinja") || name == "preprocessor_config.json" || name == "processor_config.json";
}

// The last module quantized, encoded; its tensors are handed out one by one.
struct ModuleCache {
  std::string prefix;
  std::vector<EncodedTensor> tensors;
};

}  // namespace

StatusOr<QuantizeReport> quantize_model(const std::string& model_dir, const std::string& out_dir, const QuantizeOptions& o) {
  const QuantizeFormat f = o.format;
  QuantizeReport report;
  if (!uses_groups(f) && o.group_size != 0)
    return InvalidArgument(std::string("--group-size does not apply to --format ") + quantize_format_name(f) +
                           " (FP8 scales are per tensor or per channel)");
  const int64_t G = o.group_size != 0 ? o.group_size : default_group_size(f);
  if (uses_groups(f) && G <= 0) return InvalidArgument("--group-size must be positive, got " + std::to_string(G));
  if (is_mlx(f) && G != 32 && G != 64 && G != 128)
    return InvalidArgument("--group-size " + std::to_string(G) + " is not one MLX supports (32, 64, 128)");
  report.group_size = G;

  const std::string config_path = model_dir + "/config.json";
  KR_ASSIGN_OR_RETURN(std::string config_text, read_text_file(config_path));
  ojson config = ojson::parse(config_text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) return DataLoss(config_path + ": malformed JSON");
  for (const char* k : {"quantization_config", "quantization"})
    if (config.contains(k) && !config[k].is_null())
      return FailedPrecondition(config_path + ": key '" + k + "' is present: the model is already quantized");
  KR_ASSIGN_OR_RETURN(auto files, SafetensorsSet::open_dir(model_dir));

  std::error_code ec;
  if (fs::exists(out_dir, ec) && !fs::is_empty(out_dir, ec))
    return FailedPrecondition(out_dir + ": exists and is not empty (choose a new --out folder)");
  if (fs::equivalent(model_dir, out_dir, ec)) return InvalidArgument("--out must differ from --model");
  fs::create_directories(out_dir, ec);
  if (ec) return Internal(out_dir + ": cannot create (" + ec.message() + ")");

  // Model dtype: the first block linear's, for the scales of formats that use it.
  DType model_dtype = DType::kBF16;
  for (const auto& [name, v] : files->all())
    if (classify(v) == Kind::kBlockLinear) {
      model_dtype = v.dtype;
      break;
    }
  const DType scale_dtype = is_fp16_format(f) ? DType::kF16 : model_dtype;

  ThreadPool pool(0);  // rows of each weight in parallel; this thread is its only caller
  ThreadPool* workers = &pool;
  std::vector<PlannedTensor> plan;
  std::vector<std::string> unquantized_linears;  // for ignore / modules_to_not_convert
  auto cache = std::make_shared<ModuleCache>();
  const SafetensorsSet* set = files.get();
  for (const auto& entry : files->all()) {
    const std::string& name = entry.first;  // not a structured binding: lambdas below capture it
    const TensorView& v = entry.second;
    const Kind kind = classify(v);
    const bool quantize = kind == Kind::kBlockLinear || (kind == Kind::kEmbedOrHead && is_mlx(f));
    const int64_t N = v.shape.size() == 2 ? v.shape[0] : 0, K = v.shape.size() == 2 ? v.shape[1] : 0;
    bool skip = false;
    if (quantize && uses_groups(f) && K % G != 0) {
      if (!is_mlx(f))
        return InvalidArgument(v.file + ": tensor '" + name + "' has in_features " + std::to_string(K) + ", which group size " +
                               std::to_string(G) + " does not divide (choose --group-size)");
      skip = true;  // mlx-lm's quantize predicate leaves such modules in the model dtype
    }
    if (quantize && !skip) {
      if (f == QuantizeFormat::kAwq && N % 8 != 0)
        return InvalidArgument(v.file + ": tensor '" + name + "' has out_features " + std::to_string(N) +
                               ", not a multiple of 8 (AWQ packs 8 output channels per int32)");
      if (f == QuantizeFormat::kGptq && (N % 8 != 0 || K % 8 != 0))
        return InvalidArgument(v.file + ": tensor '" + name + "' has shape [" + std::to_string(N) + ", " + std::to_string(K) +
                               "]; GPTQ 4-bit packing needs multiples of 8");
      const std::string prefix = name.substr(0, name.size() - std::string(".weight").size());
      report.quantized.push_back(prefix);
      for (const EncodedTensor& t : plan_module(f, N, K, G, scale_dtype)) {
        PlannedTensor p;
        p.name = prefix + "." + t.suffix;
        p.type = t.type;
        p.shape = t.shape;
        const std::string suffix = t.suffix;
        p.produce = [set, cache, prefix, suffix, f, G, scale_dtype, name, workers](std::string* out) -> Status {
          if (cache->prefix != prefix) {
            const TensorView* src = set->find(name);
            const std::vector<float> w = to_f32(*src);
            KR_ASSIGN_OR_RETURN(QuantizedMatrix m,
                                quantize_rtn(f, w.data(), src->shape[0], src->shape[1], G, scale_dtype, name, workers));
            KR_ASSIGN_OR_RETURN(cache->tensors, encode_module(f, m));
            cache->prefix = prefix;
          }
          for (EncodedTensor& t : cache->tensors)
            if (t.suffix == suffix) {
              out->swap(t.bytes);
              return Status::Ok();
            }
          return Internal("no tensor " + prefix + "." + suffix);
        };
        plan.push_back(std::move(p));
      }
      continue;
    }
    if (kind == Kind::kBlockLinear || (kind == Kind::kEmbedOrHead && contains(name, "lm_head")))
      unquantized_linears.push_back(name.substr(0, name.size() - 7));
    report.kept.push_back(name);
    PlannedTensor p;
    p.name = name;
    p.shape = v.shape;
    if (is_fp16_format(f)) {
      // AutoAWQ / AutoGPTQ load and save the model in float16.
      p.type = StorageType::kF16;
      p.produce = [set, name](std::string* out) -> Status {
        const TensorView* src = set->find(name);
        const std::vector<float> w = to_f32(*src);
        out->resize(w.size() * 2);
        for (size_t i = 0; i < w.size(); ++i) {
          const uint16_t h = f32_to_f16(w[i]);
          if ((h & 0x7c00u) == 0x7c00u && std::isfinite(w[i]))
            return InvalidArgument(src->file + ": tensor '" + name + "' holds " + std::to_string(w[i]) +
                                   ", beyond float16's range (AWQ/GPTQ checkpoints are float16)");
          std::memcpy(out->data() + 2 * i, &h, 2);
        }
        return Status::Ok();
      };
    } else {
      p.type = v.storage;
      p.produce = [set, name](std::string* out) -> Status {
        const TensorView* src = set->find(name);
        out->assign(static_cast<const char*>(src->data), src->bytes);
        return Status::Ok();
      };
    }
    plan.push_back(std::move(p));
  }
  if (report.quantized.empty()) return InvalidArgument(model_dir + ": no Linear weights to quantize were found");
  for (const PlannedTensor& p : plan) report.bytes_out += p.bytes();
  for (const auto& [name, v] : files->all()) report.bytes_in += v.bytes;

  const std::map<std::string, std::string> metadata = {{"format", is_mlx(f) ? "mlx" : "pt"}};
  KR_RETURN_IF_ERROR(write_safetensors_folder(out_dir, plan, metadata, o.max_shard_bytes));

  // config.json with the format's keys.
  std::vector<std::string> ignore = {"lm_head"};
  for (const std::string& m : unquantized_linears)
    if (m != "lm_head") ignore.push_back(m);
  ojson q;
  switch (f) {
    case QuantizeFormat::kFp8:
      q = ct_config("float-quantized", ct_args(8, "float", "tensor", false, nullptr), ct_args(8, "float", "tensor", true, nullptr), ignore);
      break;
    case QuantizeFormat::kFp8Dynamic:
      q = ct_config("float-quantized", ct_args(8, "float", "channel", false, nullptr), ct_args(8, "float", "token", true, nullptr), ignore);
      break;
    case QuantizeFormat::kW4A16:
      q = ct_config("pack-quantized", ct_args(4, "int", "group", false, G), nullptr, ignore);
      break;
    case QuantizeFormat::kAwq: {
      // AutoAWQ AwqConfig.to_transformers_dict.
      ojson skip = unquantized_linears.empty() ? ojson(nullptr) : ojson(unquantized_linears);
      q = {{"quant_method", "awq"}, {"zero_point", true}, {"group_size", G}, {"bits", 4}, {"version", "gemm"},
           {"modules_to_not_convert", skip}};
      break;
    }
    case QuantizeFormat::kGptq:
      // AutoGPTQ BaseQuantizeConfig.to_dict.
      q = {{"bits", 4}, {"group_size", G}, {"damp_percent", 0.01}, {"desc_act", false}, {"static_groups", false},
           {"sym", true}, {"true_sequential", true}, {"model_name_or_path", nullptr}, {"model_file_base_name", "model"},
           {"quant_method", "gptq"}, {"checkpoint_format", "gptq"}};
      break;
    case QuantizeFormat::kMlx4:
    case QuantizeFormat::kMlx8:
      // mlx_lm utils.py::quantize_model / save_config.
      q = {{"group_size", G}, {"bits", format_bits(f)}, {"mode", "affine"}};
      config["quantization"] = q;
      break;
  }
  config["quantization_config"] = q;
  if (is_fp16_format(f)) {
    config["torch_dtype"] = "float16";
    if (config.contains("dtype")) config["dtype"] = "float16";
  }
  {
    std::ofstream out(out_dir + "/config.json", std::ios::trunc);
    out << config.dump(2) << "\n";
    if (!out) return Internal(out_dir + "/config.json: write failed");
  }
  if (f == QuantizeFormat::kGptq) {
    std::ofstream out(out_dir + "/quantize_config.json", std::ios::trunc);
    out << q.dump(2) << "\n";
    if (!out) return Internal(out_dir + "/quantize_config.json: write failed");
  }
  for (const auto& e : fs::directory_iterator(model_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || !copied_file(name)) continue;
    fs::copy_file(e.path(), out_dir + "/" + name, fs::copy_options::overwrite_existing, ec);
    if (ec) return Internal(out_dir + "/" + name + ": copy failed (" + ec.message() + ")");
    report.copied_files.push_back(name);
  }
  return report;
}

}  // namespace kr
