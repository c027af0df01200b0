// config.json of every family: the defaults of transformers' config classes,
// RoPE frequencies against transformers' own (tests/golden/rope-references.json),
// both config forms, the sliding-window rules, the presets, and the errors that
// name the key.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/hf_config.h"

namespace kr {
namespace {

using json = nlohmann::json;

const std::string kGolden = std::string(KR_SOURCE_DIR) + "/tests/golden/";

json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return json::parse(in);
}

StatusOr<ModelConfig> parse(const json& j) { return parse_model_config(j.dump(), "config.json"); }

// Parses `j` and expects an error whose message has every needle.
void expect_error(const json& j, std::initializer_list<std::string> needles) {
  auto c = parse(j);
  ASSERT_FALSE(c.ok()) << j.dump();
  for (const std::string& n : needles)
    EXPECT_NE(c.status().message().find(n), std::string::npos) << c.status().to_string();
}

std::vector<std::string> layer_type_names(const ArchSpec& a) {
  std::vector<std::string> v;
  for (AttentionKind k : a.layer_attention) v.push_back(k == AttentionKind::kSliding ? "sliding_attention" : "full_attention");
  return v;
}

// Each config class's defaults as transformers 5.17 sets them, for a config.json
// that gives only what the class needs to be built by us (the shape keys).
TEST(FamilyConfig, DefaultsOfTheConfigClasses) {
  const json refs = read_json(kGolden + "rope-references.json")["defaults"];
  const std::pair<const char*, const char*> classes[] = {
      {"LlamaConfig", "LlamaForCausalLM"},   {"MistralConfig", "MistralForCausalLM"},
      {"Qwen2Config", "Qwen2ForCausalLM"},   {"Qwen3Config", "Qwen3ForCausalLM"},
      {"Gemma2Config", "Gemma2ForCausalLM"}, {"Gemma3TextConfig", "Gemma3ForCausalLM"}};
  for (const auto& [cls, arch] : classes) {
    SCOPED_TRACE(cls);
    const json& d = refs[cls];
    // The classes' default shapes (the head_dim of the references follows from them).
    json j = {{"architectures", {arch}}, {"hidden_size", 4096}, {"intermediate_size", 11008},
              {"num_attention_heads", 32}, {"vocab_size", 32000}, {"num_hidden_layers", 32}};
    if (std::string(cls).starts_with("Gemma")) {
      j["hidden_size"] = 2304;
      j["num_attention_heads"] = 8;
      j["num_hidden_layers"] = 26;
    }
    if (d["layer_types"].is_array()) j["num_hidden_layers"] = d["layer_types"].size();
    auto c = parse(j);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    EXPECT_DOUBLE_EQ(c->rms_norm_eps, d["rms_norm_eps"].get<double>());
    EXPECT_EQ(c->head_dim, d["head_dim"].is_null() ? 128 : d["head_dim"].get<int>());  // null: hidden / heads
    EXPECT_EQ(c->tie_word_embeddings, d["tie_word_embeddings"].get<bool>());
    EXPECT_EQ(c->max_position_embeddings, d["max_position_embeddings"].get<int64_t>());
    const json& rp = d["rope_parameters"];
    if (rp.contains("full_attention")) {
      EXPECT_DOUBLE_EQ(c->rope_theta, rp["full_attention"]["rope_theta"].get<double>());
      EXPECT_DOUBLE_EQ(c->arch.sliding_rope_theta, rp["sliding_attention"]["rope_theta"].get<double>());
    } else {
      EXPECT_DOUBLE_EQ(c->rope_theta, rp["rope_theta"].get<double>());
      EXPECT_EQ(c->arch.sliding_rope_theta, 0.0);
    }
    EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kNone);
    // Sliding windows: transformers' layer_types (or, for Mistral, a window on every layer).
    if (d["layer_types"].is_array()) {
      EXPECT_EQ(layer_type_names(c->arch), d["layer_types"].get<std::vector<std::string>>());
    } else if (d["sliding_window"].is_number()) {
      EXPECT_EQ(c->arch.layer_attention, std::vector<AttentionKind>(32, AttentionKind::kSliding));
    } else {
      EXPECT_EQ(c->arch.layer_attention, std::vector<AttentionKind>(32, AttentionKind::kGlobal));
    }
    bool sliding = false;
    for (AttentionKind k : c->arch.layer_attention) sliding |= k == AttentionKind::kSliding;
    EXPECT_EQ(c->arch.sliding_window, sliding ? d["sliding_window"].get<int>() : 0);
    const auto num_or_zero = [](const json& v) { return v.is_null() ? 0.0f : v.get<float>(); };
    EXPECT_EQ(c->arch.query_pre_attn_scalar, num_or_zero(d["query_pre_attn_scalar"]));
    EXPECT_EQ(c->arch.attn_logit_softcap, num_or_zero(d["attn_logit_softcapping"]));
    EXPECT_EQ(c->arch.final_logit_softcap, num_or_zero(d["final_logit_softcapping"]));
    const std::string act = d["hidden_act"].is_string() ? d["hidden_act"] : d["hidden_activation"];
    EXPECT_EQ(c->arch.activation, act == "silu" ? Activation::kSilu : Activation::kGeluTanh);
  }
}

