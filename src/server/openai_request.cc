#include "server/openai_request.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "server/structured_request.h"

namespace kr {
namespace {

using json = nlohmann::json;

// A field lookup that treats JSON null like an absent field (clients send
// nulls for unset optionals).
const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

struct Ctx {
  const json& j;
  ApiError* err;
  bool fail(const std::string& param, const std::string& msg) {
    *err = bad_param(param, msg);
    return false;
  }
  // Number in [lo, hi] (booleans are not numbers).
  bool number(const char* key, double lo, double hi, std::optional<double>* out) {
    const json* v = field(j, key);
    if (!v) return true;
    if (!v->is_number()) return fail(key, std::string("'") + key + "' must be a number");
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi)
      return fail(key, std::string("'") + key + "' must be in [" + fmt(lo) + ", " + fmt(hi) + "], got " + v->dump());
    *out = d;
    return true;
  }
  bool integer(const char* key, int64_t lo, int64_t hi, std::optional<int64_t>* out) {
    const json* v = field(j, key);
    if (!v) return true;
    bool integral = v->is_number_integer();
    if (v->is_number_float()) {
      const double d = v->get<double>();
      integral = std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15;
    }
    if (!v->is_number() || !integral) return fail(key, std::string("'") + key + "' must be an integer");
    int64_t x = 0;
    if (v->is_number_unsigned()) {
      const uint64_t u = v->get<uint64_t>();
      x = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                         : static_cast<int64_t>(u);
    } else if (v->is_number_integer()) {
      x = v->get<int64_t>();
    } else {
      x = static_cast<int64_t>(v->get<double>());
    }
    if (x < lo || x > hi)
      return fail(key, std::string("'") + key + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                           "], got " + v->dump());
    *out = x;
    return true;
  }
  bool boolean(const char* key, bool* out) {
    const json* v = field(j, key);
    if (!v) return true;
    if (!v->is_boolean()) return fail(key, std::string("'") + key + "' must be a boolean");
    *out = v->get<bool>();
    return true;
  }
  bool string(const char* key, std::string* out) {
    const json* v = field(j, key);
    if (!v) return true;
    if (!v->is_string()) return fail(key, std::string("'") + key + "' must be a string");
    *out = v->get<std::string>();
    return true;
  }
  static std::string fmt(double d) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", d);
    return b;
  }
};

bool parse_content(const json& m, size_t i, std::optional<std::string>* out, ApiError* err) {
  const std::string param = "messages[" + std::to_string(i) + "].content";
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) return true;
  if (it->is_string()) {
    *out = it->get<std::string>();
    return true;
  }
  if (!it->is_array()) {
    *err = bad_param(param, "content must be a string or an array of text parts");
    return false;
  }
  std::string text;
  size_t k = 0;
  for (const json& part : *it) {
    const std::string pp = param + "[" + std::to_string(k) + "]";
    if (!part.is_object()) {
      *err = bad_param(pp, "content parts must be objects");
      return false;
    }
    auto type = part.find("type");
    if (type == part.end() || !type->is_string() || *type != "text") {
      *err = bad_param(pp + ".type", "only content parts of type 'text' are supported");
      return false;
    }
    auto t = part.find("text");
    if (t == part.end() || !t->is_string()) {
      *err = bad_param(pp + ".text", "a text part needs a string 'text'");
      return false;
    }
    if (k++ > 0) text += "\n";
    text += t->get<std::string>();
  }
  *out = std::move(text);
  return true;
}

