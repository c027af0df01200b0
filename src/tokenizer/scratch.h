// Thread-local scratch vectors of the tokenizer: reused across calls so the hot
// path does not allocate, but released after a call on an unusually large text so
// that one hostile request cannot pin megabytes per HTTP worker thread forever.
#pragma once

#include <cstddef>
#include <vector>

namespace kr {

// Bytes a scratch vector may keep between calls.
inline constexpr size_t kScratchKeepBytes = 256 * 1024;

template <typename T>
void release_if_large(std::vector<T>& v) {
  if (v.capacity() * sizeof(T) > kScratchKeepBytes) std::vector<T>().swap(v);
}

}  // namespace kr
