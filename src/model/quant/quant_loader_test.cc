// The readers against the NumPy packer (scripts/quant/pack.py, written from the
// upstream packers): every fixture folder's quantized modules must dequantize to
// exactly the packer's float32 weights, unquantized modules must be seen as such,
// KV-cache scales must match; plus the canonical form's properties (act-order
// permutation, symmetric zeros, scale layouts) and fuse_rows.
#include <cstring>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/quant/quant_loader.h"
#include "model/quant/quant_test_util.h"

namespace kr {
namespace {

using json = nlohmann::json;
using quant_test::fixture_names;
using quant_test::fixtures_dir;
using quant_test::slurp;

struct Loaded {
  QuantConfig config;
  std::unique_ptr<SafetensorsSet> files;
  std::unique_ptr<SafetensorsFile> dequant;  // the packer's float32 weights
  json manifest;

  const TensorView* golden(const std::string& name) const {
    for (const TensorView& v : dequant->tensors())
      if (v.name == name) return &v;
    return nullptr;
  }
};

Loaded open_fixture(const std::string& name) {
  const std::string d = fixtures_dir() + "/" + name;
  auto cfg = load_quant_config(d);
  EXPECT_TRUE(cfg.ok()) << cfg.status().to_string();
  auto files = SafetensorsSet::open_dir(d, DTypePolicy::kAny);
  EXPECT_TRUE(files.ok()) << files.status().to_string();
  auto deq = SafetensorsFile::open(d + "/dequant.safetensors");
  EXPECT_TRUE(deq.ok());
  return Loaded{cfg.ok() ? std::move(cfg).value() : QuantConfig(), files.ok() ? std::move(files).value() : nullptr,
                deq.ok() ? std::move(deq).value() : nullptr, json::parse(slurp(d + "/manifest.json"))};
}

ModuleRole role_of(const std::string& module) {
  return module.find("embed_tokens") != std::string::npos ? ModuleRole::kEmbedding : ModuleRole::kLinear;
}

StatusOr<QuantizedMatrix> load(const Loaded& l, const std::string& module) {
  for (const auto& m : l.manifest["modules"])
    if (m["name"] == module)
      return load_quantized_matrix(l.config, l.files->all(), module, role_of(module), m["N"].get<int64_t>(), m["K"].get<int64_t>());
  return NotFound(module);
}

TEST(QuantLoader, EveryFixtureDequantizesBitExact) {
  const auto names = fixture_names();
  ASSERT_GE(names.size(), 40u);
  int compared = 0;
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    Loaded l = open_fixture(name);
    ASSERT_TRUE(l.files && l.dequant);
    EXPECT_TRUE(l.config.quantized());
    for (const auto& mod : l.manifest["modules"]) {
      const std::string module = mod["name"];
      SCOPED_TRACE(module);
      const bool quantized = mod["quantized"];
      EXPECT_EQ(is_quantized_module(l.config, l.files->all(), module), quantized);
      if (!quantized) continue;
      auto m = load(l, module);
      ASSERT_TRUE(m.ok()) << m.status().to_string();
      const std::vector<float> w = dequantize(*m);
      const TensorView* want = l.golden(module + ".weight");
      ASSERT_NE(want, nullptr);
      ASSERT_EQ(want->bytes, w.size() * sizeof(float));
      // Bit for bit: compare the float32 patterns, not values within a tolerance.
      size_t first_diff = w.size();
      for (size_t i = 0; i < w.size() && first_diff == w.size(); ++i)
        if (std::memcmp(&w[i], static_cast<const float*>(want->data) + i, 4) != 0) first_diff = i;
      EXPECT_EQ(first_diff, w.size()) << "first differing element " << first_diff << ": "
                                      << (first_diff < w.size() ? w[first_diff] : 0.0f) << " vs "
                                      << (first_diff < w.size() ? static_cast<const float*>(want->data)[first_diff] : 0.0f);
      // dequantize_row agrees with dequantize.
      std::vector<float> row(static_cast<size_t>(m->K));
      dequantize_row(*m, m->N - 1, row.data());
      EXPECT_EQ(0, std::memcmp(row.data(), w.data() + (m->N - 1) * m->K, row.size() * 4));
      ++compared;
    }
    for (auto it = l.manifest["kv_scales"].begin(); it != l.manifest["kv_scales"].end(); ++it) {
      auto kv = load_kv_cache_scales(l.files->all(), "model.layers." + it.key() + ".self_attn");
      ASSERT_TRUE(kv.ok()) << kv.status().to_string();
      ASSERT_TRUE(kv->has_value());
      EXPECT_EQ((*kv)->k_scale, it.value()[0].get<float>());
      EXPECT_EQ((*kv)->v_scale, it.value()[1].get<float>());
      EXPECT_TRUE(l.config.fp8_kv_cache());
    }
  }
  EXPECT_GE(compared, 90);
}

TEST(QuantLoader, CanonicalFormProperties) {
  {
    Loaded l = open_fixture("gptq_4b_g32_sym_v2_descact");
    auto m = load(l, "model.layers.0.self_attn.q_proj");
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_EQ(m->perm.size(), 64u);  // act-order: permuted once at load
    EXPECT_EQ(m->zero_kind, ZeroKind::kSymmetric);
    EXPECT_EQ(m->bits, 4);
    EXPECT_EQ(m->group_size, 32);
    EXPECT_EQ(m->scale_dtype, DType::kF16);
    EXPECT_EQ(m->format, "gptq");
    EXPECT_EQ(m->source_tensors.size(), 4u);  // qweight, qzeros, scales, g_idx
  }
  {
    Loaded l = open_fixture("gptq_4b_g32_sym_v1");
    auto m = load(l, "model.layers.0.self_attn.q_proj");
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(m->perm.empty());  // g_idx == k / G
    EXPECT_EQ(m->zero_kind, ZeroKind::kSymmetric);  // 0x77777777 + 1 per nibble
  }
  {
    Loaded l = open_fixture("gptq_4b_g64_sym_v2_dynamic");
    auto m = load(l, "model.layers.0.mlp.down_proj");  // "+:.*down_proj": 8 bits, group 32
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_EQ(m->bits, 8);
    EXPECT_EQ(m->group_size, 32);
  }
  {
    Loaded l = open_fixture("ct_w4a16_g32_asym");
    auto m = load(l, "model.layers.0.mlp.down_proj");
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->zero_kind, ZeroKind::kInteger);
    EXPECT_EQ(m->scale_dtype, DType::kBF16);
    EXPECT_EQ(m->N, 30);
  }
  {
    Loaded l = open_fixture("ct_w4a16_gch_sym");
    auto m = load(l, "model.layers.0.self_attn.q_proj");
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->group_size, 100);  // channel: one group of K
    EXPECT_EQ(m->words_per_row(), 13);
  }
  {
    Loaded l = open_fixture("mlx4_g64_tied_both");
    auto m = load(l, "model.embed_tokens");
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_EQ(m->zero_kind, ZeroKind::kFloatBias);
    EXPECT_FALSE(is_quantized_module(l.config, l.files->all(), "lm_head"));  // tied: no lm_head tensors
    auto d = load(l, "model.layers.0.mlp.down_proj");  // per-module override
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->bits, 8);
    EXPECT_EQ(d->group_size, 32);
  }
  {
    Loaded l = open_fixture("ct_fp8_block_dynamic");
    auto m = load(l, "model.layers.0.self_attn.q_proj");
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->scale_layout, ScaleLayout::kBlock);
    EXPECT_EQ(m->scale_rows(), 4);  // ceil(100 / 32)
    EXPECT_EQ(m->scale_cols(), 4);  // ceil(200 / 64)
    EXPECT_EQ(m->act, ActQuant::kDynamicGroup);
    EXPECT_EQ(m->act_group_size, 128);
  }
  {
    Loaded l = open_fixture("ct_fp8_tensor_static_kv");
    auto m = load(l, "model.layers.0.self_attn.q_proj");
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->act, ActQuant::kStaticTensor);
    EXPECT_GT(m->input_scale, 0.0f);
    EXPECT_EQ(m->scale_layout, ScaleLayout::kTensor);
  }
  {
    Loaded l = open_fixture("fbgemm_fp8");
    auto m = load(l, "model.layers.0.self_attn.q_proj");
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->act, ActQuant::kDynamicToken);
    EXPECT_EQ(m->activation_scale_ub, 1200.0f);
    EXPECT_EQ(m->scale_dtype, DType::kF32);
  }
}

