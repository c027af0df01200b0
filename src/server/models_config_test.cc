#include "server/models_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/toml_subset.h"

namespace kr {
namespace {

using ::testing::HasSubstr;

StatusOr<ModelsConfig> parse(std::string_view text) { return parse_models_config(text, "/etc/kr/models.toml"); }

std::string error_of(std::string_view text) {
  auto c = parse(text);
  return c.ok() ? std::string("(parsed)") : c.status().message();
}

std::string check_error(std::string_view text, int32_t max_loaded = 0) {
  auto c = parse(text);
  if (!c.ok()) return "(parse error) " + c.status().message();
  const Status s = check_models(c->models, max_loaded);
  return s.ok() ? std::string("(ok)") : s.message();
}

TEST(TomlSubset, ReadsTheSubset) {
  auto doc = parse_toml_subset(
      "# comment\n"
      "a = 1_000 # trailing\n"
      "b = -2.5e-1\n"
      "\"quoted key\" = 'C:\\path'\n"
      "[[t]]\n"
      "s = \"tab\\there \\u00e9 \\\"q\\\"\"\n"
      "yes = true\r\n"
      "[[t]]\n"
      "f = 3.0\n",
      "x.toml");
  ASSERT_TRUE(doc.ok()) << doc.status().message();
  ASSERT_EQ(doc->root.entries.size(), 3u);
  EXPECT_EQ(doc->root.entries[0].second.kind, TomlValue::kInteger);
  EXPECT_EQ(doc->root.entries[0].second.integer, 1000);
  EXPECT_EQ(doc->root.entries[1].second.kind, TomlValue::kFloat);
  EXPECT_DOUBLE_EQ(doc->root.entries[1].second.number, -0.25);
  EXPECT_EQ(doc->root.entries[2].first, "quoted key");
  EXPECT_EQ(doc->root.entries[2].second.str, "C:\\path");
  ASSERT_EQ(doc->tables.size(), 2u);
  EXPECT_EQ(doc->tables[0].name, "t");
  EXPECT_TRUE(doc->tables[0].array);
  EXPECT_EQ(doc->tables[0].line, 5);
  EXPECT_EQ(doc->tables[0].entries[0].second.str, "tab\there \xc3\xa9 \"q\"");
  EXPECT_TRUE(doc->tables[0].entries[1].second.boolean);
  EXPECT_EQ(doc->tables[1].entries[0].second.kind, TomlValue::kFloat);
}

TEST(TomlSubset, RefusesWhatItDoesNotRead) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"a = [1, 2]\n", "x.toml:1: arrays are not supported"},
      {"a = {b = 1}\n", "x.toml:1: inline tables are not supported"},
      {"\na.b = 1\n", "x.toml:2: dotted keys are not supported"},
      {"a = \"\"\"x\"\"\"\n", "multi-line strings are not supported"},
      {"a = hello\n", "'hello' is not a value (strings need quotes)"},
      {"a = 0x10\n", "hex, octal and binary"},
      {"a = 012\n", "leading zeros"},
      {"a = 1__0\n", "'_' must stand between digits"},
      {"a = nan\n", "inf and nan are not supported"},
      {"a = \"open\n", "unterminated string"},
      {"a = \"\\q\"\n", "unknown escape \\q"},
      {"a = 1 2\n", "unexpected '2' after the value"},
      {"a = 1\na = 2\n", "x.toml:2: the key 'a' is given twice"},
      {"[t]\n[t]\n", "x.toml:2: table [t] is defined twice"},
      {"[[t]]\n[t]\n", "'t' is used both as [t] and [[t]]"},
      {"[[t]\n", "expected ']]'"},
      {"a =\n", "expected a value after '='"},
      {"= 1\n", "expected a key"},
      {"a 1\n", "expected '=' after the key 'a'"},
  };
  for (const Case& c : cases) {
    auto doc = parse_toml_subset(c.text, "x.toml");
    ASSERT_FALSE(doc.ok()) << c.text;
    EXPECT_THAT(doc.status().message(), HasSubstr(c.error)) << c.text;
  }
}

