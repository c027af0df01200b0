// Incremental Server-Sent Events parser (the subset OpenAI-style servers use):
// "data:" lines are joined with '\n' and dispatched at a blank line; comment
// lines (":...") and other fields are ignored. Bytes may arrive split anywhere.
// One parser per stream; not thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace kr::bench {

class SseParser {
 public:
  using EventFn = std::function<void(std::string_view data)>;
  void feed(std::string_view bytes, const EventFn& on_event);
  // Dispatches a last event that was not followed by a blank line (stream cut).
  void finish(const EventFn& on_event);

 private:
  void line_done(const EventFn& on_event);
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool saw_cr_ = false;  // a "\r\n" may be split between two feeds
};

}  // namespace kr::bench
