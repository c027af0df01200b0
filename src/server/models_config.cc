#include "server/models_config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>

#include "base/flags.h"
#include "server/toml_subset.h"

namespace kr {
namespace {

std::string snake(std::string_view key) {
  std::string s(key);
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The keys of a [[model]] table besides the engine settings.
const std::vector<std::string>& model_keys() {
  static const std::vector<std::string> keys = {"name",           "path",         "memory_share", "dummy_weights",
                                                "arch",           "load_at_start", "idle_ttl_s",  "max_model_len"};
  return keys;
}

const std::vector<std::string>& top_keys() {
  static const std::vector<std::string> keys = {"max_loaded_models", "model_idle_ttl_s"};
  return keys;
}

class ConfigReader {
 public:
  explicit ConfigReader(const std::string& file) : file_(file) {
    const size_t slash = file.rfind('/');
    base_dir_ = slash == std::string::npos ? "" : file.substr(0, slash + 1);
  }

  Status at(const TomlValue& v, const std::string& key, const std::string& what) const {
    return InvalidArgument(file_ + ":" + std::to_string(v.line) + ": " + key + ": " + what);
  }

  Status want(const TomlValue& v, const std::string& key, TomlValue::Kind kind) const {
    if (v.kind == kind || (kind == TomlValue::kFloat && v.kind == TomlValue::kInteger)) return Status::Ok();
    return at(v, key, std::string("expected ") + toml_kind_name(kind) + ", got " + toml_kind_name(v.kind));
  }

  Status unknown(const TomlValue& v, const std::string& key, const std::string& where,
                 const std::vector<std::string>& known) const {
    const std::string near = nearest(key, known);
    return InvalidArgument(file_ + ":" + std::to_string(v.line) + ": unknown key '" + key + "' in " + where +
                           (near.empty() ? "" : " (did you mean '" + near + "'?)"));
  }

  Status read_model(const TomlTable& t, ModelSpec* m) const {
    m->line = t.line;
    std::vector<std::string> known = model_keys();
    for (const EngineVariable& ev : engine_variables()) known.push_back(snake(ev.flag()));
    for (const auto& [raw_key, v] : t.entries) {
      const std::string key = snake(raw_key);
      if (key == "name") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kString));
        if (v.str.empty()) return at(v, key, "must not be empty");
        m->name = v.str;
      } else if (key == "path") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kString));
        if (v.str.empty()) return at(v, key, "must not be empty");
        m->path = v.str[0] == '/' ? v.str : base_dir_ + v.str;
      } else if (key == "memory_share") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kFloat));
        if (!(v.number > 0 && v.number <= 1)) return at(v, key, "must be in (0, 1], got " + v.str);
        m->memory_share = v.number;
      } else if (key == "dummy_weights") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kBool));
        m->dummy_weights = v.boolean;
      } else if (key == "arch") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kString));
        m->arch = v.str;
      } else if (key == "load_at_start") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kBool));
        m->load_at_start = v.boolean;
      } else if (key == "idle_ttl_s") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kFloat));
        if (!(v.number >= 0 && v.number <= 1e9)) return at(v, key, "must be in [0, 1e9], got " + v.str);
        m->idle_ttl_s = v.number;
      } else if (key == "max_model_len") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kInteger));
        if (v.integer < 1 || v.integer > (1 << 24)) return at(v, key, "must be in [1, 16777216], got " + v.str);
        m->max_model_len = static_cast<int32_t>(v.integer);
      } else if (const EngineVariable* ev = engine_variable(key)) {
        // The value as the flag would take it, checked now so the error names the line.
        const std::string text = v.kind == TomlValue::kBool ? (v.boolean ? "on" : "off") : v.str;
        EngineConfig scratch;
        std::string expected;
        if (!ev->parse(text, &scratch, &expected)) return at(v, key, "expected " + expected + ", got " + v.str);
        m->engine_settings[ev->name] = text;
      } else {
        return unknown(v, raw_key, "[[model]]", known);
      }
    }
    if (m->path.empty() && !(m->dummy_weights && !m->arch.empty()))
      return InvalidArgument(file_ + ":" + std::to_string(t.line) +
                             ": [[model]] needs a path (or dummy_weights = true with an arch)");
    if (!m->arch.empty() && !m->dummy_weights)
      return InvalidArgument(file_ + ":" + std::to_string(t.line) + ": arch needs dummy_weights = true");
    return Status::Ok();
  }

  StatusOr<ModelsConfig> read(const TomlDocument& doc) const {
    ModelsConfig c;
    for (const auto& [raw_key, v] : doc.root.entries) {
      const std::string key = snake(raw_key);
      if (key == "max_loaded_models") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kInteger));
        if (v.integer < 0 || v.integer > 4096) return at(v, key, "must be in [0, 4096], got " + v.str);
        c.max_loaded_models = static_cast<int32_t>(v.integer);
      } else if (key == "model_idle_ttl_s") {
        KR_RETURN_IF_ERROR(want(v, key, TomlValue::kFloat));
        if (!(v.number >= 0 && v.number <= 1e9)) return at(v, key, "must be in [0, 1e9], got " + v.str);
        c.model_idle_ttl_s = v.number;
      } else {
        return unknown(v, raw_key, "the top level", top_keys());
      }
    }
    for (const TomlTable& t : doc.tables) {
      if (t.name != "model" || !t.array) {
        const std::string near = nearest(t.name, {"model"});
        return InvalidArgument(file_ + ":" + std::to_string(t.line) + ": unknown table " + (t.array ? "[[" : "[") +
                               t.name + (t.array ? "]]" : "]") + "; models are [[model]] tables" +
                               (near.empty() || t.name == "model" ? "" : " (did you mean [[model]]?)"));
      }
      ModelSpec m;
      KR_RETURN_IF_ERROR(read_model(t, &m));
      c.models.push_back(std::move(m));
    }
    if (c.models.empty()) return InvalidArgument(file_ + ": no [[model]] table");
    return c;
  }

 private:
  static const EngineVariable* engine_variable(const std::string& key) {
    for (const EngineVariable& ev : engine_variables())
      if (snake(ev.flag()) == key) return &ev;
    return nullptr;
  }

  std::string file_;
  std::string base_dir_;
};