// The typed fields of a message beside role and content: name, tool_calls
// (assistant), tool_call_id (tool), reasoning_content (assistant, as vLLM).
bool parse_message_fields(const json& m, const std::string& p, ChatMessage* msg, ApiError* err) {
  auto str = [&](const char* key, std::string* out) {
    auto it = m.find(key);
    if (it == m.end() || it->is_null()) return true;
    if (!it->is_string()) {
      *err = bad_param(p + "." + key, std::string("'") + key + "' must be a string");
      return false;
    }
    *out = it->get<std::string>();
    return true;
  };
  if (!str("name", &msg->name) || !str("tool_call_id", &msg->tool_call_id)) return false;
  std::string reasoning;
  if (!str("reasoning_content", &reasoning)) return false;
  if (!reasoning.empty()) msg->reasoning_content = std::move(reasoning);
  auto tc = m.find("tool_calls");
  if (tc == m.end() || tc->is_null()) return true;
  if (!tc->is_array()) {
    *err = bad_param(p + ".tool_calls", "'tool_calls' must be an array");
    return false;
  }
  for (size_t k = 0; k < tc->size(); ++k) {
    const json& c = (*tc)[k];
    const std::string cp = p + ".tool_calls[" + std::to_string(k) + "]";
    const json* f = c.is_object() ? field(c, "function") : nullptr;
    const json* name = f != nullptr && f->is_object() ? field(*f, "name") : nullptr;
    if (name == nullptr || !name->is_string()) {
      *err = bad_param(cp, "a tool call must be {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}");
      return false;
    }
    ChatToolCall call;
    call.name = name->get<std::string>();
    if (const json* id = field(c, "id")) {
      if (!id->is_string()) {
        *err = bad_param(cp + ".id", "'id' must be a string");
        return false;
      }
      call.id = id->get<std::string>();
    }
    if (const json* type = field(c, "type"); type != nullptr && *type != "function") {
      *err = bad_param(cp + ".type", "'type' must be \"function\"");
      return false;
    }
    // OpenAI sends the arguments as JSON text; an object is taken as its text.
    if (const json* args = field(*f, "arguments")) {
      if (args->is_string()) {
        call.arguments_json = args->get<std::string>();
      } else if (args->is_object()) {
        call.arguments_json = args->dump();
      } else {
        *err = bad_param(cp + ".function.arguments", "'arguments' must be a JSON object's text");
        return false;
      }
    }
    msg->tool_calls.push_back(std::move(call));
  }
  return true;
}

bool parse_messages(const json& j, OpenAIRequest* out, ApiError* err) {
  auto it = j.find("messages");
  if (it == j.end() || it->is_null()) {
    *err = bad_param("messages", "'messages' is required");
    return false;
  }
  if (!it->is_array() || it->empty()) {
    *err = bad_param("messages", "'messages' must be a non-empty array");
    return false;
  }
  size_t i = 0;
  for (const json& m : *it) {
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) {
      *err = bad_param(p, "each message must be an object");
      return false;
    }
    ChatMessage msg;
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      *err = bad_param(p + ".role", "each message needs a string 'role'");
      return false;
    }
    msg.role = role->get<std::string>();
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool" &&
        msg.role != "developer") {
      *err = bad_param(p + ".role", "unknown role '" + msg.role + "' (system, user, assistant, tool, developer)");
      return false;
    }
    if (!parse_content(m, i, &msg.content, err)) return false;
    if (!msg.content && msg.role != "assistant") {
      *err = bad_param(p + ".content", "a " + msg.role + " message needs 'content'");
      return false;
    }
    if (!parse_message_fields(m, p, &msg, err)) return false;
    out->messages.push_back(std::move(msg));
    ++i;
  }
  if (auto tools = field(j, "tools")) {
    if (!tools->is_array()) {
      *err = bad_param("tools", "'tools' must be an array");
      err->code = "invalid_tools";
      return false;
    }
    out->tools_json = tools->dump();
  }
  return true;
}

bool parse_prompt(const json& j, const RequestLimits& limits, OpenAIRequest* out, ApiError* err) {
  const json* p = field(j, "prompt");
  if (!p) {
    *err = bad_param("prompt", "'prompt' is required");
    return false;
  }
  // One prompt: a string, a list of ids, or a one-element list of either.
  const json* one = p;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) one = &(*p)[0];
  if (one->is_string()) {
    out->prompt_text = one->get<std::string>();
    return true;
  }
  if (!one->is_array()) {
    *err = bad_param("prompt", "'prompt' must be a string or an array of token ids");
    return false;
  }
  if (one->empty()) {
    *err = bad_param("prompt", "'prompt' must not be empty");
    return false;
  }
  std::vector<int32_t> ids;
  ids.reserve(one->size());
  for (const json& v : *one) {
    if (v.is_string() || v.is_array()) {
      *err = bad_param("prompt", "only one prompt per request is supported, and token ids must be integers");
      return false;
    }
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= limits.vocab_size) {
      *err = bad_param("prompt", "token ids must be integers in [0, " + std::to_string(limits.vocab_size) + ")");
      return false;
    }
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  out->prompt_ids = std::move(ids);
  return true;
}

