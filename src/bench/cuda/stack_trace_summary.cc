#include "bench/cuda/stack_trace_summary.h"

#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_decode_stack.h"

namespace kr {

const char* stack_segment_name(int segment) {
  static const char* const kNames[kStackSegments] = {
      "qkv_norm", "qkv", "qkv_barrier", "attention", "attention_barrier", "o_stage", "o", "o_barrier",
      "mlp_norm", "gate_up", "gate_up_barrier", "glu", "down", "down_barrier"};
  return segment >= 0 && segment < kStackSegments ? kNames[segment] : "?";
}

const char* stack_unit_matrix_name(int matrix) {
  static const char* const kNames[4] = {"qkv", "o", "gate_up", "down"};
  return matrix >= 0 && matrix < 4 ? kNames[matrix] : "?";
}

const char* stack_unit_step_name(int step) {
  static const char* const kNames[4] = {"setup", "wait", "units", "tail"};
  return step >= 0 && step < 4 ? kNames[step] : "?";
}

const char* stack_attention_step_name(int step) {
  static const char* const kNames[4] = {"q", "keys", "ticket", "merge"};
  return step >= 0 && step < 4 ? kNames[step] : "?";
}

bool summarize_stack_trace(const std::vector<uint64_t>& ns, int layers, int ctas, StackTraceSummary* out) {
  using namespace cuda;
  constexpr int P = kStackTracePoints;
  if (layers < 2 || ctas < 1 || ns.size() != static_cast<size_t>(layers) * ctas * P) return false;
  // The last (max) or first (min) CTA's mark of point p in layer l.
  auto last = [&](int l, int p) {
    uint64_t v = 0;
    for (int c = 0; c < ctas; ++c) v = std::max(v, ns[(static_cast<size_t>(l) * ctas + c) * P + p]);
    return v;
  };
  auto first = [&](int l, int p) {
    uint64_t v = UINT64_MAX;
    for (int c = 0; c < ctas; ++c) v = std::min(v, ns[(static_cast<size_t>(l) * ctas + c) * P + p]);
    return v;
  };
  auto arrive = [](int k) { return kTraceArrive0 + 2 * k; };
  auto exit = [](int k) { return kTraceArrive0 + 2 * k + 1; };
  StackTraceSummary s;
  // The flags form (DecodeStackArgs::flags) has no barrier 1: its layers pass fewer marks.
  s.flags = last(1, arrive(1)) == 0;
  for (int l = 1; l < layers; ++l) {
    const bool final_layer = l == layers - 1;
    const int nl = final_layer ? l : l + 1;  // the row of the barrier that ends the layer
    const int end_arrive = final_layer ? kTraceFinalArrive : arrive(0);
    const int end_exit = final_layer ? kTraceFinalExit : exit(0);
    // The marks in order, each ending the segment beside it (the first: the layer's start).
    struct Mark {
      uint64_t ns;
      int segment;  // the segment the mark ends
    };
    std::vector<Mark> marks;
    if (s.flags) {
      marks = {{last(l, exit(0)), -1},
               {last(l, kTraceQkvStaged), kSegQkvNorm},
               {last(l, kTraceAttentionDone), kSegAttention},  // qkv, then the attention and its merge
               {last(l, arrive(3)), kSegO},
               {last(l, exit(3)), kSegOBarrier},
               {last(l, kTraceGateUpStaged), kSegMlpNorm},
               {last(nl, end_arrive), kSegDown},  // gate_up, then down_proj
               {last(nl, end_exit), kSegDownBarrier}};
    } else {
      marks = {{last(l, exit(0)), -1},
               {last(l, kTraceQkvStaged), kSegQkvNorm},
               {last(l, arrive(1)), kSegQkv},
               {last(l, exit(1)), kSegQkvBarrier},
               {last(l, arrive(2)), kSegAttention},
               {last(l, exit(2)), kSegAttentionBarrier},
               {last(l, kTraceOStaged), kSegOStage},
               {last(l, arrive(3)), kSegO},
               {last(l, exit(3)), kSegOBarrier},
               {last(l, kTraceGateUpStaged), kSegMlpNorm},
               {last(l, arrive(4)), kSegGateUp},
               {last(l, exit(4)), kSegGateUpBarrier},
               {last(l, kTraceDownStaged), kSegGlu},
               {last(nl, end_arrive), kSegDown},
               {last(nl, end_exit), kSegDownBarrier}};
    }
    for (size_t k = 1; k < marks.size(); ++k) {
      if (marks[k - 1].ns == 0 || marks[k].ns < marks[k - 1].ns) return false;
      s.us[marks[k].segment] += static_cast<double>(marks[k].ns - marks[k - 1].ns) / 1e3;
    }
    // The attention's last CTA and its item's marks (a CTA without an item this launch keeps
    // an earlier launch's marks: out of order, or outside its span, the layer is left out).
    int lc = 0;
    for (int c = 1; c < ctas; ++c)
      if (ns[(static_cast<size_t>(l) * ctas + c) * P + kTraceAttentionDone] >
          ns[(static_cast<size_t>(l) * ctas + lc) * P + kTraceAttentionDone])
        lc = c;
    const uint64_t* row = &ns[(static_cast<size_t>(l) * ctas + lc) * P];
    const uint64_t begin = s.flags ? row[kTraceQkvStaged] : row[exit(1)];
    const bool ticketed = row[kTraceAttnTicket] >= row[kTraceAttnKeys] && row[kTraceAttnTicket] <= row[kTraceAttentionDone];
    const uint64_t steps[5] = {begin, row[kTraceAttnQ], row[kTraceAttnKeys],
                               ticketed ? row[kTraceAttnTicket] : row[kTraceAttnKeys], row[kTraceAttentionDone]};
    bool in_order = begin != 0;
    for (int k = 1; k < 5; ++k) in_order = in_order && steps[k] >= steps[k - 1];
    if (in_order) {
      for (int k = 0; k < 4; ++k) s.attention_us[k] += static_cast<double>(steps[k + 1] - steps[k]) / 1e3;
      ++s.attention_layers;
    }
    // Each CTA's warp 1 in each matrix (marks left from an earlier launch, or missing, are out
    // of order: left out).
    const int staged[4] = {kTraceQkvStaged, kTraceOStaged, kTraceGateUpStaged, kTraceDownStaged};
    for (int c = 0; c < ctas; ++c) {
      const uint64_t* r = &ns[(static_cast<size_t>(l) * ctas + c) * P];
      const uint64_t arrivals[4] = {r[arrive(1)], r[arrive(3)], r[arrive(4)],
                                    ns[(static_cast<size_t>(nl) * ctas + c) * P + end_arrive]};
      for (int m = 0; m < 4; ++m) {
        const uint64_t t[5] = {r[staged[m]], r[kTraceQkvSetup + m], r[kTraceQkvUnit + m], r[kTraceQkvLast + m],
                               arrivals[m]};
        bool ok = t[0] != 0;
        for (int k = 1; k < 5; ++k) ok = ok && t[k] >= t[k - 1];
        if (!ok) continue;
        for (int k = 0; k < 4; ++k) s.unit_steps_us[m][k] += static_cast<double>(t[k + 1] - t[k]) / 1e3;
        ++s.unit_samples[m];
      }
    }
  }
  for (int m = 0; m < 4; ++m)
    if (s.unit_samples[m] > 0)
      for (double& v : s.unit_steps_us[m]) v /= s.unit_samples[m];
  if (s.attention_layers > 0)
    for (double& v : s.attention_us) v /= s.attention_layers;
  s.layers = layers - 1;
  for (double& v : s.us) v /= s.layers;
  for (double v : s.us) s.layer_us += v;
  const uint64_t start = first(0, kTraceLayerStart), end = last(layers - 1, kTraceFinalExit);
  if (start == 0 || end < start) return false;
  s.launch_us = static_cast<double>(end - start) / 1e3;
  *out = s;
  return true;
}

}  // namespace kr
