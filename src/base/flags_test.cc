#include "base/flags.h"

#include <cstdlib>
#include <vector>

#include <gtest/gtest.h>

#include "base/parse_number.h"

namespace kr {
namespace {

struct Argv {
  explicit Argv(std::vector<std::string> a) : args(std::move(a)) {
    for (auto& s : args) ptrs.push_back(s.data());
  }
  int argc() const { return static_cast<int>(ptrs.size()); }
  char** argv() { return ptrs.data(); }
  std::vector<std::string> args;
  std::vector<char*> ptrs;
};

struct Opts {
  std::string host = "127.0.0.1", backend = "auto", ids;
  int32_t port = 8080;
  int64_t mb = 1024;
  double timeout = 30;
  bool dummy = false;
};

FlagSet make(Opts* o) {
  FlagSet f("kr-x serve", "[options]");
  f.string("host", "HOST", &o->host, "listening address");
  f.int32("port", 0, 65535, &o->port, "listening port");
  f.choice("backend", {"auto", "cpu", "cuda"}, &o->backend, "device");
  f.section("memory");
  f.int64("kv-cache-mb", 1, 1 << 24, &o->mb, "KV cache size").env("KR_TEST_FLAGS_MB");
  f.number("read-timeout-s", 0.01, 86400, &o->timeout, "read deadline");
  f.switch_("dummy-weights", &o->dummy, "random weights");
  f.custom("ids", "LIST", "none", "token ids", [o](const std::string& v) -> std::optional<std::string> {
    if (v.find_first_not_of("0123456789,") != std::string::npos) return "expected ids separated by commas";
    o->ids = v;
    return std::nullopt;
  });
  return f;
}

TEST(Flags, ParsesValuesSwitchesAndEquals) {
  Opts o;
  FlagSet f = make(&o);
  Argv a({"serve", "--port", "9000", "--host=0.0.0.0", "--dummy-weights", "--backend", "cpu", "--ids", "1,2",
          "--read-timeout-s", "2.5"});
  bool help = true;
  std::string err;
  ASSERT_TRUE(f.parse(a.argc(), a.argv(), 1, &help, &err)) << err;
  EXPECT_FALSE(help);
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.host, "0.0.0.0");
  EXPECT_TRUE(o.dummy);
  EXPECT_EQ(o.backend, "cpu");
  EXPECT_EQ(o.ids, "1,2");
  EXPECT_EQ(o.timeout, 2.5);
  EXPECT_TRUE(f.given("port"));
  EXPECT_FALSE(f.given("kv-cache-mb"));
}

TEST(Flags, ErrorsNameTheFlagAndSuggestTheNearest) {
  auto error_of = [](std::vector<std::string> args) {
    Opts o;
    FlagSet f = make(&o);
    Argv a(std::move(args));
    bool help = false;
    std::string err;
    EXPECT_FALSE(f.parse(a.argc(), a.argv(), 0, &help, &err));
    return err;
  };
  EXPECT_EQ(error_of({"--prot", "1"}), "unknown option '--prot' (did you mean --port?)");
  EXPECT_EQ(error_of({"--kv-cache"}), "unknown option '--kv-cache' (did you mean --kv-cache-mb?)");
  EXPECT_EQ(error_of({"--zzzzzzzz"}), "unknown option '--zzzzzzzz'");
  EXPECT_EQ(error_of({"--port", "70000"}), "--port=\"70000\": expected an integer in [0, 65535]");
  EXPECT_EQ(error_of({"--port", "12x"}), "--port=\"12x\": expected an integer in [0, 65535]");
  EXPECT_EQ(error_of({"--backend", "tpu"}), "--backend=\"tpu\": expected auto, cpu, cuda");
  EXPECT_EQ(error_of({"--read-timeout-s", "0"}), "--read-timeout-s=\"0\": expected a number in [0.01, 86400]");
  EXPECT_EQ(error_of({"--ids", "1;2"}), "--ids=\"1;2\": expected ids separated by commas");
  EXPECT_EQ(error_of({"--port"}), "option --port needs a value (N)");
  EXPECT_EQ(error_of({"stray"}), "unexpected argument 'stray'");
}

TEST(Flags, EnvironmentFillsWhatTheCommandLineDoesNotGive) {
  ::setenv("KR_TEST_FLAGS_MB", "64", 1);
  Opts o;
  FlagSet f = make(&o);
  Argv none({"x"});
  bool help = false;
  std::string err;
  ASSERT_TRUE(f.parse(none.argc(), none.argv(), 1, &help, &err)) << err;
  EXPECT_EQ(o.mb, 64);
  Argv flag({"x", "--kv-cache-mb", "8"});
  ASSERT_TRUE(f.parse(flag.argc(), flag.argv(), 1, &help, &err));
  EXPECT_EQ(o.mb, 8);  // the flag wins
  ::setenv("KR_TEST_FLAGS_MB", "lots", 1);
  Argv again({"x"});
  EXPECT_FALSE(f.parse(again.argc(), again.argv(), 1, &help, &err));
  EXPECT_EQ(err, "KR_TEST_FLAGS_MB=\"lots\": expected an integer in [1, 16777216]");
  ::unsetenv("KR_TEST_FLAGS_MB");
}

TEST(Flags, HelpListsEveryFlagWithItsDefault) {
  Opts o;
  FlagSet f = make(&o);
  Argv a({"x", "--help", "--bogus"});
  bool help = false;
  std::string err;
  ASSERT_TRUE(f.parse(a.argc(), a.argv(), 1, &help, &err));
  EXPECT_TRUE(help);
  const std::string h = f.help();
  EXPECT_EQ(h.rfind("usage: kr-x serve [options]\n", 0), 0u) << h;
  for (const char* line : {"--host HOST", "(default: 127.0.0.1)", "--port N", "(default: 8080)",
                           "--backend auto|cpu|cuda", "(default: auto)", "memory:\n", "(default: 1024; env KR_TEST_FLAGS_MB)",
                           "(default: 30)", "--dummy-weights ", "(default: off)", "--ids LIST", "(default: none)"})
    EXPECT_NE(h.find(line), std::string::npos) << line << "\n" << h;
}

TEST(ParseNumber, WholeStringInRange) {
  int64_t i = 0;
  double d = 0;
  bool b = false;
  EXPECT_TRUE(parse_int("-5", -10, 10, &i));
  EXPECT_EQ(i, -5);
  EXPECT_FALSE(parse_int("5 ", 0, 10, &i));
  EXPECT_FALSE(parse_int("", 0, 10, &i));
  EXPECT_FALSE(parse_int("11", 0, 10, &i));
  EXPECT_FALSE(parse_int("99999999999999999999", 0, INT64_MAX, &i));
  EXPECT_TRUE(parse_double("1e-3", 0, 1, &d));
  EXPECT_EQ(d, 1e-3);
  EXPECT_FALSE(parse_double("nan", 0, 1, &d));
  EXPECT_FALSE(parse_double("inf", 0, 1e308, &d));
  EXPECT_FALSE(parse_double("0.5x", 0, 1, &d));
  EXPECT_TRUE(parse_bool("ON", &b));
  EXPECT_TRUE(b);
  EXPECT_TRUE(parse_bool("no", &b));
  EXPECT_FALSE(b);
  EXPECT_FALSE(parse_bool("maybe", &b));
}

}  // namespace
}  // namespace kr
