#include "backend/device_sampling.h"

#include <algorithm>

namespace kr {

std::pair<int32_t, int32_t> append_penalty_entries(const int32_t* prompt, size_t prompt_len, const int32_t* output,
                                                   size_t output_len, bool with_prompt, int32_t vocab,
                                                   std::vector<int32_t>* ids, std::vector<int32_t>* counts,
                                                   std::vector<int32_t>* scratch) {
  const auto begin = static_cast<int32_t>(ids->size());
  // Output ids sorted: runs give the counts. Prompt ids are marked with a count
  // of 0 by sorting them in as (id, from_prompt) after the output ids of that id.
  scratch->clear();
  for (size_t i = 0; i < output_len; ++i)
    if (output[i] >= 0 && output[i] < vocab) scratch->push_back(output[i] * 2);
  if (with_prompt)
    for (size_t i = 0; i < prompt_len; ++i)
      if (prompt[i] >= 0 && prompt[i] < vocab) scratch->push_back(prompt[i] * 2 + 1);
  // id * 2 fits: vocab ids are far below 2^30.
  std::sort(scratch->begin(), scratch->end());
  for (size_t i = 0; i < scratch->size();) {
    const int32_t id = (*scratch)[i] / 2;
    int32_t count = 0;
    size_t j = i;
    for (; j < scratch->size() && (*scratch)[j] / 2 == id; ++j) count += ((*scratch)[j] & 1) == 0;
    ids->push_back(id);
    counts->push_back(count);
    i = j;
  }
  return {begin, static_cast<int32_t>(ids->size())};
}

}  // namespace kr
