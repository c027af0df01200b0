// The request vocabulary every layer above base shares: a request's id and the
// reason it finished. A leaf header, so that metrics (-> base) and the server
// can name them without depending on the engine.
//
// Threading: plain values; any thread.
#pragma once

#include <cstdint>

namespace kr {

using RequestId = int64_t;

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
inline constexpr int kNumFinishReasons = 5;

// The OpenAI / Prometheus name: "stop", "length", "cancelled", "error" ("none" for kNone).
const char* finish_reason_name(FinishReason r);

}  // namespace kr
