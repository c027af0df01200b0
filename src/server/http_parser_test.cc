#include "server/http_parser.h"

#include <gtest/gtest.h>

namespace kr {
namespace {

struct Parsed {
  HttpParser::Result result;
  HttpRequest req;
  size_t consumed = 0;
  int status = 0;
};

Parsed parse(std::string_view data, HttpLimits limits = {}) {
  HttpParser p(limits);
  Parsed r;
  r.result = p.parse(data, &r.req, &r.consumed);
  r.status = p.error_status();
  return r;
}

TEST(HttpParser, SimpleGet) {
  const std::string raw = "GET /v1/models?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v  \r\n\r\n";
  Parsed r = parse(raw);
  ASSERT_EQ(r.result, HttpParser::Result::kRequest);
  EXPECT_EQ(r.req.method, "GET");
  EXPECT_EQ(r.req.target, "/v1/models?x=1");
  EXPECT_EQ(r.req.path, "/v1/models");
  EXPECT_EQ(r.consumed, raw.size());
  ASSERT_NE(r.req.header("x-thing"), nullptr);
  EXPECT_EQ(*r.req.header("x-thing"), "v");
  EXPECT_TRUE(r.req.keep_alive);
}

TEST(HttpParser, IncompleteNeedsMore) {
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\n").result, HttpParser::Result::kNeedMore);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").result, HttpParser::Result::kNeedMore);
}

TEST(HttpParser, ContentLengthBodyAndPipelinedRest) {
  const std::string one = "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  Parsed r = parse(one + "GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.result, HttpParser::Result::kRequest);
  EXPECT_EQ(r.req.body, "abc");
  EXPECT_EQ(r.consumed, one.size());
}

TEST(HttpParser, ChunkedBodyWithExtensionsAndTrailers) {
  const std::string raw =
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
  Parsed r = parse(raw);
  ASSERT_EQ(r.result, HttpParser::Result::kRequest);
  EXPECT_EQ(r.req.body, "abc0123456789");
  EXPECT_EQ(r.consumed, raw.size());
  // Every strict prefix is incomplete, never an error.
  for (size_t n = 0; n < raw.size(); ++n)
    EXPECT_EQ(parse(raw.substr(0, n)).result, HttpParser::Result::kNeedMore) << n;
}

TEST(HttpParser, ConnectionSemantics) {
  EXPECT_FALSE(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").req.keep_alive);
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").req.keep_alive);
  EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").req.keep_alive);
}

TEST(HttpParser, LimitsGiveTheirStatus) {
  HttpLimits small;
  small.max_header_bytes = 64;
  small.max_body_bytes = 10;
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nX: " + std::string(100, 'a'), small).status, 431);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", small).status, 413);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nB\r\n", small).status, 413);
}

// The header limit (431) on each of its branches: a header still incomplete, a
// complete header, and the trailer section of a chunked body (an unfinished
// line, and many complete ones), each just under and just over the limit.
TEST(HttpParser, HeaderLimitOnEveryBranch) {
  HttpLimits small;
  small.max_header_bytes = 64;
  const std::string line = "GET / HTTP/1.1\r\n";  // 16 bytes
  const auto header_of = [&](size_t bytes) {   // request line + one field, `bytes` before the blank line
    return line + "X: " + std::string(bytes - line.size() - 3, 'a');
  };
  // Complete: exactly the limit is accepted, one byte more is 431 (not 400).
  Parsed at = parse(header_of(64) + "\r\n\r\n", small);
  EXPECT_EQ(at.result, HttpParser::Result::kRequest);
  Parsed over = parse(header_of(65) + "\r\n\r\n", small);
  EXPECT_EQ(over.result, HttpParser::Result::kError);
  EXPECT_EQ(over.status, 431);
  // Incomplete: waits up to the limit, then 431.
  EXPECT_EQ(parse(header_of(64), small).result, HttpParser::Result::kNeedMore);
  EXPECT_EQ(parse(header_of(65), small).status, 431);
  // Many short complete fields add up.
  std::string many = line;
  while (many.size() < 80) many += "A: b\r\n";
  EXPECT_EQ(parse(many + "\r\n", small).status, 431);

  // Trailers: the same limit over the whole trailer section.
  const std::string chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n";
  Parsed t_ok = parse(chunked + "T: " + std::string(59, 't') + "\r\n\r\n", small);  // 64 bytes with CRLF
  ASSERT_EQ(t_ok.result, HttpParser::Result::kRequest) << t_ok.status;
  EXPECT_EQ(t_ok.req.body, "abc");
  EXPECT_EQ(parse(chunked + "T: " + std::string(60, 't') + "\r\n\r\n", small).status, 431);
  EXPECT_EQ(parse(chunked + "T: " + std::string(62, 't'), small).status, 431);  // an unfinished line of 65 bytes
  EXPECT_EQ(parse(chunked + "T: " + std::string(61, 't'), small).result, HttpParser::Result::kNeedMore);  // 64
  EXPECT_EQ(parse(chunked + "T: " + std::string(20, 't'), small).result, HttpParser::Result::kNeedMore);
  std::string trailers;
  while (trailers.size() < 80) trailers += "T: x\r\n";  // every line short and complete
  EXPECT_EQ(parse(chunked + trailers + "\r\n", small).status, 431);
  EXPECT_EQ(parse(chunked + trailers, small).status, 431);  // still unfinished, already over
}

TEST(HttpParser, MalformedInputIs4xx) {
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
      "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
      "GET nopath HTTP/1.1\r\n\r\n",
      "GET / HTTP/x\r\n\r\n",
  };
  for (const char* b : bad) {
    Parsed r = parse(b);
    EXPECT_EQ(r.result, HttpParser::Result::kError) << b;
    EXPECT_EQ(r.status, 400) << b;
  }
  EXPECT_EQ(parse("GET / HTTP/2.0\r\n\r\n").status, 400);
  EXPECT_EQ(parse("GET / HTTP/1.1\nHost: x\n\n").status, 400);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").status, 400);
}

}  // namespace
}  // namespace kr
