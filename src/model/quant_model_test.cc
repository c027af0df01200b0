// Whole quantized models on the CPU reference (tests/golden/quant/<name>: tiny
// Llama models in every checkpoint format, and a Qwen2 AWQ (q/k/v biases beside
// quantized projections) and a Gemma 3 MLX 4-bit one ((1 + w) norms, q/k norms,
// post-attention/MLP norms, a scaled quantized tied embedding, GeGLU, sliding
// layers), written by scripts/quant/pack.py models):
//  - each loads, and its logits equal bit for bit those of its dense twin (the same
//    folder with every weight F32, quantized modules dequantized by the NumPy
//    unpackers: pack.py dense-twin): the loader reads, fuses and places every
//    quantized module as the checkpoint means it;
//  - `kr-serve quantize` output of the Llama-3 fixture, in every format, loads and
//    stays close to the float model (round-to-nearest error only);
//  - against the float64 goldens of Hugging Face transformers on the packer's
//    dequantized weights (expected.json, scripts/quant/make_quant_goldens.py on the
//    GPU machine): last-position logits within 1e-4, argmax at every prompt position
//    and greedy continuations equal where the golden margin exceeds 1e-3.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "model/model.h"
#include "model/quant/quantize_model.h"
#include "model/single_seq_step_for_test.h"