TEST(QuantLoader, FuseRowsEqualsConcatenatedDequantization) {
  for (const char* name : {"gptq_4b_g32_sym_v2_descact", "awq_g32", "ct_w8a16_g32_asym", "mlx4_g32_untied_both",
                           "ct_fp8_tensor_static_kv", "ct_fp8_channel_dynamic"}) {
    SCOPED_TRACE(name);
    Loaded l = open_fixture(name);
    auto a = load(l, "model.layers.0.self_attn.q_proj");
    ASSERT_TRUE(a.ok());
    QuantizedMatrix b = *a;  // a second part with other scales
    b.name = "copy";
    for (float& s : b.scales) s *= 2.0f;
    b.input_scale *= 2.0f;
    auto f = fuse_rows({&*a, &b, &*a}, "fused");
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_EQ(f->N, 3 * a->N);
    std::vector<float> want = dequantize(*a), wb = dequantize(b);
    want.insert(want.end(), wb.begin(), wb.end());
    const std::vector<float> wa = dequantize(*a);
    want.insert(want.end(), wa.begin(), wa.end());
    const std::vector<float> got = dequantize(*f);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4));
    if (a->kind == QuantKind::kFp8 && a->scale_layout == ScaleLayout::kTensor) {
      EXPECT_EQ(f->scale_layout, ScaleLayout::kGroup);  // differing per-tensor scales become per-channel
      EXPECT_EQ(f->input_scale, b.input_scale);         // max of the parts
    }
  }
  // Parts that cannot be joined.
  Loaded g = open_fixture("gptq_4b_g32_sym_v2_descact");
  auto q = load(g, "model.layers.0.self_attn.q_proj");
  auto d = load(g, "model.layers.0.mlp.down_proj");
  ASSERT_TRUE(q.ok() && d.ok());
  auto bad = fuse_rows({&*q, &*d}, "qd");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("input sizes K"), std::string::npos) << bad.status().to_string();
  QuantizedMatrix other = *q;
  std::swap(other.perm[0], other.perm[1]);
  bad = fuse_rows({&*q, &other}, "qq");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("act-order"), std::string::npos);
}

}  // namespace
}  // namespace kr

