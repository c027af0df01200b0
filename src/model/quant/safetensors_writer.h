// Streaming safetensors writer: the tensors are planned first (name, dtype,
// shape), the header is written, then each tensor's bytes are produced in order
// by a callback, so peak memory is one module rather than the model. Splits into
// shards with model.safetensors.index.json (the Hugging Face layout) when the
// data exceeds `max_shard_bytes`.
//
// Threading: one writer per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/safetensors.h"

namespace kr {

struct PlannedTensor {
  std::string name;
  StorageType type = StorageType::kF32;
  std::vector<int64_t> shape;
  // Fills `out` with exactly numel * size bytes (little-endian, row-major).
  std::function<Status(std::string* out)> produce;

  uint64_t bytes() const;
};

// Writes DIR/model.safetensors, or DIR/model-0000i-of-0000n.safetensors plus the
// index when the total is above max_shard_bytes. `metadata` goes into each
// header's __metadata__. Files are written under a temporary name and renamed.
Status write_safetensors_folder(const std::string& dir, const std::vector<PlannedTensor>& tensors,
                                const std::map<std::string, std::string>& metadata,
                                uint64_t max_shard_bytes = uint64_t{5} << 30);

}  // namespace kr
