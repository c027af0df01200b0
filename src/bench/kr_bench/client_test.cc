// The HTTP/SSE client and the load generator against the loopback FakeServer
// (known delays, chunked or close-delimited bodies, injected failures).
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/kr_bench/chat_client.h"
#include "bench/kr_bench/fake_server.h"
#include "bench/kr_bench/load_gen.h"
#include "bench/kr_bench/server_process.h"
#include "bench/kr_bench/sse_parser.h"
#include "bench/kr_bench/stats.h"

namespace kr::bench {
namespace {

std::vector<std::string> parse_all(const std::vector<std::string>& pieces) {
  std::vector<std::string> events;
  SseParser p;
  const auto on = [&](std::string_view d) { events.emplace_back(d); };
  for (const std::string& s : pieces) p.feed(s, on);
  p.finish(on);
  return events;
}

TEST(SseParser, SplitsAnywhereAndJoinsDataLines) {
  const std::string stream = ": comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata:two\ndata: lines\n\ndata: [DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "two\nlines", "[DONE]"};
  EXPECT_EQ(parse_all({stream}), want);
  // Every split point, including inside "\r\n".
  for (size_t cut = 0; cut <= stream.size(); ++cut)
    EXPECT_EQ(parse_all({stream.substr(0, cut), stream.substr(cut)}), want) << "cut at " << cut;
  // A last event without the blank line is still delivered by finish().
  EXPECT_EQ(parse_all({"data: tail"}), std::vector<std::string>{"tail"});
}

TEST(HttpClient, ParseUrl) {
  StatusOr<Endpoint> e = parse_url("http://localhost:8080/api/");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "localhost");
  EXPECT_EQ(e->port, 8080);
  EXPECT_EQ(e->base_path, "/api");
  EXPECT_EQ(parse_url("http://[::1]:9")->host, "::1");
  EXPECT_EQ(parse_url("http://h")->port, 80);
  EXPECT_FALSE(parse_url("https://h:1").ok());
  EXPECT_FALSE(parse_url("http://h:99999").ok());
  EXPECT_FALSE(parse_url("http://h:x").ok());
}

TEST(ServerProcess, SplitArgs) {
  EXPECT_EQ(split_args("  --a 1 --b 'x y'  \"z\" "), (std::vector<std::string>{"--a", "1", "--b", "x y", "z"}));
  EXPECT_EQ(split_args("--empty ''"), (std::vector<std::string>{"--empty", ""}));
  EXPECT_TRUE(split_args("   ").empty());
}

ChatRequest request(int max_tokens) {
  ChatRequest r;
  r.model = "fake-model";
  r.prompt = "What is 2+2?";
  r.max_tokens = max_tokens;
  r.seed = 7;
  return r;
}

TEST(ChatClient, RequestBody) {
  const nlohmann::json j = nlohmann::json::parse(chat_request_body(request(5)));
  EXPECT_EQ(j["model"], "fake-model");
  EXPECT_EQ(j["messages"][0]["role"], "user");
  EXPECT_EQ(j["messages"][0]["content"], "What is 2+2?");
  EXPECT_EQ(j["max_tokens"], 5);
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["stream_options"]["include_usage"], true);
  EXPECT_EQ(j["ignore_eos"], true);
  EXPECT_EQ(j["seed"], 7);
  EXPECT_DOUBLE_EQ(j["temperature"].get<double>(), 0.7);
}

// Timings against known delays; the upper bounds leave room for a loaded CI machine.
void check_timed_stream(bool chunked, bool usage) {
  FakeServerOptions o;
  o.first_token_delay_ms = 60;
  o.inter_token_delay_ms = 20;
  o.chunked = chunked;
  o.send_usage = usage;
  FakeServer server(o);
  const int port = server.start();
  ASSERT_GT(port, 0);
  const RequestResult r = run_chat_request(Endpoint{"127.0.0.1", port, ""}, request(6), 10'000);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.output_tokens, 6);
  EXPECT_EQ(r.content_chunks, 6);  // the role chunk with empty content is not a token
  EXPECT_EQ(r.tokens_from_usage, usage);
  EXPECT_EQ(r.prompt_tokens, usage ? 7 : 0);
  EXPECT_EQ(r.text, "t0 t1 t2 t3 t4 t5 ");
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_GE(r.ttft_ms, 59.0);
  EXPECT_LT(r.ttft_ms, 1000.0);
  ASSERT_EQ(r.itl_ms.size(), 5u);
  // One late chunk makes the next gap short, so only the sum of the gaps is bounded below
  // (the server spaces chunks 20 ms apart; delivery jitter under load moves single arrivals).
  double gaps_ms = 0;
  for (double gap : r.itl_ms) {
    EXPECT_GT(gap, 0.0);
    EXPECT_LT(gap, 1000.0);
    gaps_ms += gap;
  }
  EXPECT_GE(gaps_ms, 80.0);
  EXPECT_GE(r.e2e_ms, r.ttft_ms + 5 * 19.0);
  // TPOT = (E2E - TTFT) / (tokens - 1) by definition.
  EXPECT_DOUBLE_EQ(r.tpot_ms(), (r.e2e_ms - r.ttft_ms) / 5.0);
  EXPECT_DOUBLE_EQ(r.tokens_per_s(), 6.0 / (r.e2e_ms / 1000.0));
}

TEST(ChatClient, ChunkedStreamWithUsage) { check_timed_stream(true, true); }
TEST(ChatClient, CloseDelimitedStreamWithoutUsageCountsChunks) { check_timed_stream(false, false); }

TEST(ChatClient, ServerErrorAndRefusedConnectionFail) {
  FakeServerOptions o;
  o.fail_every_n = 1;
  FakeServer server(o);
  const int port = server.start();
  ASSERT_GT(port, 0);
  RequestResult r = run_chat_request(Endpoint{"127.0.0.1", port, ""}, request(3), 5000);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.http_status, 500);
  EXPECT_NE(r.error.find("injected failure"), std::string::npos) << r.error;
  server.stop();
  r = run_chat_request(Endpoint{"127.0.0.1", port, ""}, request(3), 5000);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("connect"), std::string::npos) << r.error;
}

