// kr-backend-ops, quantized part (backend_ops_quant.cc): every quantized-weight
// path of the CUDA backend against the CPU reference (which dequantizes to
// float32; on the FP8 W8A8 path it quantizes activations as the GPU does:
// CpuOptions::emulate_fp8_w8a8), and the tiny quantized models of tests/golden/quant
// on the GPU against their float64 goldens or the CPU.
//
// Threading: main thread only.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"

namespace kr::quant_ops {

// Random matrices of every format at several shapes (odd group counts, N not a
// multiple of the tile, act-order) through matmul (T = 1..8: the T <= 8 kernels;
// 9..255: the T > 8 kernels or FP8 W8A8; >= 256: dequantize + cuBLAS), the fused
// qkv_rope_store and matmul_silu_mul (vs the CPU and vs the CUDA composed
// default) and the quantized embedding. `cpu` emulates the W8A8 path
// (emulate_fp8_w8a8, with gpu's fp8_w8a8_min_tokens); lines of that path say "vs
// cpu w8a8". Prints one line per check; returns the number of failures.
int run_ops(CpuBackend& cpu, Backend& gpu);

// Backend::decode_stack against the CPU (which composes the ops) and against the
// CUDA composed default, on `gpu` (a CUDA backend with
// CudaOptions::decode_stack_kernel): 4-bit formats with 64- and 128-column groups at
// the tiny models', Llama's, Qwen3's and Gemma's shapes and options, contexts from
// the first token to 480 keys, several steps in a row (fused), and weights or
// contexts the kernel does not take (composed; with cta_attention, gpu's
// CudaOptions::decode_stack_cta_attention, group 128 too). Returns the number of failures.
int run_decode_stack(CpuBackend& cpu, Backend& gpu, bool cta_attention);

// Whole models through the decode stack kernel: Llama-3.2-3B's widths cut to 3 layers
// and 4,096 tokens, random AWQ and MLX-4 weights, a prompt then decode steps (one run
// crossing the kernel's 512-key limit), eagerly and as step graphs, on gpu_stack (the
// kernel on) against the CPU, within twice gpu_layers' (the kernel off) distance from
// it; the kernel must run for every step it takes (none of AWQ's with cta_attention, gpu_stack's
// CudaOptions::decode_stack_cta_attention). Returns the number of failures.
int run_decode_stack_models(CpuBackend& cpu, Backend& gpu_layers, Backend& gpu_stack, bool cta_attention);

// The T <= 8 path of every format through each of `kernels` (label, a CUDA
// backend with that CudaOptions::quant_gemv / quant_gemv_split): matmul at odd
// shapes and T = 1..8, Llama shapes, and the fused qkv_rope_store and
// matmul_silu_mul with and without the norm prologue, against `cpu` (as run_ops;
// each line ends with [label]). Returns the number of failures.
int run_gemv_kernels(CpuBackend& cpu, const std::vector<std::pair<std::string, Backend*>>& kernels);

// The T > 8 path of every format through each of `kernels` (label, a CUDA backend
// with that CudaOptions::quant_gemm and quant_dense_min_tokens = dense_min_tokens
// > 256, so that T = 256 runs the kernel too, the 4-bit wgmma kernel in two passes):
// matmul at odd shapes (odd group counts, partial row blocks) and T = 9, 17, 64,
// 100, 256, Llama shapes (T up to 200), and the
// fused qkv_rope_store (bf16 and FP8 KV caches) and matmul_silu_mul, against `cpu`
// (as run_ops; each line ends with [label]). Returns the number of failures.
int run_batched_kernels(CpuBackend& cpu, const std::vector<std::pair<std::string, Backend*>>& kernels,
                        int dense_min_tokens);

// The FP8 W8A8 path at decode batch sizes (T = 9, 16, 33, 64) through each of
// `kernels` (label, a CUDA backend with that CudaOptions::fp8_small_gemm_max_tokens,
// fp8_wgmma_gemm_max_tokens and fp8_small_gemm_split; a label with "-S" runs the big
// shapes at one T only): odd shapes (partial row blocks, K % 64 == 32, shapes the
// GEMMs do not take),
// Llama-3.1-8B's four shapes, and the fused qkv_rope_store and matmul_silu_mul on
// FP8 rows written by the op before, against `cpu` (as run_ops; each line ends with
// [label]). Returns the number of failures.
int run_fp8_small_kernels(CpuBackend& cpu, const std::vector<std::pair<std::string, Backend*>>& kernels);

// Every model folder listed in `fixtures`/models.json on `gpu`: argmax at every
// prompt position (one prefill per case), and token by token (eagerly and as step
// graphs), equal to the reference's where its top-2 margin exceeds
// argmax_margin_threshold() (backend_ops_error.h). The reference is the golden
// `goldens`/<name>/expected.json (make_quant_goldens.py), or, where there is none
// yet, the plain `cpu`'s logits; but a model with FP8 W8A8 Linears has its prefills
// compared with `cpu_w8a8` (emulate_fp8_w8a8 at gpu's fp8_w8a8_min_tokens), and is
// run once more on `gpu_w8a16` (fp8_w8a8_min_tokens = INT_MAX) against the plain
// reference. Each line names its references. Returns failures.
int run_models(Backend& cpu, CpuBackend& cpu_w8a8, Backend& gpu, Backend& gpu_w8a16, const std::string& fixtures,
               const std::string& goldens);

}  // namespace kr::quant_ops