TEST(ModelsConfig, ReadsModelsAndTheirSettings) {
  auto c = parse(
      "max_loaded_models = 2\n"
      "model_idle_ttl_s = 600\n"
      "[[model]]\n"
      "name = \"llama-8b\"\n"
      "path = \"/models/llama-8b\"\n"
      "memory_share = 0.6\n"
      "max_num_seqs = 64\n"
      "max_step_ms = 7.5\n"
      "gpu-scheduler = false\n"
      "[[model]]\n"
      "path = \"tiny\"\n"
      "load_at_start = false\n"
      "idle_ttl_s = 30\n"
      "max_model_len = 2048\n"
      "[[model]]\n"
      "name = \"bench-3b\"\n"
      "dummy_weights = true\n"
      "arch = \"llama-3.2-3b\"\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->max_loaded_models, 2);
  EXPECT_EQ(c->model_idle_ttl_s, 600);
  ASSERT_EQ(c->models.size(), 3u);
  const ModelSpec& a = c->models[0];
  EXPECT_EQ(a.name, "llama-8b");
  EXPECT_EQ(a.path, "/models/llama-8b");
  EXPECT_DOUBLE_EQ(a.memory_share, 0.6);
  EXPECT_TRUE(a.load_at_start);
  EXPECT_EQ(a.line, 3);
  EXPECT_EQ(a.engine_settings.at("KR_MAX_NUM_SEQS"), "64");
  EXPECT_EQ(a.engine_settings.at("KR_MAX_STEP_MS"), "7.5");
  EXPECT_EQ(a.engine_settings.at("KR_GPU_SCHEDULER"), "off");
  const ModelSpec& b = c->models[1];
  EXPECT_EQ(b.name, "");  // defaulted to the folder's name by the app
  EXPECT_EQ(b.path, "/etc/kr/tiny");  // relative to the file
  EXPECT_FALSE(b.load_at_start);
  EXPECT_EQ(b.idle_ttl_s, 30);
  EXPECT_EQ(b.max_model_len, 2048);
  EXPECT_EQ(b.memory_share, 0);
  EXPECT_TRUE(c->models[2].dummy_weights);
  EXPECT_EQ(c->models[2].arch, "llama-3.2-3b");
  EXPECT_EQ(c->models[2].path, "");
}

TEST(ModelsConfig, UnknownKeysAndTablesAreErrorsNamingThem) {
  EXPECT_EQ(error_of("[[model]]\npath = \"/m\"\nmax_num_seq = 4\n"),
            "/etc/kr/models.toml:3: unknown key 'max_num_seq' in [[model]] (did you mean 'max_num_seqs'?)");
  EXPECT_EQ(error_of("[[model]]\npath = \"/m\"\nflavour = \"x\"\n"),
            "/etc/kr/models.toml:3: unknown key 'flavour' in [[model]]");
  EXPECT_EQ(error_of("max_loaded_model = 1\n[[model]]\npath = \"/m\"\n"),
            "/etc/kr/models.toml:1: unknown key 'max_loaded_model' in the top level (did you mean "
            "'max_loaded_models'?)");
  EXPECT_THAT(error_of("[[models]]\npath = \"/m\"\n"), HasSubstr(":1: unknown table [[models]]"));
  EXPECT_THAT(error_of("[model]\npath = \"/m\"\n"), HasSubstr(":1: unknown table [model]"));
}

TEST(ModelsConfig, ValuesAreChecked) {
  EXPECT_EQ(error_of("[[model]]\npath = \"/m\"\nmemory_share = 1.5\n"),
            "/etc/kr/models.toml:3: memory_share: must be in (0, 1], got 1.5");
  EXPECT_EQ(error_of("[[model]]\npath = \"/m\"\nmemory_share = 0\n"),
            "/etc/kr/models.toml:3: memory_share: must be in (0, 1], got 0");
  EXPECT_EQ(error_of("[[model]]\npath = 3\n"), "/etc/kr/models.toml:2: path: expected a string, got an integer");
  EXPECT_EQ(error_of("[[model]]\npath = \"/m\"\nmax_num_seqs = 0\n"),
            "/etc/kr/models.toml:3: max_num_seqs: expected an integer in [1, 65536], got 0");
  EXPECT_EQ(error_of("[[model]]\npath = \"/m\"\nmax_num_seqs = 1.5\n"),
            "/etc/kr/models.toml:3: max_num_seqs: expected an integer in [1, 65536], got 1.5");
  EXPECT_EQ(error_of("[[model]]\nname = \"x\"\n"),
            "/etc/kr/models.toml:1: [[model]] needs a path (or dummy_weights = true with an arch)");
  EXPECT_EQ(error_of("[[model]]\npath = \"/m\"\narch = \"llama-3.2-3b\"\n"),
            "/etc/kr/models.toml:1: arch needs dummy_weights = true");
  EXPECT_EQ(error_of("max_loaded_models = -1\n[[model]]\npath = \"/m\"\n"),
            "/etc/kr/models.toml:1: max_loaded_models: must be in [0, 4096], got -1");
  EXPECT_EQ(error_of("# nothing\n"), "/etc/kr/models.toml: no [[model]] table");
}

TEST(ModelsConfig, DuplicateNamesAreRefused) {
  EXPECT_EQ(check_error("[[model]]\nname = \"a\"\npath = \"/m1\"\n[[model]]\nname = \"b\"\npath = \"/m2\"\n"
                        "[[model]]\nname = \"a\"\npath = \"/m3\"\n"),
            "two models are served as 'a' (line 1 and line 7); served names must be unique (name = \"...\" in the "
            "file, or --served-model-name after each --model)");
  std::vector<ModelSpec> flags(2);
  flags[0].name = flags[1].name = "tiny-llama3";
  EXPECT_THAT(check_models(flags, 0).message(), HasSubstr("'tiny-llama3' (model 1 and model 2)"));
  flags[1].name = "";
  EXPECT_EQ(check_models(flags, 0).message(), "model 2 has no served name");
  EXPECT_EQ(check_models({}, 0).message(), "no model to serve");
}

TEST(ModelsConfig, SharesOverOneAreRefused) {
  const char* three = "[[model]]\nname = \"a\"\npath = \"/m\"\nmemory_share = 0.5\n"
                      "[[model]]\nname = \"b\"\npath = \"/m\"\nmemory_share = 0.4\n"
                      "[[model]]\nname = \"c\"\npath = \"/m\"\nmemory_share = 0.3\n";
  EXPECT_EQ(check_error(three), "the memory shares add up to 1.2 (a 0.5, b 0.4, c 0.3), more than 1.0");
  // Two at a time: the two largest must fit.
  EXPECT_EQ(check_error(three, 2), "(ok)");
  EXPECT_EQ(check_error(three, 3), "the memory shares add up to 1.2 (a 0.5, b 0.4, c 0.3), more than 1.0");
  const char* big = "[[model]]\nname = \"a\"\npath = \"/m\"\nmemory_share = 0.7\n"
                    "[[model]]\nname = \"b\"\npath = \"/m\"\nmemory_share = 0.6\n"
                    "[[model]]\nname = \"c\"\npath = \"/m\"\n";
  EXPECT_EQ(check_error(big, 2),
            "the 2 largest memory shares (--max-loaded-models 2 lets that many be loaded at once) add up to 1.3 (a "
            "0.7, b 0.6), more than 1.0");
  EXPECT_EQ(check_error(big, 1), "(ok)");
  // Exactly 1.0 in decimal is fine, whatever binary makes of it: summed largest
  // first, 0.56 + 0.34 + 0.1 is 1.0000000000000002 in doubles.
  EXPECT_EQ(check_error("[[model]]\nname = \"a\"\npath = \"/m\"\nmemory_share = 0.34\n"
                        "[[model]]\nname = \"b\"\npath = \"/m\"\nmemory_share = 0.1\n"
                        "[[model]]\nname = \"c\"\npath = \"/m\"\nmemory_share = 0.56\n"),
            "(ok)");
}

TEST(ModelsConfig, AutomaticSharesSplitByWeightSize) {
  std::vector<ModelSpec> m(3);
  m[0].name = "a";
  m[1].name = "b";
  m[2].name = "c";
  // All automatic: in proportion to the weights.
  auto s = resolve_memory_shares(m, {1000, 3000, 4000}, 0);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ((*s)[0], 0.125);
  EXPECT_DOUBLE_EQ((*s)[1], 0.375);
  EXPECT_DOUBLE_EQ((*s)[2], 0.5);
  // One loaded at a time: each may use the whole device... in proportion to the largest.
  s = resolve_memory_shares(m, {1000, 3000, 4000}, 1);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ((*s)[0], 0.25);
  EXPECT_DOUBLE_EQ((*s)[2], 1.0);
  // Two at a time: any two fit (the two largest add up to 1).
  s = resolve_memory_shares(m, {1000, 3000, 4000}, 2);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ((*s)[1] + (*s)[2], 1.0);
  // An explicit share is kept; the others split the rest.
  m[0].memory_share = 0.5;
  s = resolve_memory_shares(m, {1000, 3000, 1000}, 0);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ((*s)[0], 0.5);
  EXPECT_DOUBLE_EQ((*s)[1], 0.375);
  EXPECT_DOUBLE_EQ((*s)[2], 0.125);
  // Explicit shares that leave nothing.
  m[0].memory_share = 1.0;
  s = resolve_memory_shares(m, {1000, 3000, 1000}, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("leave nothing for 'b'"));
}

}  // namespace
}  // namespace kr
