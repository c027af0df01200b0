// What a decode stack kernel launch spent its time on, from its trace
// (CudaOptions::decode_stack_trace, cuda_decode_stack_trace; the points are
// cuda::StackTracePoint of cuda_decode_stack.h). Host code; kr-cuda-bench
// --decode-stack-trace prints it and saves it in its JSON.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace kr {

// The critical path of a layer, in order: each segment runs from the LAST CTA's
// mark at its start to the last CTA's mark at its end, so the segments add up to
// the layer (from the last CTA's exit of the layer's first barrier to the next
// layer's). Barriers: from the last arrival to the last exit. The flags form
// (DecodeStackArgs::flags) has no barriers after qkv, the attention and gate_up, nor the
// stagings after them: its qkv time is in kSegAttention (input staged to the last
// attention merged), its gate_up time in kSegDown, and those six segments stay 0.
enum StackSegment : int {
  kSegQkvNorm,      // the input norm into shared memory
  kSegQkv,          // the qkv GEMV (every CTA's warps done)
  kSegQkvBarrier,
  kSegAttention,    // warp 0's attention items and the merge
  kSegAttentionBarrier,
  kSegOStage,       // attention's output into shared memory
  kSegO,            // the o_proj GEMV
  kSegOBarrier,
  kSegMlpNorm,      // h += o_proj; the MLP norm into shared memory
  kSegGateUp,       // the gate_up GEMV
  kSegGateUpBarrier,
  kSegGlu,          // the GLU into shared memory
  kSegDown,         // the down GEMV
  kSegDownBarrier,  // the next layer's first barrier (the last layer: the final one)
  kStackSegments
};

// A segment's name in output ("qkv_norm", "qkv", "qkv_barrier", ...).
const char* stack_segment_name(int segment);

struct StackTraceSummary {
  int layers = 0;                               // the layers averaged: 1 .. L - 1 (layer 0 has no first barrier)
  bool flags = false;                           // the flags form's trace (no barrier 1)
  std::array<double, kStackSegments> us{};      // mean over those layers, us
  double layer_us = 0.0;                        // their sum: the mean layer
  double launch_us = 0.0;                       // first CTA's start of layer 0 to the last CTA's final exit
  // Inside the attention: the CTA whose attention ends last, its last item's steps (us, mean
  // over the layers where its marks are in order): from its exit of the barrier after qkv
  // (the flags form: its input staged) to q rotated and the new key stored (q), to its keys
  // attended and partial stored (keys), to the fence and ticket taken (ticket; 0 with
  // DecodeStackArgs::stage_merge, which has none), to its attention done (the merge, when
  // it was the last split). attention_layers: the layers averaged (0: no detail).
  int attention_layers = 0;
  std::array<double, 4> attention_us{};  // q, keys, ticket, merge
  // Streaming warp 1 in each matrix (qkv, o, gate_up, down), from its CTA's mark that the
  // matrix's input is staged to the CTA's arrival at the barrier after the matrix, in four
  // steps (kTraceQkvSetup ..): setup (its range worked out), wait (its first unit in its
  // slot), units (its units to its last computed), tail (its last flush and the CTA's other
  // warps, to the arrival). The mean over the CTAs and layers whose marks are in order
  // (unit_samples of them); the flags form has no staged mark for o or down, nor a barrier
  // after qkv or gate_up: those stay 0.
  std::array<std::array<double, 4>, 4> unit_steps_us{};
  std::array<int, 4> unit_samples{};
};
// The names of the matrices and steps of StackTraceSummary::unit_steps_us in output.
const char* stack_unit_matrix_name(int matrix);
const char* stack_unit_step_name(int step);
// The names of StackTraceSummary::attention_us in output.
const char* stack_attention_step_name(int step);

// ns: [layers][ctas][cuda::kStackTracePoints] (cuda_decode_stack_trace). False with
// fewer than 2 layers, a size that does not match, or marks out of order.
bool summarize_stack_trace(const std::vector<uint64_t>& ns, int layers, int ctas, StackTraceSummary* out);

}  // namespace kr