TEST(LoadGen, KeepsConcurrencyAndCountsFailures) {
  FakeServerOptions o;
  o.inter_token_delay_ms = 15;
  o.fail_every_n = 5;
  FakeServer server(o);
  const int port = server.start();
  ASSERT_GT(port, 0);
  LoadOptions lo;
  lo.concurrency = 4;
  lo.requests = 10;
  lo.timeout_ms = 10'000;
  const LoadResult res = run_load(Endpoint{"127.0.0.1", port, ""}, lo, [](int) { return request(4); });
  ASSERT_EQ(res.results.size(), 10u);
  const int failed = static_cast<int>(std::count_if(res.results.begin(), res.results.end(),
                                                    [](const RequestResult& r) { return !r.ok; }));
  EXPECT_EQ(failed, 2);  // requests 5 and 10 as the server counts them
  EXPECT_EQ(server.chat_requests(), 10);
  EXPECT_EQ(server.max_concurrent_streams(), 4);
  EXPECT_GT(res.duration_s, 0.0);
  for (const RequestResult& r : res.results) EXPECT_GE(r.start_ns, res.start_ns);
}

TEST(LoadGen, PoissonArrivals) {
  const std::vector<double> a = poisson_arrivals_s(4001, 20.0, 99);
  ASSERT_EQ(a.size(), 4001u);
  EXPECT_EQ(a[0], 0.0);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  std::vector<double> gaps;
  for (size_t i = 1; i < a.size(); ++i) gaps.push_back(a[i] - a[i - 1]);
  // Exponential gaps: mean = std = 1/rate = 50 ms (4000 samples: within a few percent).
  EXPECT_NEAR(mean(gaps), 0.05, 0.005);
  EXPECT_NEAR(sample_std(gaps), 0.05, 0.006);
  EXPECT_EQ(poisson_arrivals_s(3, 20.0, 99), poisson_arrivals_s(3, 20.0, 99));  // seeded
  EXPECT_EQ(poisson_arrivals_s(3, 0, 1), (std::vector<double>{0, 0, 0}));
}

TEST(LoadGen, RateSpreadsTheRequests) {
  FakeServer server(FakeServerOptions{});
  const int port = server.start();
  ASSERT_GT(port, 0);
  LoadOptions lo;
  lo.concurrency = 8;
  lo.requests = 6;
  lo.rate_per_s = 50;
  lo.arrival_seed = 3;
  const std::vector<double> due = poisson_arrivals_s(6, 50, 3);
  ASSERT_EQ(due.size(), 6u);
  // With 8 clients for 6 requests, only the schedule holds requests back: the last
  // one is due well after the start, so starting everything at once fails below.
  ASSERT_GT(due.back(), 0.03);
  const LoadResult res = run_load(Endpoint{"127.0.0.1", port, ""}, lo, [](int) { return request(1); });
  ASSERT_EQ(res.results.size(), 6u);
  EXPECT_EQ(server.chat_requests(), 6);
  for (size_t i = 0; i < res.results.size(); ++i) {
    ASSERT_TRUE(res.results[i].ok) << res.results[i].error;
    EXPECT_EQ(res.results[i].output_tokens, 1) << i;
    const double start_s = static_cast<double>(res.results[i].start_ns - res.start_ns) / 1e9;
    EXPECT_GE(start_s, due[i] - 1e-4) << "request " << i;
    EXPECT_LT(start_s, due[i] + 1.0) << "request " << i;  // not held back past its time either
  }
  EXPECT_GE(res.duration_s, due.back());
}

}  // namespace
}  // namespace kr::bench