bool parse_stop(const json& j, const RequestLimits& limits, OpenAIRequest* out, ApiError* err) {
  const json* s = field(j, "stop");
  if (!s) return true;
  if (s->is_string()) {
    if (!s->get<std::string>().empty()) out->stop.push_back(s->get<std::string>());
  } else if (s->is_array()) {
    for (const json& v : *s) {
      if (!v.is_string()) {
        *err = bad_param("stop", "'stop' must be a string or an array of strings");
        return false;
      }
      if (!v.get<std::string>().empty()) out->stop.push_back(v.get<std::string>());
    }
  } else {
    *err = bad_param("stop", "'stop' must be a string or an array of strings");
    return false;
  }
  if (static_cast<int32_t>(out->stop.size()) > limits.max_stop_strings) {
    *err = bad_param("stop", "at most " + std::to_string(limits.max_stop_strings) + " stop strings");
    return false;
  }
  for (const auto& x : out->stop)
    if (x.size() > limits.max_stop_bytes) {
      *err = bad_param("stop", "stop strings are limited to " + std::to_string(limits.max_stop_bytes) + " bytes");
      return false;
    }
  if (const json* ids = field(j, "stop_token_ids")) {
    if (!ids->is_array()) {
      *err = bad_param("stop_token_ids", "'stop_token_ids' must be an array of token ids");
      return false;
    }
    for (const json& v : *ids) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= limits.vocab_size) {
        *err = bad_param("stop_token_ids", "token ids must be integers in [0, " + std::to_string(limits.vocab_size) + ")");
        return false;
      }
      out->stop_token_ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
  }
  return true;
}