// Inverse frequencies (and yarn's attention factor) equal transformers' rotary
// embedding modules, case by case; dynamic scaling is refused by name.
TEST(FamilyConfig, RopeMatchesTransformers) {
  const json refs = read_json(kGolden + "rope-references.json")["cases"];
  int compared = 0;
  int llama3_bands[3] = {0, 0, 0};
  for (const json& r : refs) {
    SCOPED_TRACE(r["name"].get<std::string>());
    const json& kw = r["kwargs"];
    json j = {{"architectures", {r["config_class"] == "Qwen2Config" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
              {"intermediate_size", 8}, {"num_hidden_layers", 1}, {"vocab_size", 10}};
    for (auto it = kw.begin(); it != kw.end(); ++it) j[it.key()] = it.value();
    if (!kw.contains("num_key_value_heads")) j["num_key_value_heads"] = kw["num_attention_heads"];
    const std::string type = r["config_rope"]["rope_type"];
    if (type == "dynamic") {
      expect_error(j, {"config.json", "rope_scaling.rope_type", "dynamic"});
      continue;
    }
    auto c = parse(j);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    const std::vector<float> inv = rope_inv_freq(c->head_dim, c->rope_theta, c->rope_scaling);
    const auto want = r["inv_freq"].get<std::vector<float>>();
    ASSERT_EQ(inv.size(), want.size());
    for (size_t i = 0; i < inv.size(); ++i)
      EXPECT_NEAR(inv[i], want[i], 2e-7 * std::abs(want[i])) << "inv_freq[" << i << "]";
    EXPECT_NEAR(rope_attention_factor(c->rope_scaling), r["attention_scaling"].get<double>(), 1e-12);
    if (type == "llama3") {  // which of llama3's three bands this case's dimensions fall in
      const json& rp = r["config_rope"];
      const double old_len = rp["original_max_position_embeddings"].get<double>();
      const double theta = rp["rope_theta"].get<double>();
      for (size_t i = 0; i < inv.size(); ++i) {
        const double wavelen = 2 * M_PI * std::pow(theta, 2.0 * static_cast<double>(i) / (2.0 * inv.size()));
        ++llama3_bands[wavelen < old_len / rp["high_freq_factor"].get<double>()  ? 0
                       : wavelen > old_len / rp["low_freq_factor"].get<double>() ? 2
                                                                                  : 1];
      }
    }
    ++compared;
  }
  EXPECT_GE(compared, 7);
  // Every band of the llama3 scaling was compared (high: kept, medium: smoothed, low: ÷ factor).
  EXPECT_GT(llama3_bands[0], 0);
  EXPECT_GT(llama3_bands[1], 0);
  EXPECT_GT(llama3_bands[2], 0);
}

// Each golden family's two config forms describe the same model.
TEST(FamilyConfig, BothFormsGiveTheSameConfig) {
  for (const char* name : {"qwen2", "qwen3", "mistral", "gemma2", "gemma3"}) {
    SCOPED_TRACE(name);
    const std::string dir = kGolden + "families/" + name;
    auto a = load_model_config(dir);
    auto b = parse(read_json(dir + "/config.v4.json"));
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EXPECT_EQ(a->arch.layer_attention, b->arch.layer_attention);
    EXPECT_EQ(a->arch.sliding_window, b->arch.sliding_window);
    EXPECT_EQ(a->arch.sliding_rope_theta, b->arch.sliding_rope_theta);
    EXPECT_EQ(a->rope_theta, b->rope_theta);
    EXPECT_EQ(a->rope_scaling.type, b->rope_scaling.type);
    EXPECT_EQ(a->rope_scaling.factor, b->rope_scaling.factor);
    EXPECT_EQ(a->head_dim, b->head_dim);
    EXPECT_EQ(a->num_key_value_heads, b->num_key_value_heads);
    EXPECT_EQ(a->rms_norm_eps, b->rms_norm_eps);
    EXPECT_EQ(a->tie_word_embeddings, b->tie_word_embeddings);
    EXPECT_EQ(a->arch.query_pre_attn_scalar, b->arch.query_pre_attn_scalar);
    EXPECT_EQ(a->arch.attn_logit_softcap, b->arch.attn_logit_softcap);
    EXPECT_EQ(a->arch.final_logit_softcap, b->arch.final_logit_softcap);
    EXPECT_EQ(a->arch.activation, b->arch.activation);
    EXPECT_EQ(a->bos_token_id, b->bos_token_id);
    EXPECT_EQ(a->eos_token_ids, b->eos_token_ids);
  }
  // What each family's fixture exercises.
  auto qwen2 = load_model_config(kGolden + "families/qwen2");
  ASSERT_TRUE(qwen2.ok());
  EXPECT_TRUE(qwen2->arch.qkv_bias);
  EXPECT_EQ(qwen2->arch.sliding_window, 0);  // use_sliding_window: false beats sliding_window: 16
  auto gemma3 = load_model_config(kGolden + "families/gemma3");
  ASSERT_TRUE(gemma3.ok());
  EXPECT_EQ(gemma3->rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_EQ(gemma3->rope_scaling.factor, 8.0);
  EXPECT_EQ(gemma3->arch.sliding_rope_theta, 10000.0);
  EXPECT_EQ(gemma3->arch.sliding_rope_scaling.type, RopeScalingType::kNone);
  EXPECT_EQ(gemma3->arch.norm, NormKind::kTimesOnePlusWeight);
  EXPECT_TRUE(gemma3->arch.qk_norm && gemma3->arch.post_attention_norm && gemma3->arch.scale_embeddings);
  EXPECT_EQ(gemma3->arch.sliding_window, 16);
}

TEST(FamilyConfig, SlidingWindowRules) {
  json q = {{"architectures", {"Qwen2ForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 8},
            {"num_hidden_layers", 4}, {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 10},
            {"use_sliding_window", true}, {"sliding_window", 32}, {"max_window_layers", 2}};
  auto c = parse(q);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(layer_type_names(c->arch), (std::vector<std::string>{"full_attention", "full_attention",
                                                                  "sliding_attention", "sliding_attention"}));
  EXPECT_EQ(c->arch.sliding_window, 32);
  q["use_sliding_window"] = false;
  c = parse(q);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->arch.layer_attention, std::vector<AttentionKind>(4, AttentionKind::kGlobal));
  EXPECT_EQ(c->arch.sliding_window, 0);
  // transformers 5 layer_types win; a sliding layer needs a window.
  q["use_sliding_window"] = true;
  q["layer_types"] = {"sliding_attention", "full_attention", "full_attention", "full_attention"};
  c = parse(q);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->arch.layer_attention[0], AttentionKind::kSliding);
  q["use_sliding_window"] = false;
  expect_error(q, {"config.json", "sliding_window", "use_sliding_window"});
  q["layer_types"] = {"chunked_attention", "full_attention", "full_attention", "full_attention"};
  expect_error(q, {"layer_types", "chunked_attention"});
  q["layer_types"] = {"full_attention"};
  expect_error(q, {"layer_types", "num_hidden_layers"});
  // max_window_layers absent: the config class's default (recorded from transformers),
  // so only the layers from there on slide.
  const json refs = read_json(kGolden + "rope-references.json")["defaults"];
  for (const char* cls : {"Qwen2", "Qwen3"}) {
    SCOPED_TRACE(cls);
    const int first = refs[std::string(cls) + "Config"]["max_window_layers"].get<int>();
    ASSERT_EQ(first, 28);
    json d = {{"architectures", {std::string(cls) + "ForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 8},
              {"num_hidden_layers", first + 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
              {"vocab_size", 10}, {"use_sliding_window", true}, {"sliding_window", 32}};
    c = parse(d);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    std::vector<AttentionKind> want(static_cast<size_t>(first), AttentionKind::kGlobal);
    want.resize(want.size() + 2, AttentionKind::kSliding);
    EXPECT_EQ(c->arch.layer_attention, want);
  }
  // Mistral: the window on every layer, or none with null.
  json m = {{"architectures", {"MistralForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 8},
            {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 10},
            {"sliding_window", nullptr}};
  c = parse(m);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->arch.sliding_window, 0);
  m.erase("sliding_window");  // MistralConfig's default: 4096
  c = parse(m);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->arch.sliding_window, 4096);
  EXPECT_EQ(c->arch.layer_attention, std::vector<AttentionKind>(2, AttentionKind::kSliding));
  // Gemma 3 of transformers 4.50: sliding_window_pattern.
  json g = {{"architectures", {"Gemma3ForCausalLM"}}, {"num_hidden_layers", 7}, {"sliding_window_pattern", 3}};
  c = parse(g);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(layer_type_names(c->arch),
            (std::vector<std::string>{"sliding_attention", "sliding_attention", "full_attention", "sliding_attention",
                                      "sliding_attention", "full_attention", "sliding_attention"}));
}

// A published Gemma 3 vision-language config leaves most text keys to
// Gemma3TextConfig's defaults.
TEST(FamilyConfig, Gemma3PublishedConfigTakesTheClassDefaults) {
  const json j = json::parse(R"({"architectures": ["Gemma3ForConditionalGeneration"], "eos_token_id": [1, 106],
      "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                      "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                      "sliding_window": 1024}, "vision_config": {"hidden_size": 1152}})");
  auto c = parse(j);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->arch.text_of_multimodal);
  EXPECT_EQ(c->num_attention_heads, 8);
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 256);
  EXPECT_EQ(c->vocab_size, 262208);
  EXPECT_EQ(c->arch.query_pre_attn_scalar, 256.0f);
  EXPECT_EQ(c->rope_theta, 1000000.0);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_EQ(c->arch.sliding_rope_theta, 10000.0);
  EXPECT_EQ(c->arch.sliding_window, 1024);
  EXPECT_EQ(c->bos_token_id, 2);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int32_t>{1, 106}));
  EXPECT_TRUE(c->tie_word_embeddings);
  int global = 0;
  for (int l = 0; l < 34; ++l)
    if (c->arch.layer_attention[l] == AttentionKind::kGlobal) {
      ++global;
      EXPECT_EQ(l % 6, 5) << "layer " << l;
    }
  EXPECT_EQ(global, 5);
  // Errors inside text_config name it.
  json bad = j;
  bad["text_config"]["head_dim"] = "256";
  expect_error(bad, {"text_config.head_dim", "integer"});
  bad = j;
  bad.erase("text_config");
  expect_error(bad, {"text_config"});
}

