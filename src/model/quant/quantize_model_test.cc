// kr-serve quantize's core, on the tiny model, for every format:
//  - round trip: the readers load the written folder, and their dequantized
//    weights equal, bit for bit, what the NumPy packer (scripts/quant/pack.py
//    dequant, the upstream unpackers) computes from the same files;
//  - scripts/quant/check_quantized.py finds exactly the tensors, dtypes, shapes
//    and config keys the upstream loaders read;
//  - the round-to-nearest weights are close to the originals, unquantized
//    tensors are copied (float16 for AWQ/GPTQ);
//  - bad options and folders are errors naming the problem.
#include <cmath>
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "backend/dtype_convert.h"
#include "model/quant/quant_loader.h"
#include "model/quant/quant_test_util.h"
#include "model/quant/quantize_model.h"

namespace kr {
namespace {

namespace fs = std::filesystem;
using quant_test::make_temp_dir;

const std::string kTiny = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";

float value_at(const TensorView& v, size_t i) {
  const auto* p = static_cast<const uint8_t*>(v.data);
  if (v.storage == StorageType::kF32) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return v.storage == StorageType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

int run(const std::string& cmd) { return std::system((cmd + " > /dev/null 2>&1").c_str()); }

class QuantizeModel : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { dir_ = make_temp_dir("kr-quantize-test"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_P(QuantizeModel, RoundTripAndConformance) {
  const std::string fmt = GetParam();
  auto f = parse_quantize_format(fmt);
  ASSERT_TRUE(f.ok());
  QuantizeOptions opt;
  opt.format = *f;
  opt.group_size = uses_groups(*f) ? 64 : 0;  // the tiny model's widths are 64 and 192
  const std::string out = dir_ + "/out";
  auto rep = quantize_model(kTiny, out, opt);
  ASSERT_TRUE(rep.ok()) << rep.status().to_string();
  const bool mlx = fmt.rfind("mlx", 0) == 0;
  EXPECT_EQ(rep->quantized.size(), mlx ? 15u : 14u);  // 2 layers x 7 linears (+ the tied embedding for MLX)
  EXPECT_EQ(rep->copied_files.size(), 3u);

  // The upstream-derived NumPy dequantizer and the conformance check.
  const std::string py = std::string(KR_PYTHON3) + " " + KR_SOURCE_DIR + "/scripts/quant/";
  ASSERT_EQ(0, run(py + "pack.py dequant --model " + out + " --out " + dir_ + "/deq.safetensors"));
  const std::string check = py + "check_quantized.py --source " + kTiny + " --folder " + out + " --format " + fmt +
                            " --group-size " + std::to_string(opt.group_size);
  EXPECT_EQ(0, run(check)) << "run for details: " << check;

  auto cfg = load_quant_config(out);
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  auto files = SafetensorsSet::open_dir(out, DTypePolicy::kAny);
  ASSERT_TRUE(files.ok()) << files.status().to_string();
  auto golden = SafetensorsFile::open(dir_ + "/deq.safetensors");
  ASSERT_TRUE(golden.ok());
  auto src = SafetensorsSet::open_dir(kTiny);
  ASSERT_TRUE(src.ok());
  EXPECT_EQ(golden.value()->tensors().size(), rep->quantized.size());
  for (const std::string& module : rep->quantized) {
    SCOPED_TRACE(module);
    const TensorView* orig = (*src)->find(module + ".weight");
    ASSERT_NE(orig, nullptr);
    const int64_t N = orig->shape[0], K = orig->shape[1];
    ASSERT_TRUE(is_quantized_module(*cfg, (*files)->all(), module));
    const ModuleRole role = module.find("embed_tokens") != std::string::npos ? ModuleRole::kEmbedding : ModuleRole::kLinear;
    auto m = load_quantized_matrix(*cfg, (*files)->all(), module, role, N, K);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    const std::vector<float> w = dequantize(*m);
    const TensorView* want = nullptr;
    for (const TensorView& v : golden.value()->tensors())
      if (v.name == module + ".weight") want = &v;
    ASSERT_NE(want, nullptr);
    ASSERT_EQ(want->bytes, w.size() * 4);
    EXPECT_EQ(0, std::memcmp(w.data(), want->data, want->bytes)) << "dequantized weights differ from the NumPy packer's";
    // Round-to-nearest stays close to the original weights.
    double err = 0, mag = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      const float x = value_at(*orig, i);
      err += std::fabs(x - w[i]);
      mag += std::fabs(x);
    }
    const double rel = err / mag;
    const double bound = m->kind == QuantKind::kFp8 ? 0.08 : m->bits == 8 ? 0.02 : 0.2;
    EXPECT_LT(rel, bound) << "mean |w - dequant| / mean |w|";
    EXPECT_GT(rel, 0.0);
  }
  // Unquantized tensors: the same values (float16 for AWQ/GPTQ, as those tools save).
  for (const std::string& name : rep->kept) {
    const TensorView* a = (*src)->find(name);
    const TensorView* b = (*files)->find(name);
    ASSERT_TRUE(a && b) << name;
    ASSERT_EQ(a->shape, b->shape);
    const bool fp16 = fmt == "awq" || fmt == "gptq";
    EXPECT_EQ(b->storage, fp16 ? StorageType::kF16 : a->storage) << name;
    size_t differ = 0;
    for (size_t i = 0; i < static_cast<size_t>(a->bytes / 2); ++i) {
      const float x = value_at(*a, i), y = value_at(*b, i);
      if (fp16 ? std::fabs(x - y) > std::fabs(x) * 1e-3f + 6e-8f : x != y) ++differ;
    }
    EXPECT_EQ(differ, 0u) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantizeModel,
                         ::testing::Values("fp8", "fp8-dynamic", "awq", "gptq", "w4a16", "mlx4", "mlx8"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(QuantizeModelErrors, BadOptionsAndFolders) {
  const std::string dir = make_temp_dir("kr-quantize-err");
  auto expect = [&](QuantizeFormat f, int64_t g, const std::string& src, const std::string& out,
                    std::initializer_list<std::string> needles) {
    QuantizeOptions o;
    o.format = f;
    o.group_size = g;
    auto r = quantize_model(src, out, o);
    ASSERT_FALSE(r.ok());
    for (const std::string& n : needles) EXPECT_NE(r.status().message().find(n), std::string::npos) << r.status().to_string();
  };
  expect(QuantizeFormat::kAwq, 48, kTiny, dir + "/a", {"model.layers.0.mlp.gate_proj.weight", "in_features 64", "group size 48", "--group-size"});
  expect(QuantizeFormat::kW4A16, 0, kTiny, dir + "/b", {"group size 128", "does not divide"});  // the default vs K = 64
  expect(QuantizeFormat::kFp8, 64, kTiny, dir + "/c", {"--group-size does not apply", "fp8"});
  expect(QuantizeFormat::kMlx4, 48, kTiny, dir + "/d", {"--group-size 48", "32, 64, 128"});
  expect(QuantizeFormat::kGptq, 64, dir + "/nope", dir + "/e", {"config.json"});
  fs::create_directories(dir + "/full");
  quant_test::spit(dir + "/full/x", "x");
  expect(QuantizeFormat::kGptq, 64, kTiny, dir + "/full", {"not empty"});
  // A quantized folder is not quantized again.
  QuantizeOptions o;
  o.format = QuantizeFormat::kMlx4;
  ASSERT_TRUE(quantize_model(kTiny, dir + "/q", o).ok());
  expect(QuantizeFormat::kAwq, 64, dir + "/q", dir + "/qq", {"quantization", "already quantized"});
  fs::remove_all(dir);
}

TEST(QuantizeModelShards, LargeOutputIsShardedWithIndex) {
  const std::string dir = make_temp_dir("kr-quantize-shard");
  QuantizeOptions o;
  o.format = QuantizeFormat::kFp8Dynamic;
  o.max_shard_bytes = 4u << 20;  // the tiny model's 16 MB embedding alone exceeds it
  ASSERT_TRUE(quantize_model(kTiny, dir + "/out", o).ok());
  EXPECT_TRUE(fs::exists(dir + "/out/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir + "/out/model.safetensors"));
  auto files = SafetensorsSet::open_dir(dir + "/out", DTypePolicy::kAny);  // validates the index against the shards
  ASSERT_TRUE(files.ok()) << files.status().to_string();
  auto cfg = load_quant_config(dir + "/out");
  ASSERT_TRUE(cfg.ok());
  auto m = load_quantized_matrix(*cfg, (*files)->all(), "model.layers.1.mlp.down_proj", ModuleRole::kLinear, 64, 192);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kr
