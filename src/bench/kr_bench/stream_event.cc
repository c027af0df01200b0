#include "bench/kr_bench/stream_event.h"

namespace kr::bench {

StreamEvent classify_stream_event(std::string_view data) {
  StreamEvent e;
  if (data == "[DONE]") {
    e.kind = StreamEvent::Kind::kDone;
    return e;
  }
  e.chunk = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (e.chunk.is_discarded() || !e.chunk.is_object()) {
    e.kind = StreamEvent::Kind::kError;
    e.error = "unparsable SSE data: " + std::string(data.substr(0, 200));
  } else if (e.chunk.contains("error")) {
    e.kind = StreamEvent::Kind::kError;
    e.error = e.chunk["error"].dump();
  }
  return e;
}

std::string stream_request_error(const StatusOr<HttpResponseHead>& head, const std::string& plain_body,
                                 const std::string& error_event) {
  if (!head.ok()) return head.status().to_string();
  if (head->status != 200) return "HTTP " + std::to_string(head->status) + ": " + plain_body.substr(0, 300);
  return error_event;
}

}  // namespace kr::bench