TEST(FamilyConfig, UnsupportedValuesNameTheirKey) {
  const json gemma = {{"architectures", {"Gemma3ForCausalLM"}}, {"num_hidden_layers", 2}};
  json j = gemma;
  j["use_bidirectional_attention"] = true;
  expect_error(j, {"use_bidirectional_attention"});
  j = gemma;
  j["attention_bias"] = true;
  expect_error(j, {"attention_bias"});
  j = gemma;
  j["hidden_activation"] = "gelu";
  expect_error(j, {"hidden_activation", "gelu"});
  j = gemma;
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 1e6}}}};
  expect_error(j, {"rope_parameters.sliding_attention", "missing"});
  j = gemma;
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "longrope"}, {"rope_theta", 1e6}}},
                          {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
  expect_error(j, {"rope_parameters.full_attention.rope_type", "longrope"});
  j = gemma;
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"partial_rotary_factor", 0.5}};
  expect_error(j, {"rope_scaling.partial_rotary_factor"});
  j = gemma;
  j["query_pre_attn_scalar"] = -1;
  expect_error(j, {"query_pre_attn_scalar"});
  const json qwen3 = {{"architectures", {"Qwen3ForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 8},
                      {"num_hidden_layers", 1}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"vocab_size", 10}};
  j = qwen3;
  j["attention_bias"] = true;  // Qwen3: a bias on o_proj too
  expect_error(j, {"attention_bias", "o_proj"});
  j = qwen3;
  j["architectures"] = {"Phi3ForCausalLM"};
  expect_error(j, {"architectures", "Phi3ForCausalLM", "Qwen3ForCausalLM"});
  // Gemma 2's soft-caps: absent → the class defaults; null → none.
  json g2 = {{"architectures", {"Gemma2ForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 8},
             {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 10}};
  auto c = parse(g2);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->arch.attn_logit_softcap, 50.0f);
  EXPECT_EQ(c->arch.final_logit_softcap, 30.0f);
  g2["final_logit_softcapping"] = nullptr;
  c = parse(g2);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->arch.final_logit_softcap, 0.0f);
}

