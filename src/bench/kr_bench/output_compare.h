// Compares the temperature-0 answers of two runs of the same seeded multi-turn
// sessions (kr-bench multiturn: cache-off as the reference, cache-on or
// cache-host as the other), as issue 14 asks: with caching on, outputs equal
// those with caching off token for token, except where the reference's margin
// (logprob of its top token minus that of the second) is at most a threshold,
// since reusing KV computed in another batch composition may move bf16
// roundings on CUDA. Per session, turns in order and tokens in order, up to the
// first token that differs: after it the conversations differ, so the rest of
// that session is not compared. A divergence whose reference margin is unknown
// (the server returned fewer than two top logprobs), or where one answer is
// shorter, counts as above the threshold: nothing excuses it.
// Threading: pure functions, callable from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kr::bench {

struct TurnAnswer {
  std::vector<int32_t> ids;
  std::vector<double> margins;  // per id: logprob(top 1) - logprob(top 2); NaN when unknown
};

using SessionAnswers = std::map<std::pair<int, int>, TurnAnswer>;  // (session, turn) -> answer

// The comparison as JSON: sessions_compared, sessions_identical, sessions_incomplete (a turn missing in
// either run before any divergence), tokens_compared (up to and including each first difference),
// tokens_at_or_below_margin and tokens_margin_unknown (among the reference's compared tokens: how many a
// divergence would be excused at, and how many lack a margin),
// divergences (one row per diverging session: session, turn, token_index, both ids and margins),
// divergences_above_margin, divergences_at_or_below_margin, margin_threshold, pass (no divergence above).
nlohmann::json compare_outputs(const SessionAnswers& reference, const SessionAnswers& other, int sessions, int turns,
                               double margin_threshold);

}  // namespace kr::bench