namespace kr {
namespace {

using json = nlohmann::json;

const std::string kRoot = std::string(KR_SOURCE_DIR) + "/tests/golden/quant";

std::vector<std::string> model_names() {
  std::ifstream in(kRoot + "/models.json");
  if (!in.good()) return {};
  return json::parse(in).get<std::vector<std::string>>();
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}


struct Loaded {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

Loaded load(const std::string& dir) {
  Loaded l;
  l.backend = make_cpu_backend(1, size_t{16} << 20);
  ModelOptions opt;
  opt.max_tokens_per_step = 128;
  opt.max_logit_rows = 128;
  // The fixtures that declare an FP8 KV cache would get one under auto: the dense
  // twins and the goldens keep K/V unquantized (fp8_kv_cache_test checks the FP8 cache).
  opt.kv_cache_dtype = KvCacheDType::kBf16;
  auto m = load_model(dir, *l.backend, opt);
  EXPECT_TRUE(m.ok()) << dir << ": " << m.status().to_string();
  if (m.ok()) l.model = std::move(m).value();
  return l;
}

// Logits [n, V] of every token of `ids` fed from position `start`.
std::vector<float> run(Model& model, const std::vector<int32_t>& ids, int32_t start) {
  const int32_t n = static_cast<int32_t>(ids.size());
  std::vector<int32_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  auto logits = model.forward(single_seq_step(start, n, model.block_size()), ids, rows);
  EXPECT_TRUE(logits.ok()) << logits.status().to_string();
  std::vector<float> host(static_cast<size_t>(n) * model.config().vocab_size);
  if (logits.ok()) model.backend().copy_to_host(host.data(), *logits, host.size() * 4);
  return host;
}

int32_t argmax_of(const float* row, int64_t V) {
  int32_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (row[i] > row[best]) best = static_cast<int32_t>(i);
  return best;
}

TEST(QuantModel, FixturesArePresent) { EXPECT_GE(model_names().size(), 19u) << kRoot << "/models.json"; }

// The quantized folder and its dense twin compute the same logits, bit for bit.
TEST(QuantModel, EqualsDenseTwin) {
  const std::string tmp = std::filesystem::temp_directory_path() / ("kr-quant-twins-" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  const std::vector<int32_t> prompt = {3, 77, 12, 101, 5, 64, 9, 127, 0, 42, 88, 19};
  for (const std::string& name : model_names()) {
    SCOPED_TRACE(name);
    const std::string twin = tmp + "/" + name;
    const std::string cmd = std::string(KR_PYTHON3) + " " + KR_SOURCE_DIR + "/scripts/quant/pack.py dense-twin --model " +
                            kRoot + "/" + name + " --out " + twin + " > " + tmp + "/log.txt 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << " (needs Python 3 with NumPy)";
    Loaded q = load(kRoot + "/" + name), d = load(twin);
    ASSERT_TRUE(q.model && d.model);
    // A prefill of the prompt, then two decode steps (batch 1).
    std::vector<float> lq = run(*q.model, prompt, 0), ld = run(*d.model, prompt, 0);
    for (int32_t step = 0; step < 2; ++step) {
      const std::vector<int32_t> next = {static_cast<int32_t>(17 + 30 * step)};
      const int32_t pos = static_cast<int32_t>(prompt.size()) + step;
      const std::vector<float> a = run(*q.model, next, pos), b = run(*d.model, next, pos);
      lq.insert(lq.end(), a.begin(), a.end());
      ld.insert(ld.end(), b.begin(), b.end());
    }
    ASSERT_EQ(lq.size(), ld.size());
    size_t diff = 0;
    for (size_t i = 0; i < lq.size(); ++i) diff += lq[i] != ld[i];
    EXPECT_EQ(diff, 0u) << "logits differ from the dense twin's at " << diff << " of " << lq.size() << " entries";
    // Not a degenerate model: logits vary.
    const auto [mn, mx] = std::minmax_element(lq.begin(), lq.end());
    EXPECT_GT(*mx - *mn, 1.0f);
  }
  std::filesystem::remove_all(tmp);
}

// A copy of `name` with one more tensor in model.safetensors (F16 zeros of `shape`).
std::string copy_with_extra_tensor(const std::string& name, const std::string& tensor, int64_t elems) {
  const std::string dir = std::filesystem::temp_directory_path() / ("kr-quant-extra-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::copy(kRoot + "/" + name, dir, std::filesystem::copy_options::recursive);
  std::ifstream in(dir + "/model.safetensors", std::ios::binary);
  std::string st((std::istreambuf_iterator<char>(in)), {});
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(st[i]);
  json header = json::parse(st.substr(8, n));
  std::string data = st.substr(8 + n);
  header[tensor] = {{"dtype", "F16"}, {"shape", {elems}}, {"data_offsets", {data.size(), data.size() + 2 * elems}}};
  data.append(static_cast<size_t>(2 * elems), '\0');
  const std::string h = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
  std::ofstream(dir + "/model.safetensors", std::ios::binary | std::ios::trunc) << out << h << data;
  return dir;
}

// A tensor of a quantized module that no reader consumes (here a bias the Llama
// forward has no place for) is an error naming it, never silently dropped.
TEST(QuantModel, UnconsumedTensorOfAQuantizedModuleIsAnError) {
  const std::string dir = copy_with_extra_tensor("awq_g128", "model.layers.1.mlp.down_proj.bias", 128);
  auto backend = make_cpu_backend(1, size_t{16} << 20);
  auto m = load_model(dir, *backend, ModelOptions{});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().to_string().find("model.layers.1.mlp.down_proj.bias"), std::string::npos) << m.status().to_string();
  std::filesystem::remove_all(dir);
}

// Every `kr-serve quantize` format of models/tiny-llama3 loads through the same
// loader, and its logits stay within round-to-nearest error of the float model's.
TEST(QuantModel, QuantizeOutputLoadsAndStaysClose) {
  const std::string tmp = std::filesystem::temp_directory_path() / ("kr-quantized-" + std::to_string(::getpid()));
  const std::string src = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";
  const std::vector<int32_t> prompt = {128000, 791, 6460, 315, 9822, 374, 12366, 13};
  Loaded dense = load(src);
  ASSERT_TRUE(dense.model);
  const std::vector<float> want = run(*dense.model, prompt, 0);
  // Relative RMS error of the logits: 8-bit and FP8 are far tighter than 4-bit.
  const std::pair<QuantizeFormat, double> formats[] = {
      {QuantizeFormat::kFp8, 0.1},   {QuantizeFormat::kFp8Dynamic, 0.1}, {QuantizeFormat::kAwq, 0.35},
      {QuantizeFormat::kGptq, 0.35}, {QuantizeFormat::kW4A16, 0.35},     {QuantizeFormat::kMlx4, 0.35},
      {QuantizeFormat::kMlx8, 0.1}};
  for (const auto& [format, tol] : formats) {
    SCOPED_TRACE(quantize_format_name(format));
    const std::string out = tmp + "/" + quantize_format_name(format);
    QuantizeOptions opt;
    opt.format = format;
    if (format != QuantizeFormat::kFp8 && format != QuantizeFormat::kFp8Dynamic) opt.group_size = 32;  // hidden 64
    auto report = quantize_model(src, out, opt);
    ASSERT_TRUE(report.ok()) << report.status().to_string();
    Loaded q = load(out);
    ASSERT_TRUE(q.model);
    const std::vector<float> got = run(*q.model, prompt, 0);
    ASSERT_EQ(got.size(), want.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i]));
      num += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
      den += static_cast<double>(want[i]) * want[i];
    }
    const double rel = std::sqrt(num / den);
    EXPECT_LT(rel, tol);
    EXPECT_GT(rel, 0.0);  // the weights really are quantized
    std::printf("  %-12s relative RMS logit error %.4f\n", quantize_format_name(format), rel);
  }
  std::filesystem::remove_all(tmp);
}

// `kr-serve quantize` of every family's tiny model (tests/golden/families) loads
// and stays within round-to-nearest error of the float model: quantized q/k/v
// beside Qwen2's biases and Qwen3's q/k norms, Gemma's extra norms, scaled
// embeddings and soft-caps, sliding windows, the text model of a vision-language
// folder. Group 16 divides every K of these models (Gemma 3's hidden is 80).
TEST(QuantModel, QuantizedFamiliesStayClose) {
  const std::string tmp = std::filesystem::temp_directory_path() / ("kr-quant-families-" + std::to_string(::getpid()));
  const std::string root = std::string(KR_SOURCE_DIR) + "/tests/golden/families";
  const std::vector<int32_t> prompt = {1, 17, 300, 5, 911, 64, 2, 12, 700, 33, 450, 8, 99, 250, 3, 1000, 41, 77};
  // Bounds on the relative RMS logit error, about 1.5x what round-to-nearest gives
  // these random models (FP8 0.01-0.12, 4-bit 0.03-0.34, 8-bit 0.01-0.03); a misplaced
  // or unscaled weight gives errors near 1.
  const std::pair<QuantizeFormat, double> formats[] = {
      {QuantizeFormat::kFp8Dynamic, 0.2}, {QuantizeFormat::kAwq, 0.5}, {QuantizeFormat::kGptq, 0.5},
      {QuantizeFormat::kMlx8, 0.06}};
  for (const char* family : {"qwen2", "qwen3", "mistral", "gemma2", "gemma3", "gemma3_vlm"}) {
    SCOPED_TRACE(family);
    const std::string src = root + "/" + family;
    Loaded dense = load(src);
    ASSERT_TRUE(dense.model);
    const std::vector<float> want = run(*dense.model, prompt, 0);
    for (const auto& [format, tol] : formats) {
      SCOPED_TRACE(quantize_format_name(format));
      // MLX groups are 32, 64 or 128: per-tensor-group formats of Gemma 3 (hidden 80) skip it.
      if (format == QuantizeFormat::kMlx8 && dense.model->config().hidden_size % 32 != 0) continue;
      const std::string out = tmp + "/" + family + "-" + quantize_format_name(format);
      QuantizeOptions opt;
      opt.format = format;
      if (format == QuantizeFormat::kAwq || format == QuantizeFormat::kGptq) opt.group_size = 16;
      if (format == QuantizeFormat::kMlx8) opt.group_size = 32;
      auto report = quantize_model(src, out, opt);
      ASSERT_TRUE(report.ok()) << report.status().to_string();
      Loaded q = load(out);
      ASSERT_TRUE(q.model);
      const std::vector<float> got = run(*q.model, prompt, 0);
      ASSERT_EQ(got.size(), want.size());
      double num = 0, den = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_TRUE(std::isfinite(got[i]));
        num += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
        den += static_cast<double>(want[i]) * want[i];
      }
      const double rel = std::sqrt(num / den);
      EXPECT_LT(rel, tol);
      EXPECT_GT(rel, 0.0);  // the weights really are quantized
      std::printf("  %-10s %-12s relative RMS logit error %.4f\n", family, quantize_format_name(format), rel);
    }
  }
  std::filesystem::remove_all(tmp);
}

