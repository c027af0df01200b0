#include "engine/engine_config.h"

#include "backend/kv_cache_dtype.h"

#include <gtest/gtest.h>

#include <map>

namespace kr {
namespace {

TEST(EngineConfig, DefaultsWithEmptyEnv) {
  auto r = engine_config_from_env({});
  ASSERT_TRUE(r.ok());
  const EngineConfig d;
  EXPECT_EQ(r->config.scheduler_on, d.scheduler_on);
  EXPECT_EQ(r->config.admissions_per_step, d.admissions_per_step);
  EXPECT_TRUE(r->notices.empty());
}

TEST(EngineConfig, ReadsKrVariables) {
  auto r = engine_config_from_env({{"KR_GPU_SCHEDULER", "off"},
                                   {"KR_GPU_SCHEDULER_WINDOW_MS", "2.5"},
                                   {"KR_GPU_SCHEDULER_BATCH_SIZE", "4"},
                                   {"KR_FAST_PATH", "0"},
                                   {"KR_ADAPTIVE_WINDOW", "true"},
                                   {"KR_AUTO_TUNE", "on"},
                                   {"KR_AUTO_TUNE_TARGET_TTFT_MS", "80"},
                                   {"KR_MAX_NUM_SEQS", "64"},
                                   {"KR_MAX_BATCHED_TOKENS", "512"},
                                   {"KR_MAX_QUEUED_REQUESTS", "10"},
                                   {"KR_BACKGROUND_MAX_WAIT_S", "5"},
                                   {"KR_REQUEST_TIMEOUT_S", "60"}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const EngineConfig& c = r->config;
  EXPECT_FALSE(c.scheduler_on);
  EXPECT_DOUBLE_EQ(c.window_ms, 2.5);
  EXPECT_EQ(c.admissions_per_step, 4);
  EXPECT_FALSE(c.fast_path);
  EXPECT_TRUE(c.adaptive_window);
  EXPECT_TRUE(c.auto_tune.enabled);
  EXPECT_DOUBLE_EQ(c.auto_tune.target_ttft_p99_ms, 80);
  EXPECT_EQ(c.max_num_seqs, 64);
  EXPECT_EQ(c.max_batched_tokens, 512);
  EXPECT_EQ(c.max_queued_requests, 10);
  EXPECT_DOUBLE_EQ(c.background_max_wait_s, 5);
  EXPECT_DOUBLE_EQ(c.request_timeout_s, 60);
}

TEST(EngineConfig, SeedAliasesWorkWithANotice) {
  auto r = engine_config_from_env({{"MLX_GPU_SCHEDULER", "off"}, {"MLX_GPU_SCHEDULER_BATCH_SIZE", "3"},
                                   {"MLX_AUTO_TUNE", "1"}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->config.scheduler_on);
  EXPECT_EQ(r->config.admissions_per_step, 3);
  EXPECT_TRUE(r->config.auto_tune.enabled);
  ASSERT_EQ(r->notices.size(), 3u);
  EXPECT_NE(r->notices[0].find("KR_"), std::string::npos);
}

TEST(EngineConfig, KrBeatsAliasAndFlagsBeatEnv) {
  auto r = engine_config_from_env({{"MLX_GPU_SCHEDULER_BATCH_SIZE", "3"}, {"KR_GPU_SCHEDULER_BATCH_SIZE", "5"},
                                   {"KR_MAX_NUM_SEQS", "7"}},
                                  {{"KR_MAX_NUM_SEQS", "9"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->config.admissions_per_step, 5);
  EXPECT_TRUE(r->notices.empty());
  EXPECT_EQ(r->config.max_num_seqs, 9);
}

TEST(EngineConfig, InvalidValuesNameTheVariableAndRange) {
  struct Case {
    const char* name;
    const char* value;
  };
  for (const Case& c : {Case{"KR_GPU_SCHEDULER", "maybe"}, Case{"KR_GPU_SCHEDULER_WINDOW_MS", "-1"},
                        Case{"KR_GPU_SCHEDULER_BATCH_SIZE", "0"}, Case{"KR_GPU_SCHEDULER_BATCH_SIZE", "4x"},
                        Case{"KR_MAX_NUM_SEQS", ""}, Case{"KR_REQUEST_TIMEOUT_S", "nan"},
                        Case{"MLX_FAST_PATH", "2"}}) {
    auto r = engine_config_from_env({{c.name, c.value}});
    ASSERT_FALSE(r.ok()) << c.name << "=" << c.value;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.name), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("expected"), std::string::npos);
  }
  auto r = engine_config_from_env({{"KR_AUTO_TUNE_MIN_BATCH_SIZE", "9"}, {"KR_AUTO_TUNE_MAX_BATCH_SIZE", "4"}});
  EXPECT_FALSE(r.ok());
}

// The table the serve flags and their --help come from.
TEST(EngineConfig, VariableTableGivesFlagsAndDefaults) {
  std::map<std::string, const EngineVariable*> by_name;
  for (const EngineVariable& v : engine_variables()) by_name[v.name] = &v;
  ASSERT_TRUE(by_name.count("KR_GPU_SCHEDULER_BATCH_SIZE"));
  const EngineVariable& b = *by_name["KR_GPU_SCHEDULER_BATCH_SIZE"];
  EXPECT_EQ(b.flag(), "gpu-scheduler-batch-size");
  EXPECT_EQ(b.default_value(), "8");
  EXPECT_EQ(b.value_name(), "N");
  EXPECT_EQ(by_name["KR_GPU_SCHEDULER"]->default_value(), "on");
  EXPECT_EQ(by_name["KR_GPU_SCHEDULER"]->value_name(), "on|off");
  EXPECT_EQ(by_name["KR_GPU_SCHEDULER_WINDOW_MS"]->default_value(), "1");
  EXPECT_EQ(by_name["KR_REQUEST_TIMEOUT_S"]->value_name(), "S");
  EngineConfig c;
  std::string expected;
  EXPECT_FALSE(b.parse("0", &c, &expected));
  EXPECT_EQ(expected, "an integer in [1, 4096]");
  EXPECT_TRUE(b.parse("12", &c, &expected));
  EXPECT_EQ(c.admissions_per_step, 12);
  // Every variable parses its own default back to the default.
  for (const EngineVariable& v : engine_variables()) {
    EngineConfig d;
    EXPECT_TRUE(v.parse(v.default_value(), &d, &expected)) << v.name << ": " << expected;
  }
}

// --kv-cache-dtype / KR_KV_CACHE_DTYPE: one of auto|bf16|fp8 (KvCacheDType's order);
// anything else is an error naming the variable and the choices.
TEST(EngineConfig, KvCacheDtypeIsAChoice) {
  std::map<std::string, const EngineVariable*> by_name;
  for (const EngineVariable& v : engine_variables()) by_name[v.name] = &v;
  ASSERT_TRUE(by_name.count("KR_KV_CACHE_DTYPE"));
  const EngineVariable& v = *by_name["KR_KV_CACHE_DTYPE"];
  EXPECT_EQ(v.flag(), "kv-cache-dtype");
  EXPECT_EQ(v.value_name(), "auto|bf16|fp8");
  EXPECT_EQ(v.default_value(), "auto");
  EXPECT_EQ(static_cast<KvCacheDType>(EngineConfig{}.kv_cache_dtype), KvCacheDType::kAuto);
  for (const auto& [text, want] : {std::pair{"auto", KvCacheDType::kAuto}, std::pair{"bf16", KvCacheDType::kBf16},
                                   std::pair{"fp8", KvCacheDType::kFp8}}) {
    auto r = engine_config_from_env({}, {{"KR_KV_CACHE_DTYPE", text}});
    ASSERT_TRUE(r.ok()) << text << ": " << r.status().to_string();
    EXPECT_EQ(static_cast<KvCacheDType>(r->config.kv_cache_dtype), want) << text;
  }
  for (const char* bad : {"fp16", "FP8", "", "e4m3"}) {
    auto r = engine_config_from_env({{"KR_KV_CACHE_DTYPE", bad}});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("KR_KV_CACHE_DTYPE"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("auto|bf16|fp8"), std::string::npos) << r.status().message();
  }
}

TEST(KvCacheDtype, Fp8EncodeSaturatesAndRoundTrips) {
  // Every finite e4m3 code decodes and encodes back to itself (scale 1 and 0.5).
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;  // NaN
    const float x = fp8_e4m3_to_f32(static_cast<uint8_t>(c));
    if (c == 0x80) continue;            // -0 encodes as -0 = 0x80 too; checked below
    EXPECT_EQ(kv_fp8_encode(x, 1.0f), c) << c;
    EXPECT_EQ(kv_fp8_encode(x * 0.5f, 0.5f), c) << c;
    EXPECT_EQ(kv_fp8_decode(static_cast<uint8_t>(c), 0.5f), x * 0.5f) << c;
  }
  EXPECT_EQ(kv_fp8_encode(-0.0f, 1.0f), 0x80);
  EXPECT_EQ(kv_fp8_encode(1e6f, 2.0f), 0x7E);    // saturates to +448
  EXPECT_EQ(kv_fp8_encode(-1e6f, 2.0f), 0xFE);   // and -448
  EXPECT_EQ(kv_fp8_encode(900.0f, 2.0f), 0x7E);  // 900 / 2 = 450 > 448
  EXPECT_EQ(kv_fp8_encode(1.0625f, 1.0f), 0x38);  // halfway between 1 and 1.125: to even (1.0)
  EXPECT_EQ(kv_fp8_encode(1.1875f, 1.0f), 0x3A);  // halfway between 1.125 and 1.25: to even (1.25)
  EXPECT_EQ(parse_kv_cache_dtype("fp8"), KvCacheDType::kFp8);
  EXPECT_EQ(parse_kv_cache_dtype("bf16"), KvCacheDType::kBf16);
  EXPECT_FALSE(parse_kv_cache_dtype("int8").has_value());
}

}  // namespace
}  // namespace kr
