// kr-backend-ops, quantized part (backend_ops_quant.cc): every quantized-weight
// path of the CUDA backend against the CPU reference (which dequantizes to
// float32 and never quantizes activations), and the tiny quantized models of
// tests/golden/quant on the GPU against their float64 goldens.
//
// Threading: main thread only.
#pragma once

#include <string>

#include "backend/backend.h"

namespace kr::quant_ops {

// Random matrices of every format at several shapes (odd group counts, N not a
// multiple of the tile, act-order) through matmul (T = 1..8: the T <= 8 kernels;
// 9..255: the T > 8 kernels or FP8 W8A8; >= 256: dequantize + cuBLAS), the fused
// qkv_rope_store and matmul_silu_mul (vs the CPU and vs the CUDA composed
// default) and the quantized embedding. Prints one line per check; returns the
// number of failures.
int run_ops(Backend& cpu, Backend& gpu);

// Every model folder listed in `fixtures`/models.json on `gpu`: argmax at every
// prompt position (one prefill per case), and token by token (eagerly and as step
// graphs), equal to the golden's where its top-2 margin exceeds 0.15 — the golden
// is `goldens`/<name>/expected.json (make_quant_goldens.py), or, where there is
// none yet, the CPU backend's logits (said so in the output). Returns failures.
int run_models(Backend& cpu, Backend& gpu, const std::string& fixtures, const std::string& goldens);

}  // namespace kr::quant_ops
