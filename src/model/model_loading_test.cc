// Broken copies of the tiny model folder, generated in a temp dir: each must
// fail with a Status that names the file and the tensor or key. Plus config
// parsing details and a sharded copy that must load.
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "model/hf_config.h"
#include "model/model.h"
#include "model/safetensors.h"

namespace kr {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kModelDir = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string header_len_bytes(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

class BrokenModel : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kr-model-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string st = slurp(kModelDir + "/model.safetensors");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(st[i]);
    header_ = json::parse(st.substr(8, n));
    data_ = st.substr(8 + n);
    config_ = json::parse(slurp(kModelDir + "/config.json"));
    write_config();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write_config() { spit(dir_ + "/config.json", config_.dump()); }
  void write_weights(const std::string& name = "model.safetensors") {
    const std::string h = header_.dump();
    spit(dir_ + "/" + name, header_len_bytes(h.size()) + h + data_);
  }
  Status load() {
    auto be = make_cpu_backend(1, size_t{8} << 20);
    ModelOptions opt;
    opt.max_tokens_per_step = 8;
    opt.max_logit_rows = 1;
    auto m = load_model(dir_, *be, opt);
    return m.ok() ? Status::Ok() : m.status();
  }
  // Expects failure with a message containing every needle.
  void expect_error(std::initializer_list<std::string> needles) {
    Status s = load();
    ASSERT_FALSE(s.ok()) << config_.dump();
    for (const std::string& n : needles) EXPECT_NE(s.message().find(n), std::string::npos) << s.to_string();
  }
  std::string st_path() const { return dir_ + "/model.safetensors"; }

  std::string dir_;
  json header_, config_;
  std::string data_;
};

TEST_F(BrokenModel, IntactCopyLoads) {
  write_weights();
  EXPECT_TRUE(load().ok());
}

TEST_F(BrokenModel, MissingTensor) {
  header_.erase("model.layers.1.mlp.up_proj.weight");
  write_weights();
  expect_error({"model.layers.1.mlp.up_proj.weight", "missing"});
}

TEST_F(BrokenModel, ExtraTensor) {
  header_["model.layers.9.extra.weight"] = {{"dtype", "BF16"}, {"shape", {2}},
                                            {"data_offsets", {data_.size(), data_.size() + 4}}};
  data_ += std::string(4, '\0');
  write_weights();
  expect_error({"model.layers.9.extra.weight", "model.safetensors"});
}

TEST_F(BrokenModel, WrongShape) {
  header_["model.norm.weight"]["shape"] = {2, 32};  // same bytes, wrong shape
  write_weights();
  expect_error({"model.norm.weight", "[2, 32]", "[64]"});
}

TEST_F(BrokenModel, UnknownDtype) {
  header_["model.norm.weight"]["dtype"] = "I8";
  write_weights();
  expect_error({"model.norm.weight", "I8", "model.safetensors"});
}

TEST_F(BrokenModel, BytesNotMatchingShape) {
  header_["model.norm.weight"]["shape"] = {63};
  write_weights();
  expect_error({"model.norm.weight", "126"});
}

TEST_F(BrokenModel, TruncatedFile) {
  write_weights();
  const std::string full = slurp(st_path());
  spit(st_path(), full.substr(0, full.size() / 2));
  expect_error({"model.safetensors", "out of range"});
  spit(st_path(), full.substr(0, 5));
  expect_error({"model.safetensors", "shorter than the 8-byte"});
}

TEST_F(BrokenModel, HeaderLengthPastEnd) {
  spit(st_path(), header_len_bytes(1u << 30) + "{}");
  expect_error({"model.safetensors", "past the end"});
}

TEST_F(BrokenModel, OffsetsOutOfRangeAndOverlapping) {
  header_["model.norm.weight"]["data_offsets"] = {data_.size() - 2, data_.size() + 126};
  write_weights();
  expect_error({"model.norm.weight", "out of range"});
  header_["model.norm.weight"]["data_offsets"] = header_["model.layers.0.input_layernorm.weight"]["data_offsets"];
  write_weights();
  expect_error({"overlaps", "model.safetensors"});
}

TEST_F(BrokenModel, MalformedAndDuplicateHeader) {
  spit(st_path(), header_len_bytes(9) + "{not json");
  expect_error({"model.safetensors", "malformed header JSON"});
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  spit(st_path(), header_len_bytes(h.size()) + h + std::string(8, '\0'));
  expect_error({"duplicate tensor name 'a'"});
}

TEST_F(BrokenModel, ConfigErrors) {
  write_weights();
  spit(dir_ + "/config.json", "{\"architectures\": [");
  expect_error({"config.json", "malformed JSON"});
  config_["architectures"] = {"Phi3ForCausalLM"};
  write_config();
  expect_error({"config.json", "architectures", "Phi3ForCausalLM"});
  config_["architectures"] = {"LlamaForCausalLM"};
  config_.erase("hidden_size");
  write_config();
  expect_error({"config.json", "hidden_size", "missing"});
  config_["hidden_size"] = "64";
  write_config();
  expect_error({"config.json", "hidden_size", "integer"});
  config_["hidden_size"] = 64;
  config_["rope_scaling"]["rope_type"] = "dynamic";
  write_config();
  expect_error({"config.json", "rope_scaling", "dynamic"});
  fs::remove(dir_ + "/config.json");
  expect_error({"config.json", "cannot open"});
}

TEST_F(BrokenModel, MissingFolderAndWeights) {
  expect_error({"no model.safetensors"});
  dir_ += "/nope";
  expect_error({"/nope", "does not exist"});
  dir_.resize(dir_.size() - 5);
}

TEST_F(BrokenModel, ShardedFolderLoads) {
  // Two shards: layer 1 in the second file, the rest in the first.
  json h1 = json::object(), h2 = json::object(), map = json::object();
  std::string d1, d2;
  for (auto it = header_.begin(); it != header_.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const bool second = it.key().rfind("model.layers.1.", 0) == 0;
    json& h = second ? h2 : h1;
    std::string& d = second ? d2 : d1;
    const uint64_t b = it.value()["data_offsets"][0], e = it.value()["data_offsets"][1];
    json entry = it.value();
    entry["data_offsets"] = {d.size(), d.size() + (e - b)};
    d += data_.substr(b, e - b);
    h[it.key()] = entry;
    map[it.key()] = second ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  }
  spit(dir_ + "/model-00001-of-00002.safetensors", header_len_bytes(h1.dump().size()) + h1.dump() + d1);
  spit(dir_ + "/model-00002-of-00002.safetensors", header_len_bytes(h2.dump().size()) + h2.dump() + d2);
  spit(dir_ + "/model.safetensors.index.json", json{{"weight_map", map}}.dump());
  EXPECT_TRUE(load().ok()) << load().to_string();
  map["model.layers.1.ghost.weight"] = "model-00002-of-00002.safetensors";
  spit(dir_ + "/model.safetensors.index.json", json{{"weight_map", map}}.dump());
  expect_error({"model.layers.1.ghost.weight", "model-00002-of-00002.safetensors"});
}

TEST(HfConfig, TinyConfigAndPreset) {
  auto c = load_model_config(kModelDir);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  auto g = load_generation_config(kModelDir);
  ASSERT_TRUE(g.ok());
  EXPECT_FLOAT_EQ(*g->temperature, 0.6f);
  EXPECT_FLOAT_EQ(*g->top_p, 0.9f);
  auto p = model_config_preset("llama-3.2-3b");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->num_hidden_layers, 28);
  EXPECT_EQ(p->intermediate_size, 8192);
  EXPECT_FALSE(model_config_preset("llama-9b").ok());
  // Defaults: kv heads = heads, head_dim = hidden / heads, a single eos id.
  auto d = parse_model_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":8,
      "num_hidden_layers":1,"num_attention_heads":4,"vocab_size":10,"eos_token_id":2})", "c.json");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->num_key_value_heads, 4);
  EXPECT_EQ(d->head_dim, 16);
  EXPECT_EQ(d->eos_token_ids, std::vector<int32_t>{2});
  EXPECT_EQ(d->rope_scaling.type, RopeScalingType::kNone);
}

