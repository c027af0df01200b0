// Broken copies of the packer's fixture folders, per format: every one must fail
// with a Status naming the tensor or config key (never crash): packed shapes that
// do not match the config, group sizes that do not divide K, missing scales /
// zeros / g_idx, zero points out of range, NaN or Inf in scales, and formats or
// settings that are not supported.
#include <cstring>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/quant/quant_loader.h"
#include "model/quant/quant_test_util.h"

namespace kr {
namespace {

using json = nlohmann::json;
using quant_test::FolderCopy;

const std::string Q = "model.layers.0.self_attn.q_proj";
const std::string DOWN = "model.layers.0.mlp.down_proj";

// Loads every module the manifest lists as quantized, and layer 0's KV scales.
Status load_all(const FolderCopy& f) {
  KR_ASSIGN_OR_RETURN(QuantConfig cfg, load_quant_config(f.dir()));
  KR_ASSIGN_OR_RETURN(auto files, SafetensorsSet::open_dir(f.dir(), DTypePolicy::kAny));
  for (const auto& m : f.manifest["modules"]) {
    if (!m["quantized"].get<bool>()) continue;
    const std::string name = m["name"];
    const ModuleRole role = name.find("embed_tokens") != std::string::npos ? ModuleRole::kEmbedding : ModuleRole::kLinear;
    auto r = load_quantized_matrix(cfg, files->all(), name, role, m["N"].get<int64_t>(), m["K"].get<int64_t>());
    if (!r.ok()) return r.status();
  }
  auto kv = load_kv_cache_scales(files->all(), "model.layers.0.self_attn");
  return kv.ok() ? Status::Ok() : kv.status();
}

void expect_error(FolderCopy& f, std::initializer_list<std::string> needles) {
  f.write();
  const Status s = load_all(f);
  ASSERT_FALSE(s.ok()) << "loaded without error";
  for (const std::string& n : needles) EXPECT_NE(s.message().find(n), std::string::npos) << "'" << n << "' not in: " << s.to_string();
}

void patch(FolderCopy& f, const std::string& tensor, size_t byte, std::initializer_list<uint8_t> bytes) {
  size_t i = f.offset(tensor) + byte;
  for (uint8_t b : bytes) f.data[i++] = static_cast<char>(b);
}

json& qc(FolderCopy& f) { return f.config["quantization_config"]; }

TEST(QuantHostile, IntactCopiesLoad) {
  for (const char* name : {"awq_g32", "gptq_4b_g32_asym_v1", "ct_w4a16_g32_asym", "ct_fp8_tensor_static_kv", "fbgemm_fp8",
                           "modelopt_fp8_config", "mlx4_g32_untied_both"}) {
    FolderCopy f(name);
    f.write();
    EXPECT_TRUE(load_all(f).ok()) << name << ": " << load_all(f).to_string();
  }
}

// ---- AWQ ----

TEST(QuantHostile, AwqPackedShapeNotMatchingConfig) {
  FolderCopy f("awq_g32");
  f.header[Q + ".qweight"]["shape"] = {32, 16};  // same bytes as [64, 8]
  expect_error(f, {Q + ".qweight", "[32, 16]", "[64, 8]"});
}

TEST(QuantHostile, AwqGroupSizeNotDividingK) {
  FolderCopy f("awq_g32");
  qc(f)["group_size"] = 48;
  expect_error(f, {"group_size", "48", "does not divide", "64", Q});
}

TEST(QuantHostile, AwqMissingTensors) {
  for (const char* suffix : {".scales", ".qzeros", ".qweight"}) {
    FolderCopy f("awq_g32");
    f.header.erase(Q + suffix);
    expect_error(f, {"missing tensor", Q + suffix});
  }
}

TEST(QuantHostile, AwqNanAndInfScales) {
  FolderCopy f("awq_g32");
  patch(f, DOWN + ".scales", 6, {0x00, 0x7E});  // F16 NaN at flat index 3
  expect_error(f, {DOWN + ".scales", "NaN", "index 3"});
  FolderCopy g("awq_g32");
  patch(g, Q + ".scales", 0, {0x00, 0x7C});  // F16 +Inf
  expect_error(g, {Q + ".scales", "Inf"});
}

TEST(QuantHostile, AwqUnsupportedSettings) {
  struct Case { const char* key; json value; std::vector<std::string> needles; };
  const std::vector<Case> cases = {
      {"version", "gemv", {"quantization_config.version", "gemv", "not supported"}},
      {"version", "gemv_fast", {"quantization_config.version", "gemv_fast"}},
      {"bits", 3, {"quantization_config.bits", "3 bits"}},
      {"zero_point", false, {"quantization_config.zero_point"}},
  };
  for (const Case& c : cases) {
    FolderCopy f("awq_g32");
    qc(f)[c.key] = c.value;
    f.write();
    const Status s = load_all(f);
    ASSERT_FALSE(s.ok()) << c.key;
    for (const std::string& n : c.needles) EXPECT_NE(s.message().find(n), std::string::npos) << s.to_string();
  }
}

TEST(QuantHostile, AwqOutFeaturesNotMultipleOfEight) {
  FolderCopy f("awq_g32");
  f.manifest["modules"][0]["N"] = 60;
  expect_error(f, {Q, "out_features 60", "multiple of 8"});
}

// ---- GPTQ ----

TEST(QuantHostile, GptqPackedShapeNotMatchingConfig) {
  FolderCopy f("gptq_4b_g32_asym_v1");
  f.header[Q + ".qweight"]["shape"] = {16, 32};  // same bytes as [8, 64]
  expect_error(f, {Q + ".qweight", "[16, 32]", "[8, 64]"});
  FolderCopy g("gptq_4b_g32_asym_v1");
  qc(g)["bits"] = 8;  // a 4-bit file read as 8-bit
  expect_error(g, {Q + ".qweight", "8-bit"});
}

TEST(QuantHostile, GptqGroupSizeNotDividingK) {
  FolderCopy f("gptq_4b_g32_asym_v1");
  qc(f)["group_size"] = 40;
  expect_error(f, {"quantization_config", "group_size 40", "does not divide"});
}

TEST(QuantHostile, GptqMissingTensors) {
  for (const char* suffix : {".scales", ".qzeros", ".qweight"}) {
    FolderCopy f("gptq_4b_g32_asym_v1");
    f.header.erase(DOWN + suffix);
    expect_error(f, {"missing tensor", DOWN + suffix});
  }
  FolderCopy f("gptq_4b_g32_sym_v2_descact");
  f.header.erase(Q + ".g_idx");
  expect_error(f, {"missing tensor", Q + ".g_idx", "desc_act"});
}

TEST(QuantHostile, GptqZeroPointOutOfRange) {
  // v1 stores zero - 1: a nibble of 15 would be zero 16.
  FolderCopy f("gptq_4b_g32_asym_v1");
  patch(f, Q + ".qzeros", 4, {0x0F, 0x00, 0x00, 0x00});
  expect_error(f, {Q + ".qzeros", "zero point 16", "outside 0..15", "group 0", "output channel 8"});
  FolderCopy g("gptq_8b_g32_asym_v1");
  patch(g, DOWN + ".qzeros", 0, {0x10, 0xFF});  // channel 1: stored 255 -> zero 256
  expect_error(g, {DOWN + ".qzeros", "zero point 256", "outside 0..255"});
}

TEST(QuantHostile, GptqNanScale) {
  FolderCopy f("gptq_8b_g64_asym_v2");
  patch(f, Q + ".scales", 2, {0x01, 0x7C});  // F16 NaN (signalling pattern)
  expect_error(f, {Q + ".scales", "NaN", "index 1"});
}

TEST(QuantHostile, GptqBadGIdx) {
  FolderCopy f("gptq_4b_g32_sym_v2_descact");
  patch(f, Q + ".g_idx", 0, {99, 0, 0, 0});
  expect_error(f, {Q + ".g_idx", "group 99", "outside 0..1"});
  FolderCopy g("gptq_4b_g32_sym_v2_descact");
  qc(g)["desc_act"] = false;  // act-order g_idx under a config that says there is none
  expect_error(g, {Q + ".g_idx", "desc_act is false"});
  FolderCopy h("gptq_4b_g32_sym_v1");  // unequal groups: channel 0 moved to group 1
  patch(h, Q + ".g_idx", 0, {1, 0, 0, 0});
  expect_error(h, {Q + ".g_idx", "31 channels to group 0", "group_size = 32"});
}

TEST(QuantHostile, GptqUnsupportedSettings) {
  struct Case { const char* key; json value; std::vector<std::string> needles; };
  const std::vector<Case> cases = {
      {"bits", 3, {"quantization_config.bits", "3 bits"}},
      {"bits", 2, {"quantization_config.bits", "2 bits"}},
      {"checkpoint_format", "marlin", {"quantization_config.checkpoint_format", "Marlin"}},
      {"checkpoint_format", "gptq_p", {"quantization_config.checkpoint_format", "gptq_p"}},
      {"is_marlin_format", true, {"quantization_config.is_marlin_format", "Marlin"}},
      {"pack_dtype", "int64", {"quantization_config.pack_dtype", "int64"}},
      {"dynamic", json{{"+:[", json::object()}}, {"quantization_config.dynamic.+:[", "invalid regular expression"}},
  };
  for (const Case& c : cases) {
    FolderCopy f("gptq_4b_g32_asym_v1");
    qc(f)[c.key] = c.value;
    f.write();
    const Status s = load_all(f);
    ASSERT_FALSE(s.ok()) << c.key;
    for (const std::string& n : c.needles) EXPECT_NE(s.message().find(n), std::string::npos) << s.to_string();
  }
}

// ---- compressed-tensors pack-quantized ----

json& ct_weights(FolderCopy& f) { return qc(f)["config_groups"]["group_0"]["weights"]; }

TEST(QuantHostile, CtWeightShapeAndPackedShape) {
  FolderCopy f("ct_w4a16_g32_asym");
  patch(f, Q + ".weight_shape", 8, {65});  // [64, 65]
  expect_error(f, {Q + ".weight_shape", "[64, 65]", "expects [64, 64]"});
  FolderCopy g("ct_w4a16_g32_asym");
  g.header[Q + ".weight_packed"]["shape"] = {32, 16};
  expect_error(g, {Q + ".weight_packed", "[32, 16]", "[64, 8]"});
}

TEST(QuantHostile, CtGroupSizeNotDividingK) {
  FolderCopy f("ct_w4a16_g32_asym");
  ct_weights(f)["group_size"] = 48;
  expect_error(f, {"config_groups.group_0", "group_size 48", "does not divide"});
}

TEST(QuantHostile, CtMissingTensors) {
  for (const char* suffix : {".weight_zero_point", ".weight_scale", ".weight_shape"}) {
    FolderCopy f("ct_w4a16_g32_asym");
    f.header.erase(Q + suffix);
    expect_error(f, {"missing tensor", Q + suffix});
  }
  FolderCopy g("ct_w4a16_g64_sym_actorder");
  g.header.erase(DOWN + ".weight_g_idx");
  expect_error(g, {"missing tensor", DOWN + ".weight_g_idx", "actorder"});
}

TEST(QuantHostile, CtScalesAndZeroPoints) {
  FolderCopy f("ct_w4a16_g32_asym");
  patch(f, DOWN + ".weight_scale", 0, {0xC0, 0x7F});  // BF16 NaN
  expect_error(f, {DOWN + ".weight_scale", "NaN"});
  FolderCopy g("ct_w8a16_g32_asym");
  g.header[Q + ".weight_zero_point"]["shape"] = {32, 1};  // [16, 2] is right: 64 / 4 rows, 2 groups
  expect_error(g, {Q + ".weight_zero_point"});
}

TEST(QuantHostile, CtUnsupportedSettings) {
  {
    FolderCopy f("ct_w4a16_g32_asym");
    qc(f)["format"] = "int-quantized";
    qc(f)["config_groups"]["group_0"].erase("format");
    expect_error(f, {"quantization_config.format", "int-quantized"});
  }
  {
    FolderCopy f("ct_w4a16_g32_asym");
    qc(f)["transform_config"] = {{"config_groups", json::object()}};
    expect_error(f, {"quantization_config.transform_config"});
  }
  {
    FolderCopy f("ct_w4a16_g32_asym");
    qc(f)["sparsity_config"] = {{"format", "sparse-24-bitmask"}};
    expect_error(f, {"quantization_config.sparsity_config"});
  }
  {
    FolderCopy f("ct_w4a16_g32_asym");
    ct_weights(f)["num_bits"] = 3;
    expect_error(f, {"config_groups.group_0.weights.num_bits", "3 bits"});
  }
  {
    FolderCopy f("ct_w4a16_g32_asym");
    ct_weights(f)["strategy"] = "tensor";
    expect_error(f, {"config_groups.group_0.weights.strategy", "tensor"});
  }
  {
    FolderCopy f("ct_w4a16_g32_asym");
    qc(f)["config_groups"]["group_0"]["input_activations"] = {{"num_bits", 8}, {"type", "int"}};
    expect_error(f, {"config_groups.group_0.input_activations", "W4A8"});
  }
}

// ---- FP8 ----

TEST(QuantHostile, Fp8Shapes) {
  FolderCopy f("ct_fp8_tensor_static_kv");
  f.header[Q + ".weight"]["shape"] = {200, 100};
  expect_error(f, {Q + ".weight", "[200, 100]", "[100, 200]"});
  FolderCopy g("ct_fp8_block_dynamic");
  qc(g)["config_groups"]["group_0"]["weights"]["block_structure"] = {64, 64};
  expect_error(g, {Q + ".weight_scale", "block weight scale", "ceil(N / 64)"});
  FolderCopy h("fbgemm_fp8");
  h.header[DOWN + ".weight_scale"]["shape"] = {1, 48};
  expect_error(h, {DOWN + ".weight_scale", "[1, 48]", "per-channel"});
}

TEST(QuantHostile, Fp8MissingTensors) {
  FolderCopy f("ct_fp8_tensor_static_kv");
  f.header.erase(Q + ".input_scale");
  expect_error(f, {"missing tensor", Q + ".input_scale", "static"});
  FolderCopy g("modelopt_fp8_config");
  g.header.erase(DOWN + ".weight_scale");
  expect_error(g, {"missing tensor", DOWN + ".weight_scale"});
  FolderCopy h("modelopt_fp8_hf_quant_config");
  h.header.erase("model.layers.0.self_attn.v_proj.v_scale");
  expect_error(h, {"missing tensor", "v_proj.v_scale", "k_proj.k_scale"});
}

TEST(QuantHostile, Fp8NanInfAndBadValues) {
  FolderCopy f("modelopt_fp8_config");
  patch(f, Q + ".weight_scale", 0, {0x00, 0x00, 0x80, 0x7F});  // F32 +Inf
  expect_error(f, {Q + ".weight_scale", "Inf"});
  FolderCopy g("ct_fp8_channel_dynamic");
  patch(g, DOWN + ".weight", 205, {0x7F});  // an FP8 NaN code at row 0, column 205 (rows are 384 wide)
  expect_error(g, {DOWN + ".weight", "NaN", "row 0, column 205"});
  FolderCopy h("ct_fp8_tensor_static_kv");
  patch(h, Q + ".input_scale", 0, {0x00, 0x80});  // BF16 -0.0
  expect_error(h, {Q + ".input_scale", "must be positive"});
  FolderCopy k("ct_fp8_tensor_static_kv");
  patch(k, "model.layers.0.self_attn.k_scale", 0, {0xC0, 0xFF});  // BF16 NaN
  expect_error(k, {"model.layers.0.self_attn.k_scale", "NaN"});
  FolderCopy e("ct_fp8_channel_dynamic");
  e.header[Q + ".weight"]["dtype"] = "F8_E5M2";
  expect_error(e, {Q + ".weight", "F8_E5M2"});
}

TEST(QuantHostile, Fp8UnsupportedSettings) {
  {
    FolderCopy f("modelopt_fp8_config");
    qc(f)["quant_algo"] = "NVFP4";
    expect_error(f, {"quantization_config.quant_algo", "NVFP4"});
  }
  {
    FolderCopy f("ct_fp8_channel_dynamic");
    qc(f)["config_groups"]["group_0"]["input_activations"]["strategy"] = "channel";
    expect_error(f, {"config_groups.group_0.input_activations.strategy", "channel"});
  }
  {
    FolderCopy f("ct_fp8_channel_dynamic");
    qc(f)["config_groups"]["group_0"]["weights"]["symmetric"] = false;
    expect_error(f, {"config_groups.group_0.weights.symmetric"});
  }
  {
    FolderCopy f("ct_fp8_channel_dynamic");  // the module's FP8 weight under an integer scheme
    qc(f)["format"] = "pack-quantized";
    qc(f)["config_groups"]["group_0"]["weights"] = {{"num_bits", 4}, {"type", "int"}, {"strategy", "group"}, {"group_size", 8}};
    qc(f)["config_groups"]["group_0"].erase("input_activations");
    expect_error(f, {Q, "FP8 weight", "quantizes it to integers"});
  }
  {
    FolderCopy f("fbgemm_fp8");  // excluded by the config but stored as FP8
    qc(f)["modules_to_not_convert"] = {"q_proj"};
    expect_error(f, {Q, "quantized tensors", "excludes it"});
  }
}

// ---- MLX ----

json& mlx_q(FolderCopy& f) { return f.config["quantization"]; }

TEST(QuantHostile, MlxShapes) {
  FolderCopy f("mlx4_g32_untied_both");
  mlx_q(f)["bits"] = 8;  // a 4-bit file read as 8-bit
  f.config["quantization_config"] = mlx_q(f);
  expect_error(f, {"model.embed_tokens.weight", "[48, 16]", "[48, 32]", "8-bit"});
  FolderCopy g("mlx4_g32_untied_both");
  mlx_q(g)["group_size"] = 64;
  expect_error(g, {"model.embed_tokens.scales", "[48, 4]", "[48, 2]"});
  FolderCopy h("mlx4_g32_untied_both");
  mlx_q(h)[DOWN]["group_size"] = 128;  // K = 96
  expect_error(h, {"quantization." + DOWN, "group_size 128", "does not divide", "96"});
}

TEST(QuantHostile, MlxMissingTensorsAndBadValues) {
  FolderCopy f("mlx8_g64_tied_both");
  f.header.erase(Q + ".biases");
  expect_error(f, {"missing tensor", Q + ".biases"});
  FolderCopy g("mlx4_g64_untied_old");
  patch(g, "lm_head.biases", 2, {0x00, 0x7C});  // F16 Inf
  expect_error(g, {"lm_head.biases", "Inf"});
  FolderCopy h("mlx4_g32_untied_both");
  mlx_q(h)["lm_head"] = false;  // .scales present but the override says not quantized
  expect_error(h, {"lm_head", "quantized tensors", "lm_head.scales", "excludes it"});
}

TEST(QuantHostile, MlxUnsupportedSettings) {
  struct Case { const char* key; json value; std::vector<std::string> needles; };
  const std::vector<Case> cases = {
      {"bits", 3, {"quantization.bits", "3-bit"}},
      {"bits", 6, {"quantization.bits", "6-bit"}},
      {"group_size", 48, {"quantization.group_size", "48"}},
      {"mode", "mxfp4", {"quantization.mode", "mxfp4"}},
  };
  for (const Case& c : cases) {
    FolderCopy f("mlx4_g32_untied_both");
    mlx_q(f)[c.key] = c.value;
    f.write();
    const Status s = load_all(f);
    ASSERT_FALSE(s.ok()) << c.key;
    for (const std::string& n : c.needles) EXPECT_NE(s.message().find(n), std::string::npos) << s.to_string();
  }
}

// ---- detection of unsupported methods (config only) ----

TEST(QuantHostile, UnsupportedMethodsNameTheFormatAndKey) {
  struct Case { json qc; std::vector<std::string> needles; };
  const std::vector<Case> cases = {
      {{{"quant_method", "bitsandbytes"}, {"load_in_4bit", true}}, {"quantization_config.quant_method", "bitsandbytes"}},
      {{{"quant_method", "exl2"}}, {"quantization_config.quant_method", "exllama v2"}},
      {{{"quant_method", "marlin"}}, {"quantization_config.quant_method", "Marlin"}},
      {{{"quant_method", "fp8"}, {"weight_block_size", {128, 128}}}, {"quantization_config.quant_method", "fp8"}},
      {{{"quant_method", "hqq"}}, {"quantization_config.quant_method", "unknown quantization method 'hqq'"}},
      {{{"bits", 4}, {"group_size", 64}, {"mode", "nvfp4"}}, {"quantization_config.mode", "nvfp4"}},
      {{{"foo", 1}}, {"quantization_config", "no 'quant_method'"}},
      {{{"quant_method", 7}}, {"quantization_config.quant_method", "string"}},
      {json::array(), {"quantization_config", "object"}},
  };
  for (const Case& c : cases) {
    json cfg = {{"model_type", "llama"}, {"quantization_config", c.qc}};
    auto r = parse_quant_config(cfg.dump(), "m/config.json");
    ASSERT_FALSE(r.ok()) << c.qc.dump();
    for (const std::string& n : c.needles) EXPECT_NE(r.status().message().find(n), std::string::npos) << r.status().to_string();
    EXPECT_NE(r.status().message().find("m/config.json"), std::string::npos);
  }
  auto bad = parse_quant_config("{\"quantization_config\": ", "m/config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("malformed JSON"), std::string::npos);
  auto side = parse_quant_config("{}", "m/config.json", {{"hf_quant_config.json", "{\"producer\": {\"name\": \"other\"}}"}});
  ASSERT_FALSE(side.ok());
  EXPECT_NE(side.status().message().find("m/hf_quant_config.json"), std::string::npos) << side.status().to_string();
  auto gptq_side = parse_quant_config("{}", "m/config.json", {{"quantize_config.json", "{\"bits\": 3, \"group_size\": 128}"}});
  ASSERT_FALSE(gptq_side.ok());
  EXPECT_NE(gptq_side.status().message().find("m/quantize_config.json: key 'bits'"), std::string::npos)
      << gptq_side.status().to_string();
  auto none = parse_quant_config("{\"model_type\": \"llama\"}", "m/config.json");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->quantized());
}

}  // namespace
}  // namespace kr
