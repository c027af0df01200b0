// The tensors of each family's folder: a missing or extra tensor for the
// declared architecture is an error naming the tensor (no fallback to the
// Llama layout), and a vision-language folder loads its text model only.
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "model/model.h"

namespace kr {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kFamilies = std::string(KR_SOURCE_DIR) + "/tests/golden/families/";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A temp copy of a family folder whose safetensors header (and config) a test edits.
class FamilyCopy {
 public:
  explicit FamilyCopy(const std::string& family) {
    char tmpl[] = "/tmp/kr-family-weights-XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string src = kFamilies + family;
    const std::string st = slurp(src + "/model.safetensors");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(st[i]);
    header = json::parse(st.substr(8, n));
    data_ = st.substr(8 + n);
    config = json::parse(slurp(src + "/config.json"));
  }
  ~FamilyCopy() { fs::remove_all(dir_); }

  // Renames tensor `from` (keeping its data) to `to`; an empty `to` drops it.
  void rename(const std::string& from, const std::string& to) {
    ASSERT_TRUE(header.contains(from)) << from;
    if (!to.empty()) header[to] = header[from];
    header.erase(from);
  }
  Status load() {
    spit(dir_ + "/config.json", config.dump());
    const std::string h = header.dump();
    std::string len(8, '\0');
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    spit(dir_ + "/model.safetensors", len + h + data_);
    auto be = make_cpu_backend(1, size_t{8} << 20);
    ModelOptions opt;
    opt.max_tokens_per_step = 8;
    opt.max_logit_rows = 1;
    auto m = load_model(dir_, *be, opt);
    return m.ok() ? Status::Ok() : m.status();
  }
  void expect_error(std::initializer_list<std::string> needles) {
    const Status s = load();
    ASSERT_FALSE(s.ok());
    for (const std::string& n : needles) EXPECT_NE(s.message().find(n), std::string::npos) << s.to_string();
  }

  json header, config;

 private:
  std::string dir_, data_;
};

TEST(FamilyWeights, IntactCopiesLoad) {
  for (const char* f : {"qwen2", "qwen3", "mistral", "gemma2", "gemma3", "gemma3_vlm"}) {
    FamilyCopy c(f);
    EXPECT_TRUE(c.load().ok()) << f << ": " << c.load().to_string();
  }
}

TEST(FamilyWeights, MissingTensorsOfTheFamilyAreNamed) {
  {
    FamilyCopy c("qwen3");  // a Qwen3 folder without q_norm
    c.rename("model.layers.1.self_attn.q_norm.weight", "");
    c.expect_error({"model.layers.1.self_attn.q_norm.weight", "missing", "Qwen3ForCausalLM"});
  }
  {
    FamilyCopy c("qwen2");  // a Qwen2 folder without its k bias
    c.rename("model.layers.0.self_attn.k_proj.bias", "");
    c.expect_error({"model.layers.0.self_attn.k_proj.bias", "missing"});
  }
  {
    FamilyCopy c("gemma2");
    c.rename("model.layers.2.pre_feedforward_layernorm.weight", "");
    c.expect_error({"model.layers.2.pre_feedforward_layernorm.weight", "missing"});
  }
  {
    FamilyCopy c("gemma3_vlm");  // text tensors under the wrong prefix
    c.rename("language_model.model.norm.weight", "model.norm.weight");
    c.expect_error({"model.norm.weight"});
  }
}

TEST(FamilyWeights, TensorsOfAnotherFamilyAreNamed) {
  {
    FamilyCopy c("qwen3");  // Qwen3 tensors declared as Llama: q_norm is extra
    c.config["architectures"] = {"LlamaForCausalLM"};
    c.expect_error({"self_attn.k_norm.weight", "unexpected", "LlamaForCausalLM"});
  }
  {
    FamilyCopy c("qwen2");  // biases declared as Mistral
    c.config["architectures"] = {"MistralForCausalLM"};
    c.expect_error({"_proj.bias", "unexpected", "MistralForCausalLM"});
  }
  {
    FamilyCopy c("mistral");  // a Llama-layout folder declared as Qwen2: its biases are missing
    c.config["architectures"] = {"Qwen2ForCausalLM"};
    c.config.erase("sliding_window");
    c.expect_error({"_proj.bias", "missing", "Qwen2ForCausalLM"});
  }
  {
    FamilyCopy c("gemma3");  // Gemma 3 declared as Gemma 2: q/k norms are extra
    c.config["architectures"] = {"Gemma2ForCausalLM"};
    c.config.erase("rope_parameters");
    c.expect_error({"self_attn.k_norm.weight", "unexpected", "Gemma2ForCausalLM"});
  }
}

// The transformers-5 state-dict names of a vision-language folder load as well as
// the published ones; vision tensors are skipped, text-model extras are not.
TEST(FamilyWeights, VisionLanguageNames) {
  FamilyCopy c("gemma3_vlm");
  json renamed;
  for (auto it = c.header.begin(); it != c.header.end(); ++it) {
    std::string k = it.key();
    if (k.starts_with("language_model.model.")) k = "model.language_model." + k.substr(21);
    else if (k.starts_with("vision_tower.")) k = "model." + k;
    renamed[k] = it.value();
  }
  c.header = renamed;
  EXPECT_TRUE(c.load().ok()) << c.load().to_string();
  c.rename("model.language_model.layers.0.mlp.down_proj.weight", "model.language_model.layers.0.mlp.extra.weight");
  c.expect_error({"model.language_model.layers.0.mlp.extra.weight", "unexpected"});
}

// --dummy-weights: random weights of each family's shape (the optional tensors
// included) run a forward with finite logits.
TEST(FamilyWeights, DummyWeightsOfEveryFamilyRun) {
  for (const char* f : {"qwen2", "qwen3", "mistral", "gemma2", "gemma3", "gemma3_vlm"}) {
    SCOPED_TRACE(f);
    auto be = make_cpu_backend(1, size_t{8} << 20);
    ModelOptions opt;
    opt.max_tokens_per_step = 8;
    opt.max_logit_rows = 3;
    opt.dummy_weights = true;
    auto m = load_model(kFamilies + f, *be, opt);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    StepMetadata meta;
    meta.num_tokens = 3;
    meta.num_seqs = 1;
    meta.block_size = 16;
    meta.max_blocks_per_seq = 1;
    meta.max_context_len = 3;
    meta.positions = {0, 1, 2};
    meta.slot_mapping = {0, 1, 2};
    meta.query_start = {0, 3};
    meta.context_lens = {3};
    meta.block_tables = {0};
    const std::vector<int32_t> ids = {5, 6, 7}, rows = {0, 1, 2};
    auto logits = (*m)->forward(meta, ids, rows);
    ASSERT_TRUE(logits.ok()) << logits.status().to_string();
    std::vector<float> host(logits->numel());
    be->copy_to_host(host.data(), *logits, host.size() * 4);
    for (float v : host) ASSERT_TRUE(std::isfinite(v));
  }
}

}  // namespace
}  // namespace kr