bool parse_fields(const json& j, bool chat, const RequestLimits& limits, OpenAIRequest* out, ApiError* err) {
  Ctx c{j, err};
  out->chat = chat;
  if (!c.string("model", &out->model)) return false;
  if (chat ? !parse_messages(j, out, err) : !parse_prompt(j, limits, out, err)) return false;
  if (chat && !c.boolean("add_generation_prompt", &out->add_generation_prompt)) return false;
  if (!chat && !c.boolean("echo", &out->echo)) return false;

  std::optional<int64_t> max_tokens, max_completion_tokens, top_k, n, seed, min_tokens;
  if (!c.integer("max_tokens", 1, std::numeric_limits<int32_t>::max(), &max_tokens)) return false;
  if (chat && !c.integer("max_completion_tokens", 1, std::numeric_limits<int32_t>::max(), &max_completion_tokens))
    return false;
  if (max_completion_tokens) out->max_tokens = static_cast<int32_t>(*max_completion_tokens);
  else if (max_tokens) out->max_tokens = static_cast<int32_t>(*max_tokens);

  std::optional<double> temperature, top_p, min_p, presence, frequency, repetition;
  if (!c.number("temperature", 0.0, 2.0, &temperature)) return false;
  if (!c.number("top_p", 0.0, 1.0, &top_p)) return false;
  if (top_p && *top_p <= 0.0) return c.fail("top_p", "'top_p' must be in (0, 1]");
  if (!c.integer("top_k", -1, std::numeric_limits<int32_t>::max(), &top_k)) return false;
  if (!c.number("min_p", 0.0, 1.0, &min_p)) return false;
  if (!c.number("presence_penalty", -2.0, 2.0, &presence)) return false;
  if (!c.number("frequency_penalty", -2.0, 2.0, &frequency)) return false;
  if (!c.number("repetition_penalty", 0.0, 2.0, &repetition)) return false;
  if (repetition && *repetition <= 0.0) return c.fail("repetition_penalty", "'repetition_penalty' must be in (0, 2]");
  if (!c.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &seed)) return false;
  if (!c.integer("n", 1, limits.max_n, &n)) return false;
  if (!c.integer("min_tokens", 0, std::numeric_limits<int32_t>::max(), &min_tokens)) return false;

  SamplingParams& sp = out->sampling;
  if (temperature) sp.temperature = static_cast<float>(*temperature);
  if (top_p) sp.top_p = static_cast<float>(*top_p);
  if (top_k) sp.top_k = static_cast<int32_t>(*top_k);
  if (min_p) sp.min_p = static_cast<float>(*min_p);
  if (presence) sp.presence_penalty = static_cast<float>(*presence);
  if (frequency) sp.frequency_penalty = static_cast<float>(*frequency);
  if (repetition) sp.repetition_penalty = static_cast<float>(*repetition);
  if (seed) sp.seed = static_cast<uint64_t>(*seed);
  if (n) out->n = static_cast<int32_t>(*n);
  if (min_tokens) out->min_tokens = static_cast<int32_t>(*min_tokens);
  if (out->max_tokens && out->min_tokens > *out->max_tokens)
    return c.fail("min_tokens", "'min_tokens' must not exceed max_tokens");

  // Log probabilities: chat has logprobs (bool) + top_logprobs; completions has logprobs (int).
  if (chat) {
    bool lp = false;
    std::optional<int64_t> top;
    if (!c.boolean("logprobs", &lp)) return false;
    if (!c.integer("top_logprobs", 0, limits.max_top_logprobs, &top)) return false;
    if (top && !lp) return c.fail("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    sp.logprobs = lp ? static_cast<int32_t>(top.value_or(0)) : -1;
  } else {
    std::optional<int64_t> lp;
    if (!c.integer("logprobs", 0, limits.max_top_logprobs, &lp)) return false;
    sp.logprobs = lp ? static_cast<int32_t>(*lp) : -1;
  }

  if (!parse_stop(j, limits, out, err)) return false;
  if (!c.boolean("stream", &out->stream)) return false;
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) return c.fail("stream_options", "'stream_options' must be an object");
    Ctx sc{*so, err};
    if (!sc.boolean("include_usage", &out->include_usage)) {
      err->param = "stream_options.include_usage";
      return false;
    }
  }
  if (!c.boolean("ignore_eos", &out->ignore_eos)) return false;
  if (!c.boolean("return_tokens_as_token_ids", &out->return_tokens_as_token_ids)) return false;
  if (!c.boolean("skip_special_tokens", &out->skip_special_tokens)) return false;
  if (!c.string("user", &out->user)) return false;
  if (!c.string("cache_salt", &out->cache_salt)) return false;
  if (out->cache_salt.size() > kMaxCacheSaltBytes)
    return c.fail("cache_salt", "'cache_salt' must be at most " + std::to_string(kMaxCacheSaltBytes) + " bytes");
  if (!parse_structured_fields(j, chat, out, err)) return false;
  if (const json* p = field(j, "priority")) {
    if (p->is_string()) {
      if (!parse_priority_name(p->get<std::string>(), &out->priority))
        return c.fail("priority", "'priority' must be \"urgent\", \"default\", \"background\" or an integer");
    } else {
      std::optional<int64_t> pr;
      if (!c.integer("priority", -1000000, 1000000, &pr)) return false;
      out->priority = static_cast<int32_t>(*pr);
    }
  }
  return true;
}

}  // namespace

bool parse_priority_name(std::string_view s, int32_t* out) {
  if (s == "urgent" || s == "high") *out = kPriorityUrgent;
  else if (s == "default" || s == "normal") *out = kPriorityDefault;
  else if (s == "background" || s == "low") *out = kPriorityBackground;
  else return false;
  return true;
}

int json_nesting_depth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
      continue;
    }
    if (ch == '"') in_string = true;
    else if (ch == '{' || ch == '[') max_depth = std::max(max_depth, ++depth);
    else if (ch == '}' || ch == ']') --depth;
  }
  return max_depth;
}

bool parse_openai_request(std::string_view body, bool chat, const RequestLimits& limits, OpenAIRequest* out,
                          ApiError* err) {
  if (json_nesting_depth(body) > limits.max_json_depth) {
    *err = bad_param("", "JSON nested deeper than " + std::to_string(limits.max_json_depth) + " levels");
    return false;
  }
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    *err = bad_param("", std::string("malformed JSON: ") + e.what());
    return false;
  }
  if (!j.is_object()) {
    *err = bad_param("", "the request body must be a JSON object");
    return false;
  }
  *out = OpenAIRequest{};
  try {
    return parse_fields(j, chat, limits, out, err);
  } catch (const json::exception& e) {  // a type we did not check: still the client's input
    *err = bad_param("", std::string("invalid request: ") + e.what());
    return false;
  }
}

}  // namespace kr
