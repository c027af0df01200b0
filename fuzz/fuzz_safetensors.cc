// libFuzzer target: the safetensors header parser on arbitrary bytes.
// Any input must give OK or an error Status, never a crash or a read out of bounds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<kr::TensorView> views;
  kr::Status s = kr::SafetensorsFile::parse_header(data, size, "fuzz.safetensors", &views);
  if (s.ok()) {
    // Every view must lie inside the buffer.
    for (const auto& v : views) {
      const auto* p = static_cast<const uint8_t*>(v.data);
      if (v.bytes > 0 && (p < data || p + v.bytes > data + size)) __builtin_trap();
    }
  }
  return 0;
}
