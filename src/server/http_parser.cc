#include "server/http_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace kr {
namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Header values: visible ASCII, obs-text, space and tab; no control bytes.
bool valid_value(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

bool contains_token(std::string_view list, std::string_view token) {
  size_t i = 0;
  while (i <= list.size()) {
    const size_t comma = list.find(',', i);
    const std::string_view item = trim(list.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i));
    if (lower(item) == token) return true;
    if (comma == std::string_view::npos) break;
    i = comma + 1;
  }
  return false;
}

}  // namespace

const std::string* HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return &v;
  return nullptr;
}

HttpParser::Result HttpParser::fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
  return Result::kError;
}

HttpParser::Result HttpParser::parse(std::string_view data, HttpRequest* out, size_t* consumed) {
  // Tolerate empty lines before a request (RFC 9112 section 2.2).
  size_t start = 0;
  while (start + 1 < data.size() && data[start] == '\r' && data[start + 1] == '\n') start += 2;
  const size_t head_end = data.find("\r\n\r\n", start);
  if (head_end == std::string_view::npos) {
    if (data.find("\n\n", start) != std::string_view::npos) return fail(400, "bare LF line endings");
    if (data.size() - start > limits_.max_header_bytes) return fail(431, "request headers too large");
    return Result::kNeedMore;
  }
  if (head_end - start > limits_.max_header_bytes) return fail(431, "request headers too large");

  *out = HttpRequest{};
  const std::string_view head = data.substr(start, head_end - start);
  const size_t line_end = std::min(head.find("\r\n"), head.size());
  const std::string_view line = head.substr(0, line_end);
  // Request line: METHOD SP TARGET SP HTTP/1.x
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return fail(400, "malformed request line");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "malformed method");
  if (target.empty() || (target[0] != '/' && target != "*")) return fail(400, "malformed request target");
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return fail(400, "malformed request target");
  // Other versions get a 400, not a 505: a client error must never look like a server fault.
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return fail(400, "unsupported HTTP version (1.0 and 1.1 only)");
  out->method = std::string(method);
  out->target = std::string(target);
  out->path = std::string(target.substr(0, target.find('?')));
  out->minor_version = version[7] - '0';

  // Header fields.
  size_t pos = line_end;
  while (pos < head.size()) {
    pos += 2;  // skip CRLF
    const size_t eol = std::min(head.find("\r\n", pos), head.size());
    const std::string_view field = head.substr(pos, eol - pos);
    pos = eol;
    if (field.empty()) continue;
    if (field[0] == ' ' || field[0] == '\t') return fail(400, "obsolete header line folding");
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos) return fail(400, "malformed header line");
    const std::string_view name = field.substr(0, colon);
    if (!is_token(name)) return fail(400, "malformed header name");
    const std::string_view value = trim(field.substr(colon + 1));
    if (!valid_value(value) || value.find('\n') != std::string_view::npos || value.find('\r') != std::string_view::npos)
      return fail(400, "malformed header value");
    out->headers.emplace_back(lower(name), std::string(value));
  }

  // Connection semantics.
  const std::string* conn = out->header("connection");
  out->keep_alive = out->minor_version >= 1;
  if (conn && contains_token(*conn, "close")) out->keep_alive = false;
  if (conn && contains_token(*conn, "keep-alive")) out->keep_alive = true;

  // Body framing (RFC 9112 section 6): Transfer-Encoding wins over Content-Length,
  // but both together are a smuggling vector, so refuse that outright.
  const size_t body_start = head_end + 4;
  const std::string* te = nullptr;
  const std::string* cl = nullptr;
  int te_count = 0, cl_count = 0;
  for (const auto& [k, v] : out->headers) {
    if (k == "transfer-encoding") { te = &v; ++te_count; }
    if (k == "content-length") { cl = &v; ++cl_count; }
  }
  if (te) {
    if (cl || te_count > 1) return fail(400, "conflicting message framing headers");
    if (lower(trim(*te)) != "chunked") return fail(400, "unsupported transfer-encoding (only chunked)");
    if (out->minor_version == 0) return fail(400, "chunked encoding in HTTP/1.0");
    return parse_chunked(data, body_start, out, consumed);
  }
  size_t length = 0;
  if (cl) {
    if (cl_count > 1) return fail(400, "duplicate content-length");
    const std::string_view v = *cl;
    if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return fail(400, "malformed content-length");
    std::from_chars(v.data(), v.data() + v.size(), length);
    if (length > limits_.max_body_bytes) return fail(413, "request body too large");
  }
  if (data.size() - body_start < length) return Result::kNeedMore;
  out->body = std::string(data.substr(body_start, length));
  *consumed = body_start + length;
  return Result::kRequest;
}

HttpParser::Result HttpParser::parse_chunked(std::string_view data, size_t pos, HttpRequest* out, size_t* consumed) {
  std::string body;
  while (true) {
    const size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      if (data.size() - pos > 1024) return fail(400, "malformed chunk size line");
      return Result::kNeedMore;
    }
    std::string_view size_line = data.substr(pos, eol - pos);
    size_line = size_line.substr(0, size_line.find(';'));  // chunk extensions are ignored
    size_line = trim(size_line);
    if (size_line.empty() || size_line.size() > 15) return fail(400, "malformed chunk size");
    size_t size = 0;
    const auto [p, ec] = std::from_chars(size_line.data(), size_line.data() + size_line.size(), size, 16);
    if (ec != std::errc() || p != size_line.data() + size_line.size()) return fail(400, "malformed chunk size");
    if (body.size() + size > limits_.max_body_bytes) return fail(413, "request body too large");
    pos = eol + 2;
    if (size == 0) {
      // Trailer section: fields up to an empty line; their contents are ignored,
      // and all of it together is held to the header limit.
      const size_t trailer_start = pos;
      while (true) {
        const size_t t_eol = data.find("\r\n", pos);
        if (t_eol == std::string_view::npos) {
          if (data.size() - trailer_start > limits_.max_header_bytes) return fail(431, "trailers too large");
          return Result::kNeedMore;
        }
        const bool empty = t_eol == pos;
        pos = t_eol + 2;
        if (empty) break;
        if (pos - trailer_start > limits_.max_header_bytes) return fail(431, "trailers too large");
      }
      out->body = std::move(body);
      *consumed = pos;
      return Result::kRequest;
    }
    if (data.size() < pos + size + 2) return Result::kNeedMore;
    body.append(data.substr(pos, size));
    if (data.substr(pos + size, 2) != "\r\n") return fail(400, "chunk not followed by CRLF");
    pos += size + 2;
  }
}

}  // namespace kr