namespace kr {
namespace {

// Which modules each config quantizes, and with what (params_for).
TEST(QuantConfigParams, ExclusionListsAndOverrides) {
  auto parse = [](const std::string& qc) {
    auto c = parse_quant_config("{\"quantization_config\": " + qc + "}", "m/config.json");
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? std::move(c).value() : QuantConfig();
  };
  auto quantized = [](const QuantConfig& c, const std::string& m, ModuleRole r = ModuleRole::kLinear) {
    auto p = c.params_for(m, r);
    EXPECT_TRUE(p.ok());
    return p.ok() && p->has_value();
  };
  // GPTQModel dynamic: first match in file order; "-:" excludes; re.match anchors at the start only.
  QuantConfig g = parse(R"({"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": true,
      "dynamic": {"-:.*layers\\.1\\..*": {}, "+:.*down_proj": {"bits": 8, "group_size": 32, "desc_act": true},
                  ".*proj": {"bits": 4, "group_size": 64}}})");
  EXPECT_EQ(g.method(), QuantMethod::kGptq);
  EXPECT_FALSE(quantized(g, "model.layers.1.mlp.down_proj"));
  auto d = g.params_for("model.layers.0.mlp.down_proj", ModuleRole::kLinear);
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->bits, 8);
  EXPECT_EQ((*d)->group_size, 32);
  EXPECT_TRUE((*d)->act_order);
  auto q = g.params_for("model.layers.0.self_attn.q_proj", ModuleRole::kLinear);
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_EQ((*q)->group_size, 64);
  EXPECT_EQ((*q)->gptq_version, 1);  // checkpoint_format absent: v1
  EXPECT_FALSE(quantized(g, "model.embed_tokens", ModuleRole::kEmbedding));
  // compressed-tensors: ignore by name and "re:", targets by name before class.
  QuantConfig ct = parse(R"({"quant_method": "compressed-tensors", "format": "pack-quantized",
      "ignore": ["lm_head", "re:.*gate_proj$"],
      "config_groups": {
        "a": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}},
        "b": {"targets": ["model.layers.0.mlp.down_proj"], "weights": {"num_bits": 8, "type": "int", "strategy": "channel"}}}})");
  EXPECT_FALSE(quantized(ct, "lm_head"));
  EXPECT_FALSE(quantized(ct, "model.layers.3.mlp.gate_proj"));
  EXPECT_TRUE(quantized(ct, "model.layers.3.mlp.gate_proj_x"));  // "$" anchors the end
  auto cd = ct.params_for("model.layers.0.mlp.down_proj", ModuleRole::kLinear);
  ASSERT_TRUE(cd.ok() && cd->has_value());
  EXPECT_EQ((*cd)->bits, 8);  // exact name beats the class target of an earlier group
  EXPECT_EQ((*cd)->group_size, -1);
  EXPECT_FALSE(quantized(ct, "model.embed_tokens", ModuleRole::kEmbedding));
  // ModelOpt: exact, substring and fnmatch wildcards.
  QuantConfig mo = parse(R"({"quant_method": "modelopt", "quant_algo": "FP8", "ignore": ["lm_head", "model.layers.2*", "*.o_proj"]})");
  EXPECT_FALSE(quantized(mo, "lm_head"));
  EXPECT_FALSE(quantized(mo, "model.layers.2.mlp.up_proj"));
  EXPECT_FALSE(quantized(mo, "model.layers.5.self_attn.o_proj"));
  EXPECT_TRUE(quantized(mo, "model.layers.5.self_attn.q_proj"));
  EXPECT_FALSE(mo.fp8_kv_cache());
  // AWQ modules_to_not_convert: substring.
  QuantConfig awq = parse(R"({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "GEMM",
      "modules_to_not_convert": ["visual"]})");
  EXPECT_FALSE(quantized(awq, "model.visual.blocks.0.attn.qkv"));
  EXPECT_TRUE(quantized(awq, "model.layers.0.self_attn.q_proj"));
  // MLX: top-level defaults, per-module dicts and booleans; embeddings too.
  auto mlx = parse_quant_config(R"({"quantization": {"group_size": 64, "bits": 4, "lm_head": {"group_size": 32, "bits": 8},
      "model.layers.0.mlp.gate": false}})", "m/config.json");
  ASSERT_TRUE(mlx.ok());
  EXPECT_TRUE(quantized(*mlx, "model.embed_tokens", ModuleRole::kEmbedding));
  EXPECT_FALSE(quantized(*mlx, "model.layers.0.mlp.gate"));
  auto lm = mlx->params_for("lm_head", ModuleRole::kLinear);
  ASSERT_TRUE(lm.ok() && lm->has_value());
  EXPECT_EQ((*lm)->bits, 8);
  // `quantization` wins over a quantization_config (mlx-lm's order).
  auto both = parse_quant_config(R"({"quantization": {"group_size": 32, "bits": 8},
      "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}})", "m/config.json");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->method(), QuantMethod::kMlx);
  // A VLM keeps the language model's quantization_config in text_config.
  auto vlm = parse_quant_config(R"({"text_config": {"quantization_config": {"quant_method": "fbgemm_fp8"}}})", "m/config.json");
  ASSERT_TRUE(vlm.ok()) << vlm.status().to_string();
  EXPECT_EQ(vlm->method(), QuantMethod::kFbgemmFp8);
}

}  // namespace
}  // namespace kr
