// The host tier's block copies on the GPU (Backend::copy_kv_blocks) for
// kr-backend-ops: content, layout, ordering and bandwidth. See kv_copy_check.cc.
#pragma once

#include "backend/backend.h"

namespace kr {

// Prints one line per check; returns the number of failures.
int check_kv_block_copies(Backend& gpu);

}  // namespace kr
