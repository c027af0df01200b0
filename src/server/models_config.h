// The models one server serves: from repeated `--model DIR` flags or from a
// models config file (--models-config FILE, TOML; docs/configuration.md):
//
//   max_loaded_models = 2        # optional; flags win over the file
//   model_idle_ttl_s = 600
//
//   [[model]]
//   name = "llama-8b"            # the served name ("model" in requests)
//   path = "/models/Llama-3.1-8B-Instruct"
//   memory_share = 0.6           # of the device memory; absent: split by weight size
//   max_num_seqs = 64            # any engine setting (the serve flags' names)
//
// Unknown keys and tables, wrong types and out-of-range values are errors that
// name the file, the line and the key (with a did-you-mean).
//
// Threading: pure functions; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/engine_config.h"

namespace kr {

struct ModelSpec {
  std::string name;            // served name; "" until defaulted to the folder's name
  std::string path;            // model folder; relative paths in a file are relative to the file
  double memory_share = 0;     // (0, 1]; 0: automatic (split by weight size)
  bool dummy_weights = false;  // random weights of the configured shape (benchmarks)
  std::string arch;            // built-in shape preset (with dummy_weights)
  bool load_at_start = true;   // false: loaded by its first request
  double idle_ttl_s = -1;      // < 0: the server's --model-idle-ttl-s; 0: never unloaded when idle
  int32_t max_model_len = 0;   // 0: the model's, capped by its KV cache
  // Engine settings of this model on top of the server's (KR_ names -> text, as the flags take them).
  std::map<std::string, std::string> engine_settings;
  EngineConfig engine;         // resolved by the app (environment, flags, then engine_settings)
  int line = 0;                // of its [[model]] header in a file; 0 from flags
};

struct ModelsConfig {
  std::vector<ModelSpec> models;
  std::optional<int32_t> max_loaded_models;
  std::optional<double> model_idle_ttl_s;
};

// Parses a models config file's text. `file` names it in errors; relative
// paths are resolved against its folder. Checks each value; check_models()
// then checks the whole.
StatusOr<ModelsConfig> parse_models_config(std::string_view text, const std::string& file);

// What the start refuses: no model, an empty or duplicate served name, or
// explicit memory shares adding up to more than 1.0 over the models that can
// be loaded at once (all of them, or the `max_loaded_models` largest when that
// is set, > 0 and smaller than the number of models).
Status check_models(const std::vector<ModelSpec>& models, int32_t max_loaded_models);

// Every model's share of the device memory. Explicit shares are kept; the
// other models split what the explicit ones leave (1 - the sum of the largest
// explicit shares that can be loaded at once) in proportion to their weight
// bytes, so that any set of models that can be loaded together fits.
// FailedPrecondition when the explicit shares leave nothing for the others.
StatusOr<std::vector<double>> resolve_memory_shares(const std::vector<ModelSpec>& models,
                                                    const std::vector<uint64_t>& weight_bytes,
                                                    int32_t max_loaded_models);

}  // namespace kr
