// kr-cuda-bench --persistent-gemv-bench (persistent_gemv_bench.cu): how fast the
// quantized GEMVs of a batch-1 decode step could run as ONE persistent kernel,
// against the same arithmetic as one kernel a matrix. A design experiment for
// issue 13's batch-1 line, not a serving path.
//
// The chain: per layer of the Llama-3.2-3B shape, qkv [5120 x 3072] -> o
// [3072 x 3072] -> gate_up [16384 x 3072] -> down [3072 x 8192], each matrix's
// input the previous one's output (RMS-normalised before qkv and gate_up, the
// GLU's silu(gate) * up before down; no attention: o reads q's 3072 outputs).
// Weights: 4-bit codes (q - 8) with one f16 scale per 128 columns, a row's codes
// then its scales (1,584 bytes a row of 3,072 columns, 4,224 of 8,192), random.
//
// Persistent kernel: one (or two) CTAs an SM, 16 consumer warps and one producer
// warp. The producer streams the CTA's rows of every matrix of the step, in order,
// into a ring of shared-memory slots (bulk copies with mbarrier completion, or its
// 32 lanes' cp.async) and never waits on activations, so the weights of the next
// matrices arrive while the current one waits for its input. Between matrices the
// CTAs meet at a global counter (each adds 1 after writing its rows; the next
// matrix's readers spin until it reaches the grid size). Each ring configuration
// is also timed without the row math, without the barriers, with neither, and with
// the ring alone (no input loads either), to say which part sets the time.
// Reference: one plain kernel a matrix, the same row arithmetic reading the
// weights from global memory; the outputs of both must be equal bit for bit.
// Floors: the same weights only read (no math, no dependencies), by one kernel
// for the whole step and by one kernel a matrix.
// A third gives each warp a ring of its own (cp.async, no barrier inside the ring),
// deep enough to request a whole matrix's share of weights before the barrier.
// A second persistent form needs no ring: each warp loads its rows' chunks straight
// into registers, two rows in flight, the first two of each matrix requested before
// the wait for the previous one (kr's stream GEMV preloads its weights the same way
// before griddepcontrol.wait).
//
// Threading: the main thread of kr-cuda-bench.
#pragma once

namespace kr {

struct PersistentGemvBenchResult {
  int layers = 0;
  double weight_bytes = 0.0;      // read once per step
  double persistent_us = 0.0;     // best of the timed steps (the first ring configuration)
  double per_matrix_us = 0.0;     // one kernel a matrix, best of the timed steps
  double read_only_us = 0.0;      // one kernel a matrix that only reads its weights (the bytes' floor)
  double read_all_us = 0.0;       // one kernel that only reads every matrix's weights, one after another
  double read_all_one_cta_us = 0.0;  // the same with one CTA of 512 threads an SM (the persistent kernels' shape)
  double regs_us = 0.0;           // the persistent chain with rows streamed into registers (no ring)
  double regs_no_math_us = 0.0;   // timing only: the same without the row math
  double regs_no_barrier_us = 0.0;  // timing only: the same without waiting for the previous matrix
  double warp_ring_us = 0.0;      // the persistent chain with a cp.async ring a warp
  double warp_ring_no_math_us = 0.0;
  double warp_ring_no_barrier_us = 0.0;
  double no_math_us = 0.0;        // timing only: the persistent kernel without the row math
  double no_barrier_us = 0.0;     // timing only: without waiting for the previous matrix
  bool equal = false;             // every persistent form's outputs equal the reference's bit for bit
};

// Runs both on the current device for `layers` layers and prints the result.
PersistentGemvBenchResult run_persistent_gemv_bench(int layers);

}  // namespace kr
