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

}  // namespace kr::bench