// Against transformers in float64 (expected.json per model).
TEST(QuantModel, MatchesFloat64Golden) {
  int with_golden = 0;
  for (const std::string& name : model_names()) {
    const std::string golden_path = kRoot + "/" + name + "/expected.json";
    if (!exists(golden_path)) continue;
    ++with_golden;
    SCOPED_TRACE(name);
    std::ifstream in(golden_path);
    const json golden = json::parse(in);
    Loaded q = load(kRoot + "/" + name);
    ASSERT_TRUE(q.model);
    const int64_t V = q.model->config().vocab_size;
    ASSERT_GE(golden["cases"].size(), 3u);
    for (const json& c : golden["cases"]) {
      SCOPED_TRACE(c["name"].get<std::string>());
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      const auto pos_argmax = c["pos_argmax"].get<std::vector<int32_t>>();
      const auto pos_margin = c["pos_margin"].get<std::vector<double>>();
      const int32_t n = static_cast<int32_t>(ids.size());
      const std::vector<float> logits = run(*q.model, ids, 0);
      for (int32_t p = 0; p < n; ++p) {
        if (pos_margin[p] > 1e-3) {
          EXPECT_EQ(argmax_of(&logits[p * V], V), pos_argmax[p]) << "position " << p;
        }
      }
      const auto last = c["last_logits"].get<std::vector<double>>();
      ASSERT_EQ(static_cast<int64_t>(last.size()), V);
      double max_err = 0;
      for (int64_t i = 0; i < V; ++i) max_err = std::max(max_err, std::abs(logits[(n - 1) * V + i] - last[i]));
      EXPECT_LE(max_err, 1e-4) << "last-position logits";
      if (!c.contains("greedy_next_ids")) continue;
      // Greedy decode through the KV cache, feeding the reference token back.
      const auto next = c["greedy_next_ids"].get<std::vector<int32_t>>();
      const auto margins = c["greedy_margins"].get<std::vector<double>>();
      std::vector<float> row(logits.end() - V, logits.end());
      for (size_t k = 0; k < next.size(); ++k) {
        if (margins[k] > 1e-3) {
          EXPECT_EQ(argmax_of(row.data(), V), next[k]) << "greedy step " << k;
        }
        row = run(*q.model, {next[k]}, n + static_cast<int32_t>(k));
      }
    }
  }
  if (with_golden == 0)
    GTEST_SKIP() << "no tests/golden/quant/*/expected.json yet: make them on the GPU machine with "
                    "scripts/quant/make_quant_goldens.py (docs/quantization.md)";
  EXPECT_EQ(with_golden, static_cast<int>(model_names().size())) << "every model needs its golden";
}

}  // namespace
}  // namespace kr
