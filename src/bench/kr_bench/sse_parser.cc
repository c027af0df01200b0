#include "bench/kr_bench/sse_parser.h"

namespace kr::bench {

void SseParser::feed(std::string_view bytes, const EventFn& on_event) {
  for (char c : bytes) {
    if (saw_cr_) {
      saw_cr_ = false;
      if (c == '\n') continue;  // second half of "\r\n"
    }
    if (c == '\r') {
      saw_cr_ = true;
      line_done(on_event);
    } else if (c == '\n') {
      line_done(on_event);
    } else {
      line_.push_back(c);
    }
  }
}

void SseParser::line_done(const EventFn& on_event) {
  if (line_.empty()) {
    if (has_data_) on_event(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  std::string_view line(line_);
  if (line.substr(0, 5) == "data:") {
    line.remove_prefix(5);
    if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (has_data_) data_.push_back('\n');
    data_.append(line);
    has_data_ = true;
  }
  line_.clear();
}

void SseParser::finish(const EventFn& on_event) {
  if (!line_.empty()) line_done(on_event);
  if (has_data_) on_event(data_);
  data_.clear();
  has_data_ = false;
}

}  // namespace kr::bench
