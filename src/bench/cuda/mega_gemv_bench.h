// kr-cuda-bench --mega-gemv-bench (mega_gemv_bench.cu): the 4-bit GEMV chain of a
// Llama-3.2-3B batch-1 decode step as ONE persistent kernel built from the serving
// GEMV's own pieces (the repacked tile layout of qgemm_layout.h, the mma
// arithmetic and group fold of qgemv_stream_kernel), against the same chain as
// the serving kernels, one launch a matrix. A design experiment for issue 13's
// batch-1 line (1,000 tok/s needs the GEMVs near 0.55 ms a step; in the serving
// step they take 1.17), not a serving path.
//
// The chain per layer (T = 1; unit RMSNorm weights; without the attention option o_proj
// reads q's 3,072 outputs, as persistent_gemv_bench.h's chain):
//   x = bf16(rms_norm(h)); qkv = W_qkv x; x = bf16(qkv[0:3072]); h += W_o x;
//   x = bf16(rms_norm(h)); [g; u] = W_gu x; x = bf16(silu(bf16 g) * bf16 u); h += W_d x
// with h a float residual. Weights: random 4-bit codes, f16 group scales (128
// columns) and zero points, AWQ's form after repacking.
//
// The persistent kernels: one CTA of 16 warps an SM. A matrix's work is cut into
// units of one 128-column group of one tile pair (32 rows: two 16-row mma tiles),
// and warp w of W takes the units [w U / W, (w + 1) U / W) of each matrix, so every
// warp has the same share of every matrix (split K: its sums go to f32 outputs by
// red.add). Each warp keeps a ring of D units (2 KB of codes and 128 B of meta
// each) in shared memory, filled by its own lanes' cp.async along ITS sequence of
// units through all matrices of the step, so the weights of the next matrices
// are requested while the current one still waits for its input. Between
// matrices the CTAs meet at a global counter; then every CTA builds the next
// matrix's whole input vector in shared memory from the f32 outputs (the norm,
// the copy or the GLU: the elementwise ops live in the consumer's staging, not
// in an epilogue).
//   mega_ring_kernel reads the serving layout (qgemm_layout.h), with options:
//     o_proj / down_proj waiting only for the CTAs that wrote their rows, CTA-level
//     sums before the global red.add, interleaved units, or the linear copy below;
//   mega_linear_kernel reads a copy of the weights laid out in the order the warps
//     consume them (unit i of every warp side by side: at each step the whole GPU
//     reads one contiguous window), each unit a ring slot's image, and steps a
//     pointer instead of recomputing addresses; with red.add sums, or deterministic
//     (no atomics on the sums: per-CTA slots, or CTAs owning whole tile pairs or
//     quarters of them, the residual in every CTA's registers); and optionally a
//     decode attention phase between qkv and o_proj (context 128: RoPE, the new K/V
//     stored, one key a lane, the splits merged in o_proj's staging).
// Timing-only modes take out the arithmetic, the barriers, the staging, or all of
// them (the rings alone), to say which part sets the time.
//
// Threading: the main thread of kr-cuda-bench.
#pragma once

#include <string>
#include <vector>

namespace kr {

struct MegaGemvBenchResult {
  struct Row {
    std::string name;  // the form and mode timed
    double us = 0.0;   // best of the timed steps
  };
  int layers = 0;
  double weight_bytes = 0.0;  // codes and meta, read once a step
  std::vector<Row> rows;      // first the serving kernels, then the persistent forms
  // final h vs float64: ring, linear, linear deterministic, pair-aligned, quarter-pair items,
  // linear with the attention phase (against the reference with attention)
  double rel_err[6] = {0, 0, 0, 0, 0, 0};
  bool deterministic = false;        // two runs of each deterministic form equal bit for bit
  bool atomic_runs_equal = false;  // the same for the red.add form (informative)
  bool ok = false;                // all within the bound, and deterministic
};

// Runs the chain for `layers` layers on the current device and prints the result.
MegaGemvBenchResult run_mega_gemv_bench(int layers);

}  // namespace kr
