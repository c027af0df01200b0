// ModelWeights: every weight of a Llama model, validated against the config and
// handed to the backend. q/k/v are fused into one [(Hq + 2 Hkv) * D, H] matrix
// and gate/up into one [2 I, H] matrix at load (one matmul instead of three/two).
//
// Threading: built on the backend's thread; immutable afterwards.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/hf_config.h"
#include "model/safetensors.h"

namespace kr {

struct LayerWeights {
  Tensor input_norm;  // [H]
  Tensor qkv;         // [(Hq + 2 Hkv) * D, H]: rows of q, then k, then v
  Tensor o;           // [H, Hq * D]
  Tensor post_norm;   // [H]
  Tensor gate_up;     // [2 I, H]: rows of gate, then up
  Tensor down;        // [H, I]
};

struct ModelWeights {
  Tensor embed;       // [V, H]
  Tensor final_norm;  // [H]
  Tensor lm_head;     // [V, H]; the same tensor as embed when tied
  std::vector<LayerWeights> layers;

  // Host memory the backend may still point at (see Backend::upload_keeps_host_pointer).
  std::unique_ptr<SafetensorsSet> files;
  std::vector<std::unique_ptr<uint16_t[]>> host_buffers;  // fused or dummy weights (16-bit)
  std::vector<std::unique_ptr<float[]>> host_buffers_f32;  // fused f32 weights
  size_t weight_bytes = 0;                                 // total bytes of all weights
};

// Checks names, shapes and dtypes (missing or extra tensors are errors naming
// them), fuses, and uploads. Takes ownership of `files`.
StatusOr<std::unique_ptr<ModelWeights>> load_model_weights(const ModelConfig& config,
                                                           std::unique_ptr<SafetensorsSet> files,
                                                           Backend& backend);

// Random BF16 weights of the configured shape (vLLM's --load-format dummy):
// uniform in ±0.02, norm weights 1. Deterministic for a seed.
StatusOr<std::unique_ptr<ModelWeights>> make_dummy_weights(const ModelConfig& config, Backend& backend,
                                                                 uint64_t seed);

}  // namespace kr
