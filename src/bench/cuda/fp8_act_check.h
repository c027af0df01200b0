// The W8A8 activation quantization fused into the ops that produce the
// activations (Fp8Rows in backend/backend.h; CudaOptions::fuse_fp8_act_quant) for
// kr-backend-ops (`--only fp8_act`). See fp8_act_check.cc.
//
// Threading: main thread only.
#pragma once

#include <string>

#include "backend/cuda/cuda_backend.h"

namespace kr {

// On two CUDA backends of `options`, one with fuse_fp8_act_quant and
// fp8_qkv_rope_epilogue and one without, runs a decoder layer's fused ops on W8A8
// weights (per-token dynamic, per-token with an activation scale bound, static
// input scale) at T = 9, 64, 512, with the Llama norm (x̂·w, SwiGLU), the Gemma one
// ((1 + w), pre-norms, GeGLU) and a Qwen2 shape (q/k/v biases, an FP8 KV cache):
//  - every FP8 row the fused backend writes (the RMS norm's, the GLU's) equals,
//    byte for byte and scale for scale, launch_quantize_fp8_rows of the bf16 rows
//    the same op wrote;
//  - every output of every op (the matmuls that read those rows, the norm
//    prologue of qkv_rope_store and matmul_silu_mul, the rotated qkv and the KV
//    cache of qkv_rope_store's RoPE epilogue) equals the unfused backend's bit for bit;
//  - a matmul takes the rows only when their record names its input and weight.
// On the llama-8b shape, attention of steps of several sequences (decode steps
// with and without key splits, bf16 and FP8 caches, a mixed step) writing
// o_proj's FP8 rows (CudaOptions::fp8_attention_out): those rows equal
// launch_quantize_fp8_rows of attention's bf16 output, attention and o_proj equal
// the unfused backend's, and a decode step recorded and replayed as a step graph
// gives the same bytes; a line says which attention paths ran.
// Then (fixtures not empty) every model of fixtures/models.json (the tiny
// quantized models, FP8 W8A8 among them): prefill logits fused == unfused, bit
// for bit. Prints one line per check; returns the number of failures.
int check_fp8_act_fusion(const CudaOptions& options, const std::string& fixtures);

}  // namespace kr