// The reference case of tests/golden/rope-references.json with this name
// (transformers' rotary-embedding modules, recorded on the GPU machine).
json rope_reference(const std::string& name) {
  std::ifstream in(std::string(KR_SOURCE_DIR) + "/tests/golden/rope-references.json");
  const json refs = json::parse(in);
  for (const json& r : refs["cases"])
    if (r["name"] == name) return r;
  ADD_FAILURE() << "no rope reference " << name;
  return json::object();
}

// Llama 3.2's RoPE (the llama-3.2-3b preset) against transformers, index by
// index: the high-frequency band (wavelength < 8192 / 4: unchanged), the low one
// (> 8192: divided by 32) and the smoothed band between; each band must be there.
TEST(HfConfig, Llama3InvFreqMatchesHuggingFace) {
  auto c = model_config_preset("llama-3.2-3b");
  ASSERT_TRUE(c.ok());
  const json ref = rope_reference("llama3_3.2");
  const json& rp = ref["config_rope"];
  ASSERT_EQ(c->head_dim, 128);
  EXPECT_DOUBLE_EQ(c->rope_theta, rp["rope_theta"].get<double>());
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, rp["factor"].get<double>());
  EXPECT_DOUBLE_EQ(c->rope_scaling.low_freq_factor, rp["low_freq_factor"].get<double>());
  EXPECT_DOUBLE_EQ(c->rope_scaling.high_freq_factor, rp["high_freq_factor"].get<double>());
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, rp["original_max_position_embeddings"].get<int64_t>());
  const auto inv = rope_inv_freq(c->head_dim, c->rope_theta, c->rope_scaling);
  const auto want = ref["inv_freq"].get<std::vector<double>>();
  ASSERT_EQ(inv.size(), want.size());
  const double old_len = rp["original_max_position_embeddings"].get<double>();
  const double low_wavelen = old_len / rp["low_freq_factor"].get<double>();
  const double high_wavelen = old_len / rp["high_freq_factor"].get<double>();
  int high = 0, medium = 0, low = 0;
  for (size_t i = 0; i < inv.size(); ++i) {
    // The band by the unscaled frequency, computed here in double.
    const double raw = 1.0 / std::pow(500000.0, 2.0 * static_cast<double>(i) / 128.0);
    const double wavelen = 2 * M_PI / raw;
    const char* band = wavelen < high_wavelen ? "high" : wavelen > low_wavelen ? "low" : "medium";
    (wavelen < high_wavelen ? high : wavelen > low_wavelen ? low : medium)++;
    EXPECT_NEAR(inv[i], want[i], 2e-7 * want[i]) << "inv_freq[" << i << "], " << band << "-frequency band";
  }
  EXPECT_GT(high, 0);
  EXPECT_GT(medium, 0);
  EXPECT_GT(low, 0);
  EXPECT_DOUBLE_EQ(rope_attention_factor(c->rope_scaling), ref["attention_scaling"].get<double>());
}

