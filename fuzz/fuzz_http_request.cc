// libFuzzer target: the HTTP/1.1 request parser and the OpenAI request parser
// (both endpoints) on arbitrary bytes. Errors are fine; crashes are not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/api_error.h"
#include "server/http_parser.h"
#include "server/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // 1. As raw bytes on a connection: parse requests until the input is used up.
  kr::HttpParser parser(kr::HttpLimits{4096, 65536});
  std::string_view rest = input;
  for (int i = 0; i < 64 && !rest.empty(); ++i) {
    kr::HttpRequest req;
    size_t consumed = 0;
    const auto r = parser.parse(rest, &req, &consumed);
    if (r != kr::HttpParser::Result::kRequest) break;
    if (consumed == 0 || consumed > rest.size()) __builtin_trap();
    rest.remove_prefix(consumed);
  }
  // 2. As a JSON body of both endpoints.
  kr::RequestLimits limits;
  limits.vocab_size = 128256;
  for (bool chat : {true, false}) {
    kr::OpenAIRequest out;
    kr::ApiError err;
    kr::parse_openai_request(input, chat, limits, &out, &err);
  }
  return 0;
}