// Indices of `values` from largest to smallest.
std::vector<size_t> largest_first(const std::vector<double>& values) {
  std::vector<size_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return values[a] > values[b]; });
  return idx;
}

// How many models can be loaded at once.
size_t loadable_at_once(size_t n, int32_t max_loaded_models) {
  return max_loaded_models > 0 ? std::min(n, static_cast<size_t>(max_loaded_models)) : n;
}

constexpr double kShareSlack = 1e-9;  // 0.1 + 0.2 + 0.7 is not quite 1.0 in binary

}  // namespace

StatusOr<ModelsConfig> parse_models_config(std::string_view text, const std::string& file) {
  KR_ASSIGN_OR_RETURN(TomlDocument doc, parse_toml_subset(text, file));
  return ConfigReader(file).read(doc);
}

Status check_models(const std::vector<ModelSpec>& models, int32_t max_loaded_models) {
  if (models.empty()) return InvalidArgument("no model to serve");
  for (size_t i = 0; i < models.size(); ++i) {
    if (models[i].name.empty()) return InvalidArgument("model " + std::to_string(i + 1) + " has no served name");
    for (size_t j = 0; j < i; ++j) {
      if (models[j].name != models[i].name) continue;
      auto where = [](const ModelSpec& m, size_t k) {
        return m.line > 0 ? "line " + std::to_string(m.line) : "model " + std::to_string(k + 1);
      };
      return InvalidArgument("two models are served as '" + models[i].name + "' (" + where(models[j], j) + " and " +
                             where(models[i], i) +
                             "); served names must be unique (name = \"...\" in the file, or --served-model-name "
                             "after each --model)");
    }
  }
  std::vector<double> shares;
  std::vector<const ModelSpec*> with_share;
  for (const ModelSpec& m : models) {
    if (m.memory_share > 0) {
      shares.push_back(m.memory_share);
      with_share.push_back(&m);
    }
  }
  const size_t k = loadable_at_once(models.size(), max_loaded_models);
  const std::vector<size_t> order = largest_first(shares);
  double sum = 0;
  std::string parts;
  for (size_t i = 0; i < std::min(k, order.size()); ++i) {
    sum += shares[order[i]];
    parts += (parts.empty() ? "" : ", ") + with_share[order[i]]->name + " " + number_text(shares[order[i]]);
  }
  if (sum > 1.0 + kShareSlack) {
    const std::string which = k < models.size()
                                  ? "the " + std::to_string(k) + " largest memory shares (--max-loaded-models " +
                                        std::to_string(k) + " lets that many be loaded at once)"
                                  : "the memory shares";
    return InvalidArgument(which + " add up to " + number_text(sum) + " (" + parts + "), more than 1.0");
  }
  return Status::Ok();
}

StatusOr<std::vector<double>> resolve_memory_shares(const std::vector<ModelSpec>& models,
                                                    const std::vector<uint64_t>& weight_bytes,
                                                    int32_t max_loaded_models) {
  if (weight_bytes.size() != models.size()) return InvalidArgument("resolve_memory_shares: one weight size per model");
  const size_t k = loadable_at_once(models.size(), max_loaded_models);
  std::vector<double> explicit_shares, auto_weights;
  for (size_t i = 0; i < models.size(); ++i) {
    if (models[i].memory_share > 0) {
      explicit_shares.push_back(models[i].memory_share);
    } else {
      auto_weights.push_back(static_cast<double>(std::max<uint64_t>(weight_bytes[i], 1)));
    }
  }
  double explicit_sum = 0;
  const std::vector<size_t> e = largest_first(explicit_shares);
  for (size_t i = 0; i < std::min(k, e.size()); ++i) explicit_sum += explicit_shares[e[i]];
  double auto_sum = 0;
  const std::vector<size_t> a = largest_first(auto_weights);
  for (size_t i = 0; i < std::min(k, a.size()); ++i) auto_sum += auto_weights[a[i]];
  const double pool = 1.0 - explicit_sum;
  std::vector<double> out(models.size(), 0.0);
  size_t next_auto = 0;
  for (size_t i = 0; i < models.size(); ++i) {
    if (models[i].memory_share > 0) {
      out[i] = models[i].memory_share;
      continue;
    }
    if (pool <= 1e-6) {
      return FailedPrecondition("the explicit memory shares add up to " + number_text(explicit_sum) +
                                " and leave nothing for '" + models[i].name + "', which has none; give it a share");
    }
    out[i] = pool * auto_weights[next_auto++] / auto_sum;
  }
  return out;
}

}  // namespace kr