// A config.json without rope_theta or rope_scaling gets LlamaConfig's defaults.
TEST(HfConfig, AbsentRopeKeysTakeLlamaConfigDefaults) {
  const json ref = rope_reference("llama_absent_keys");
  json j = {{"architectures", {"LlamaForCausalLM"}}, {"intermediate_size", 8}, {"num_hidden_layers", 1},
            {"vocab_size", 10}};
  for (auto it = ref["kwargs"].begin(); it != ref["kwargs"].end(); ++it) j[it.key()] = it.value();
  auto c = parse_model_config(j.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_DOUBLE_EQ(c->rope_theta, ref["config_rope"]["rope_theta"].get<double>());
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kNone);
  const auto inv = rope_inv_freq(c->head_dim, c->rope_theta, c->rope_scaling);
  const auto want = ref["inv_freq"].get<std::vector<double>>();
  ASSERT_EQ(inv.size(), want.size());
  for (size_t i = 0; i < inv.size(); ++i) EXPECT_NEAR(inv[i], want[i], 2e-7 * want[i]) << "inv_freq[" << i << "]";
}

// transformers 5 writes RoPE as `rope_parameters` (theta included) instead of
// `rope_scaling` + a top-level `rope_theta`; both must give the same config.
TEST(HfConfig, RopeParametersOfTransformers5) {
  const json base = json::parse(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":8,
      "num_hidden_layers":1,"num_attention_heads":4,"vocab_size":10})");
  const json scaling = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 2.0},
                        {"high_freq_factor", 6.0}, {"original_max_position_embeddings", 4096}};
  json v4 = base;
  v4["rope_theta"] = 250000.0;
  v4["rope_scaling"] = scaling;
  json v5 = base;
  v5["rope_parameters"] = scaling;
  v5["rope_parameters"]["rope_theta"] = 250000.0;
  auto a = parse_model_config(v4.dump(), "v4.json");
  auto b = parse_model_config(v5.dump(), "v5.json");
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_DOUBLE_EQ(b->rope_theta, 250000.0);
  EXPECT_EQ(b->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(b->rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(b->rope_scaling.low_freq_factor, 2.0);
  EXPECT_DOUBLE_EQ(b->rope_scaling.high_freq_factor, 6.0);
  EXPECT_EQ(b->rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_EQ(rope_inv_freq(a->head_dim, a->rope_theta, a->rope_scaling),
            rope_inv_freq(b->head_dim, b->rope_theta, b->rope_scaling));

  // rope_parameters wins over the old keys when a file has both.
  json both = v5;
  both["rope_theta"] = 10000.0;
  both["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  auto c = parse_model_config(both.dump(), "both.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_DOUBLE_EQ(c->rope_theta, 250000.0);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kLlama3);

  // The default type: theta only, no scaling; without a theta inside, the top-level one stays.
  json plain = base;
  plain["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  auto d = parse_model_config(plain.dump(), "plain.json");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_DOUBLE_EQ(d->rope_theta, 500000.0);
  EXPECT_EQ(d->rope_scaling.type, RopeScalingType::kNone);
  plain["rope_theta"] = 30000.0;
  plain["rope_parameters"] = {{"rope_type", "default"}};
  d = parse_model_config(plain.dump(), "plain.json");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_DOUBLE_EQ(d->rope_theta, 30000.0);

  // Errors name rope_parameters and the field.
  json bad = v5;
  bad["rope_parameters"]["rope_type"] = "longrope";
  auto e = parse_model_config(bad.dump(), "bad.json");
  ASSERT_FALSE(e.ok()) << bad.dump();
  EXPECT_NE(e.status().message().find("rope_parameters.rope_type"), std::string::npos) << e.status().to_string();
  bad = v5;
  bad["rope_parameters"].erase("low_freq_factor");
  e = parse_model_config(bad.dump(), "bad.json");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("rope_parameters.low_freq_factor"), std::string::npos) << e.status().to_string();
  bad = v5;
  bad["rope_parameters"]["rope_theta"] = -1.0;
  e = parse_model_config(bad.dump(), "bad.json");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("rope_parameters.rope_theta"), std::string::npos) << e.status().to_string();
  bad = base;
  bad["rope_parameters"] = "llama3";
  EXPECT_FALSE(parse_model_config(bad.dump(), "bad.json").ok());
}

}  // namespace
}  // namespace kr
