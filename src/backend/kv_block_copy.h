// KvBlockCopy: one whole KV block moved between the paged cache (every layer's
// K and V) and a slot of host memory, for the prefix cache's host tier
// (Backend::copy_kv_blocks, engine/kv_host_tier.h).
#pragma once

#include <cstdint>

namespace kr {

struct KvBlockCopy {
  int32_t device_block = 0;  // block id in the paged cache
  int32_t host_slot = 0;     // slot index in the host buffer
};

}  // namespace kr
