// ArchSpec from config.json, and the forward's support check: every value the
// forward does not run yet is an error naming its config key (or the family).
#include "model/arch_spec.h"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/hf_config.h"

namespace kr {
namespace {

using json = nlohmann::json;

json llama_config() {
  return json::parse(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":8,
      "num_hidden_layers":3,"num_attention_heads":4,"vocab_size":10})");
}

// Parses `j` and expects an error whose message has every needle.
void expect_config_error(const json& j, std::initializer_list<std::string> needles) {
  auto c = parse_model_config(j.dump(), "config.json");
  ASSERT_FALSE(c.ok());
  for (const std::string& n : needles)
    EXPECT_NE(c.status().message().find(n), std::string::npos) << c.status().to_string();
}

TEST(ArchSpec, LlamaConfigGivesTheLlamaForward) {
  json j = llama_config();
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["mlp_bias"] = nullptr;
  auto c = parse_model_config(j.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const ArchSpec& a = c->arch;
  EXPECT_EQ(a.architecture, "LlamaForCausalLM");
  EXPECT_EQ(a.norm, NormKind::kTimesWeight);
  EXPECT_EQ(a.activation, Activation::kSilu);
  EXPECT_FALSE(a.qkv_bias || a.o_bias || a.mlp_bias || a.qk_norm || a.post_attention_norm);
  EXPECT_EQ(a.layer_attention, std::vector<AttentionKind>(3, AttentionKind::kGlobal));
  EXPECT_FALSE(a.scale_embeddings);
  EXPECT_EQ(a.query_pre_attn_scalar, 0.0f);
  auto p = model_config_preset("llama-3.2-3b");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->arch.layer_attention.size(), 28u);
  EXPECT_TRUE(check_forward_supports(p->arch, "preset").ok());
}

TEST(ArchSpec, UnsupportedConfigValuesNameTheirKey) {
  json j = llama_config();
  j["architectures"] = {"Phi3ForCausalLM"};
  expect_config_error(j, {"config.json", "architectures", "Phi3ForCausalLM"});
  j = llama_config();
  j["attention_bias"] = true;
  expect_config_error(j, {"config.json", "attention_bias"});
  j = llama_config();
  j["attention_bias"] = "yes";
  expect_config_error(j, {"attention_bias", "boolean"});
  j = llama_config();
  j["mlp_bias"] = true;
  expect_config_error(j, {"mlp_bias"});
  j = llama_config();
  j["hidden_act"] = "relu";
  expect_config_error(j, {"hidden_act", "relu"});
}

// The forward runs every family's values; what it does not run is refused by
// the key that set it.
TEST(ArchSpec, ForwardSupportCheck) {
  ArchSpec llama;
  llama.architecture = "LlamaForCausalLM";
  llama.layer_attention.assign(2, AttentionKind::kGlobal);
  EXPECT_TRUE(check_forward_supports(llama, "f").ok());
  ArchSpec gemma = llama;  // everything Gemma 2/3 set
  gemma.query_pre_attn_scalar = 256.0f;
  gemma.activation = Activation::kGeluTanh;
  gemma.norm = NormKind::kTimesOnePlusWeight;
  gemma.post_attention_norm = gemma.post_feedforward_norm = gemma.qk_norm = gemma.scale_embeddings = true;
  gemma.attn_logit_softcap = 50.0f;
  gemma.final_logit_softcap = 30.0f;
  gemma.layer_attention[0] = AttentionKind::kSliding;
  gemma.sliding_window = 4096;
  gemma.qkv_bias = true;
  EXPECT_TRUE(check_forward_supports(gemma, "f").ok());
  struct Case {
    void (*set)(ArchSpec&);
    const char* needle;
  };
  const Case cases[] = {
      {[](ArchSpec& a) { a.o_bias = true; }, "attention_bias"},
      {[](ArchSpec& a) { a.mlp_bias = true; }, "mlp_bias"},
      {[](ArchSpec& a) { a.attn_logit_softcap = -1.0f; }, "attn_logit_softcapping"},
      {[](ArchSpec& a) { a.final_logit_softcap = -1.0f; }, "final_logit_softcapping"},
      {[](ArchSpec& a) { a.layer_attention[1] = AttentionKind::kSliding; }, "sliding_window"},
  };
  for (const Case& c : cases) {
    ArchSpec a = llama;
    c.set(a);
    const Status s = check_forward_supports(a, "f.json");
    ASSERT_FALSE(s.ok()) << c.needle;
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << s.to_string();
    EXPECT_NE(s.message().find("f.json"), std::string::npos) << s.to_string();
  }
}

}  // namespace
}  // namespace kr
