// summarize_stack_trace on made-up traces whose segments are known.
#include "bench/cuda/stack_trace_summary.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "backend/cuda/cuda_decode_stack.h"

namespace kr {
namespace {

using namespace cuda;

// 3 layers, 2 CTAs. Every CTA passes each mark of a layer in order, CTA 1 always
// 100 ns after CTA 0, except at barrier exits, which both leave together; segment k
// of a layer lasts (k + 1) us for CTA 0 (the layer's marks in the order of StackSegment).
struct Trace {
  static constexpr int kLayers = 3, kCtas = 2;
  std::vector<uint64_t> ns = std::vector<uint64_t>(static_cast<size_t>(kLayers) * kCtas * kStackTracePoints, 0);
  uint64_t& at(int l, int c, int p) { return ns[(static_cast<size_t>(l) * kCtas + c) * kStackTracePoints + p]; }

  Trace() {
    // The marks a layer passes, in order: (point, is a barrier exit).
    const int order[] = {kTraceArrive0 + 1, kTraceQkvStaged,    kTraceArrive0 + 2, kTraceArrive0 + 3,
                         kTraceArrive0 + 4, kTraceArrive0 + 5,  kTraceOStaged,     kTraceArrive0 + 6,
                         kTraceArrive0 + 7, kTraceGateUpStaged, kTraceArrive0 + 8, kTraceArrive0 + 9,
                         kTraceDownStaged};
    uint64_t t = 1000000;
    for (int l = 0; l < kLayers; ++l) {
      for (int c = 0; c < kCtas; ++c) at(l, c, kTraceLayerStart) = t + 100 * c;
      for (int i = 0; i < 13; ++i) {
        const int p = order[i];
        const bool exit = p >= kTraceArrive0 && p < kTraceArrive0 + 10 && (p - kTraceArrive0) % 2 == 1;
        if (i > 0) t += 1000 * i;  // the segment before mark i lasts i us (CTA 0)
        for (int c = 0; c < kCtas; ++c) at(l, c, p) = exit ? t + 100 : t + 100 * c;
      }
      // The barrier that ends the layer: arrival 13 us after the GLU, exit 14 us after that.
      const bool last_layer = l == kLayers - 1;
      const int arrive = last_layer ? kTraceFinalArrive : kTraceArrive0;
      const int row = last_layer ? l : l + 1;
      t += 13000;
      for (int c = 0; c < kCtas; ++c) at(row, c, arrive) = t + 100 * c;
      t += 14000;
      for (int c = 0; c < kCtas; ++c) at(row, c, arrive + 1) = t + 100;
    }
    for (int c = 0; c < kCtas; ++c) at(0, c, kTraceArrive0) = at(0, c, kTraceArrive0 + 1) = 0;  // layer 0: none
  }
};

TEST(StackTraceSummary, SegmentsOfTheCriticalPath) {
  Trace tr;
  StackTraceSummary s;
  ASSERT_TRUE(summarize_stack_trace(tr.ns, Trace::kLayers, Trace::kCtas, &s));
  EXPECT_EQ(s.layers, 2);
  // Every mark's last CTA is 100 ns past CTA 0's, so segment k lasts exactly k + 1 us.
  for (int k = 0; k < kStackSegments; ++k) EXPECT_NEAR(s.us[k], k + 1.0, 1e-9) << stack_segment_name(k);
  EXPECT_NEAR(s.layer_us, 105.0, 1e-9);  // 1 + 2 + ... + 14
  EXPECT_GT(s.launch_us, 3 * 105.0 - 1.0);
  EXPECT_STREQ(stack_segment_name(kSegAttention), "attention");
  EXPECT_STREQ(stack_segment_name(kSegDownBarrier), "down_barrier");
}

// Warp 1's steps in each matrix: from the CTA's staged mark, setup, wait, units and tail to the
// CTA's arrival at the barrier after the matrix (down_proj's: the next layer's barrier 0, or the
// final one), the mean over CTAs and layers 1 ..; a CTA whose marks are out of order (one left
// from an earlier launch) is left out.
TEST(StackTraceSummary, WarpOneStepsFromStagedToArrival) {
  Trace tr;
  const int staged[4] = {kTraceQkvStaged, kTraceOStaged, kTraceGateUpStaged, kTraceDownStaged};
  for (int l = 0; l < Trace::kLayers; ++l)
    for (int c = 0; c < Trace::kCtas; ++c)
      for (int m = 0; m < 4; ++m) {
        const uint64_t t0 = tr.at(l, c, staged[m]);
        tr.at(l, c, kTraceQkvSetup + m) = t0 + 10 * (c + 1);
        tr.at(l, c, kTraceQkvUnit + m) = t0 + 10 * (c + 1) + 100;
        tr.at(l, c, kTraceQkvLast + m) = t0 + 10 * (c + 1) + 100 + 300;
      }
  tr.at(1, 1, kTraceQkvUnit + 1) = tr.at(1, 1, kTraceOStaged) - 5;  // o_proj's, stale: left out
  StackTraceSummary s;
  ASSERT_TRUE(summarize_stack_trace(tr.ns, Trace::kLayers, Trace::kCtas, &s));
  EXPECT_EQ(s.unit_samples[0], 4);  // layers 1 and 2, 2 CTAs
  EXPECT_EQ(s.unit_samples[1], 3);
  EXPECT_NEAR(s.unit_steps_us[0][0], 0.015, 1e-9);  // (0.01 + 0.02) / 2
  EXPECT_NEAR(s.unit_steps_us[2][1], 0.1, 1e-9);
  EXPECT_NEAR(s.unit_steps_us[3][2], 0.3, 1e-9);
  // The tail: the staged mark to the arrival after the matrix (the layer's next segment ends
  // there: gate_up's barrier 4 arrival is 10 us after its staged mark), less the steps before.
  EXPECT_NEAR(s.unit_steps_us[2][3], 10.0 - 0.015 - 0.1 - 0.3, 1e-9);
  // down_proj's tail runs to the next layer's barrier 0 (13 us after the GLU's staged mark).
  EXPECT_NEAR(s.unit_steps_us[3][3], 13.0 - 0.015 - 0.1 - 0.3, 1e-9);
  EXPECT_STREQ(stack_unit_matrix_name(2), "gate_up");
  EXPECT_STREQ(stack_unit_step_name(3), "tail");
}

// The flags form's trace: barriers 0 and 3 only; 3 layers, 2 CTAs, CTA 1 100 ns after
// CTA 0 except at barrier exits; the segments of a layer last 1 .. 7 us in order.
TEST(StackTraceSummary, FlagsForm) {
  constexpr int kLayers = 3, kCtas = 2;
  std::vector<uint64_t> ns(static_cast<size_t>(kLayers) * kCtas * kStackTracePoints, 0);
  auto at = [&](int l, int c, int p) -> uint64_t& {
    return ns[(static_cast<size_t>(l) * kCtas + c) * kStackTracePoints + p];
  };
  const int segs[] = {kSegQkvNorm, kSegAttention, kSegO, kSegOBarrier, kSegMlpNorm, kSegDown, kSegDownBarrier};
  uint64_t t = 1000000;
  for (int l = 0; l < kLayers; ++l) {
    for (int c = 0; c < kCtas; ++c) at(l, c, kTraceLayerStart) = at(l, c, kTraceArrive0 + 1) = t + 100;
    const bool last_layer = l == kLayers - 1;
    const int row = last_layer ? l : l + 1;
    const int end = last_layer ? kTraceFinalArrive : kTraceArrive0;
    const std::pair<int, int> order[] = {{l, kTraceQkvStaged},     {l, kTraceAttentionDone}, {l, kTraceArrive0 + 6},
                                         {l, kTraceArrive0 + 7},   {l, kTraceGateUpStaged},  {row, end},
                                         {row, end + 1}};
    for (int i = 0; i < 7; ++i) {
      t += 1000 * (i + 1);
      const bool exit = order[i].second == kTraceArrive0 + 7 || order[i].second == end + 1;
      for (int c = 0; c < kCtas; ++c) at(order[i].first, c, order[i].second) = exit ? t + 100 : t + 100 * c;
    }
  }
  for (int c = 0; c < kCtas; ++c) at(0, c, kTraceArrive0) = at(0, c, kTraceArrive0 + 1) = 0;
  StackTraceSummary s;
  ASSERT_TRUE(summarize_stack_trace(ns, kLayers, kCtas, &s));
  EXPECT_TRUE(s.flags);
  std::vector<double> want(kStackSegments, 0.0);
  for (int i = 0; i < 7; ++i) want[segs[i]] = i + 1.0;
  for (int k = 0; k < kStackSegments; ++k) EXPECT_NEAR(s.us[k], want[k], 1e-9) << stack_segment_name(k);
  EXPECT_NEAR(s.layer_us, 28.0, 1e-9);
  Trace tr;  // the other form is not read as this one
  ASSERT_TRUE(summarize_stack_trace(tr.ns, Trace::kLayers, Trace::kCtas, &s));
  EXPECT_FALSE(s.flags);
}

// The attention's steps come from the CTA whose attention ends last (CTA 1 here, its
// marks 0.5, 1.0, 0.5 and 1.0 us apart from its exit of barrier 1); CTA 0, which ends
// first, holds an earlier launch's marks. Without a ticket (stage_merge), the ticket step is
// 0 and the rest after the keys counts as the merge. A layer whose marks are out of order
// is left out.
TEST(StackTraceSummary, AttentionStepsOfItsLastCta) {
  Trace tr;
  for (int l = 0; l < Trace::kLayers; ++l) {
    const uint64_t e = tr.at(l, 1, kTraceArrive0 + 3);  // CTA 1's exit of barrier 1
    tr.at(l, 0, kTraceAttentionDone) = e + 1000;
    tr.at(l, 0, kTraceAttnQ) = 5, tr.at(l, 0, kTraceAttnKeys) = 7, tr.at(l, 0, kTraceAttnTicket) = 6;  // stale
    tr.at(l, 1, kTraceAttnQ) = e + 500;
    tr.at(l, 1, kTraceAttnKeys) = e + 1500;
    tr.at(l, 1, kTraceAttnTicket) = e + 2000;
    tr.at(l, 1, kTraceAttentionDone) = e + 3000;
  }
  StackTraceSummary s;
  ASSERT_TRUE(summarize_stack_trace(tr.ns, Trace::kLayers, Trace::kCtas, &s));
  EXPECT_EQ(s.attention_layers, 2);
  const double want[4] = {0.5, 1.0, 0.5, 1.0};
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(s.attention_us[k], want[k], 1e-9) << stack_attention_step_name(k);
  for (int l = 0; l < Trace::kLayers; ++l) tr.at(l, 1, kTraceAttnTicket) = 0;  // stage_merge: no ticket
  tr.at(2, 1, kTraceAttnKeys) = tr.at(2, 1, kTraceAttnQ) - 1;                    // layer 2 out of order
  ASSERT_TRUE(summarize_stack_trace(tr.ns, Trace::kLayers, Trace::kCtas, &s));
  EXPECT_EQ(s.attention_layers, 1);
  const double want2[4] = {0.5, 1.0, 0.0, 1.5};
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(s.attention_us[k], want2[k], 1e-9) << stack_attention_step_name(k);
  Trace none;  // no attention marks at all
  ASSERT_TRUE(summarize_stack_trace(none.ns, Trace::kLayers, Trace::kCtas, &s));
  EXPECT_EQ(s.attention_layers, 0);
}

TEST(StackTraceSummary, RefusesWhatIsNotATrace) {
  Trace tr;
  StackTraceSummary s;
  EXPECT_FALSE(summarize_stack_trace(tr.ns, Trace::kLayers, Trace::kCtas + 1, &s));  // size
  EXPECT_FALSE(summarize_stack_trace(std::vector<uint64_t>(kStackTracePoints, 0), 1, 1, &s));
  tr.at(1, 1, kTraceOStaged) = 1;  // no later than what came before it: the latest CTA now earlier
  tr.at(1, 0, kTraceOStaged) = 1;
  EXPECT_FALSE(summarize_stack_trace(tr.ns, Trace::kLayers, Trace::kCtas, &s));
}

}  // namespace
}  // namespace kr
