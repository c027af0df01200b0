// Host side of a quantized weight for the CUDA kernels: the QuantizedMatrix
// (backend/quantized_matrix.h) repacked once into the layout of qgemm_layout.h,
// with everything the backend needs to pick a kernel. Plain C++ (no CUDA), so
// that a CPU test can check the layout against a simulation of the kernels.
//
// Threading: pure function (it may use a few worker threads internally); any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/cuda/qgemm_layout.h"
#include "backend/quantized_matrix.h"
#include "base/status.h"

namespace kr::cuda {

struct QRepacked {
  QCode code = QCode::kU4;
  int64_t N = 0, K = 0;    // logical [N, K]
  int64_t Np = 0, Kp = 0;  // padded (kQRowAlign, kQColAlign)
  int64_t group = 0;       // columns per scale group (a multiple of q_chunk_cols)
  int64_t groups = 0;      // ceil(Kp / group)
  int64_t steps = 0;       // Kp / q_step_cols
  bool meta_f16 = false;   // integer codes: the meta's 16-bit floats are f16 (else bf16)
  bool has_bias = false;   // integer codes: MLX float biases in the meta (else zero points)
  bool scales_rounded = false;  // some scale or bias was not exact in the 16-bit meta type
  std::vector<uint32_t> codes;  // integer codes: 4 words per uint4, q_word_index order
  std::vector<uint8_t> fp8;     // FP8: [Np, Kp] row-major e4m3 bytes
  std::vector<uint32_t> meta;   // [Np / 16, groups, 16] (q_meta_index)
  std::vector<int32_t> perm;    // [K] act-order: canonical column j is input column perm[j]; or empty
  // FP8 W8A8 (cuBLASLt): per-row f32 weight scales [N] (per-tensor scales
  // expanded) when the weight has tensor or channel scales and the checkpoint
  // quantizes activations per tensor (static) or per token (dynamic).
  bool w8a8 = false;
  std::vector<float> row_scale;
  bool static_input = false;    // x scale = input_scale (else dynamic per token)
  float input_scale = 0.0f;
  float act_scale_ub = 0.0f;    // fbgemm's cap on dynamic scales (0: none)
  std::string desc;             // e.g. "awq int4 g128 zero points"
};

// InvalidArgument naming m.name when the kernels cannot run the matrix: K not a
// multiple of 8, integer groups that are not a multiple of 32 columns, FP8 block
// scales whose block_k is not a multiple of 64.
StatusOr<QRepacked> repack_quantized(const QuantizedMatrix& m);

// The unsigned code at (row n, canonical column j) of a repacked integer matrix
// (what the kernels decode; for tests).
uint32_t repacked_code(const QRepacked& r, int64_t n, int64_t j);

}  // namespace kr::cuda
