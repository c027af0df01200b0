// SAX filter over nlohmann's DOM builder: events inside model.vocab and
// model.merges are consumed here; all others are forwarded. This avoids
// building ~450k small JSON values (the bulk of the load time).
#include "tokenizer/tokenizer_json.h"

namespace kr::tokenizer_json {
namespace {

class Filter {
 public:
  using json = nlohmann::json;
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  explicit Filter(Parsed* out) : out_(out), dom_(out->root, /*allow_exceptions=*/false) {}

  bool null() { return mode_ == Mode::kNone ? dom_.null() : bad("null"); }
  bool boolean(bool v) { return mode_ == Mode::kNone ? dom_.boolean(v) : bad("boolean"); }
  bool number_integer(number_integer_t v) { return mode_ == Mode::kNone ? dom_.number_integer(v) : vocab_id(v); }
  bool number_unsigned(number_unsigned_t v) {
    return mode_ == Mode::kNone ? dom_.number_unsigned(v) : vocab_id(static_cast<int64_t>(v));
  }
  bool number_float(number_float_t v, const string_t& s) {
    return mode_ == Mode::kNone ? dom_.number_float(v, s) : bad("number");
  }
  bool string(string_t& s) {
    if (mode_ == Mode::kNone) return dom_.string(s);
    if (mode_ != Mode::kMerges) return bad("string");
    if (depth_ == mode_depth_ + 1) {  // inside a ["a", "b"] pair
      pair_.push_back(std::move(s));
      return pair_.size() <= 2 || bad("merge pair of more than two");
    }
    const size_t sp = s.find(' ', 1);
    if (sp == std::string::npos) return bad("merge without a space");
    out_->merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    return true;
  }
  bool binary(binary_t& b) { return mode_ == Mode::kNone ? dom_.binary(b) : bad("binary"); }
  bool start_object(std::size_t n) {
    if (mode_ != Mode::kNone) return bad("object");
    ++depth_;
    keys_.resize(static_cast<size_t>(depth_));
    if (depth_ == 3 && keys_[0] == "model" && keys_[1] == "vocab") {
      mode_ = Mode::kVocab;
      mode_depth_ = depth_;
      out_->has_vocab = true;
      return true;
    }
    return dom_.start_object(n);
  }
  bool key(string_t& k) {
    if (mode_ == Mode::kVocab) {
      pending_key_ = std::move(k);
      return true;
    }
    if (mode_ != Mode::kNone) return bad("key");
    keys_[static_cast<size_t>(depth_ - 1)] = k;
    return dom_.key(k);
  }
  bool end_object() {
    --depth_;
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kNone;
      return dom_.null();  // placeholder for model.vocab
    }
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (mode_ == Mode::kMerges) {
      if (depth_ != mode_depth_) return bad("nested array");
      ++depth_;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::kNone) return bad("array");
    ++depth_;
    keys_.resize(static_cast<size_t>(depth_));
    if (depth_ == 3 && keys_[0] == "model" && keys_[1] == "merges") {
      mode_ = Mode::kMerges;
      mode_depth_ = depth_;
      out_->has_merges = true;
      return true;
    }
    return dom_.start_array(n);
  }
  bool end_array() {
    --depth_;
    if (mode_ == Mode::kMerges) {
      if (depth_ == mode_depth_) {  // end of a pair
        if (pair_.size() != 2) return bad("merge pair of fewer than two");
        out_->merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
        return true;
      }
      mode_ = Mode::kNone;
      return dom_.null();  // placeholder for model.merges
    }
    return dom_.end_array();
  }
  template <class Exception>
  bool parse_error(std::size_t pos, const std::string& token, const Exception& ex) {
    error_ = ex.what();
    return dom_.parse_error(pos, token, ex);
  }

  const std::string& error() const { return error_; }

 private:
  enum class Mode { kNone, kVocab, kMerges };
  bool vocab_id(int64_t v) {
    if (mode_ != Mode::kVocab) return bad("number");
    out_->vocab.emplace_back(std::move(pending_key_), v);
    return true;
  }
  bool bad(const char* what) {
    if (error_.empty()) error_ = std::string("unexpected ") + what + " in model.vocab or model.merges";
    return false;
  }

  Parsed* out_;
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  Mode mode_ = Mode::kNone;
  int depth_ = 0;       // open containers
  int mode_depth_ = 0;  // depth of the vocab object / merges array
  std::vector<std::string> keys_;  // keys_[d]: last key of the object at depth d + 1
  std::string pending_key_;
  std::vector<std::string> pair_;
  std::string error_;
};

}  // namespace

StatusOr<Parsed> parse(std::string_view json_text, const std::string& name) {
  Parsed out;
  out.vocab.reserve(160000);
  out.merges.reserve(300000);
  Filter filter(&out);
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(json_text, &filter);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(name + ": " + e.what());
  }
  if (!ok) return InvalidArgument(name + ": " + (filter.error().empty() ? "invalid JSON" : filter.error()));
  return out;
}

}  // namespace kr::tokenizer_json