TEST(FamilyConfig, Presets) {
  for (const std::string& name : model_config_preset_names()) {
    auto c = model_config_preset(name);
    ASSERT_TRUE(c.ok()) << name << ": " << c.status().to_string();
    EXPECT_EQ(static_cast<int>(c->arch.layer_attention.size()), c->num_hidden_layers) << name;
  }
  auto q = model_config_preset("qwen3-8b");
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->arch.qk_norm);
  EXPECT_EQ(q->num_hidden_layers, 36);
  auto q2 = model_config_preset("qwen2.5-7b");
  ASSERT_TRUE(q2.ok());
  EXPECT_TRUE(q2->arch.qkv_bias);
  EXPECT_EQ(q2->head_dim, 128);
  EXPECT_EQ(q2->arch.sliding_window, 0);
  auto m = model_config_preset("mistral-7b-v0.3");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->arch.sliding_window, 0);
  EXPECT_EQ(m->vocab_size, 32768);
  auto g = model_config_preset("gemma-3-4b");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->num_hidden_layers, 34);
  EXPECT_EQ(g->hidden_size, 2560);
  EXPECT_EQ(g->arch.sliding_window, 1024);
  auto l = model_config_preset("llama-3.1-8b");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->rope_scaling.factor, 8.0);
  EXPECT_FALSE(l->tie_word_embeddings);
  auto unknown = model_config_preset("gpt-2");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("gemma-3-4b"), std::string::npos);
}

}  // namespace
}  // namespace kr
