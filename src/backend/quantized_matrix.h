// QuantizedMatrix: one quantized weight matrix in a neutral host form, whatever
// checkpoint format it came from (AWQ, GPTQ, compressed-tensors, fbgemm/ModelOpt
// FP8, MLX). The format readers (model/quant/quant_loader.h) produce it; it lives
// in the backend layer because Backend::upload_quantized takes it (model ->
// backend stays one way). dequantize() gives the float32 reference the CPU backend
// computes with; the CUDA backend repacks it once at load into its kernels' layout
// (cuda/cuda_quant_repack.h).
//
// Orientation: the torch Linear's [N, K] = [out_features, in_features]; y = x @ Wᵀ.
//
// Integer kinds (kind == kInt: AWQ, GPTQ, compressed-tensors pack-quantized, MLX)
//   qweight  uint32 [N, words_per_row()], words_per_row = ceil(K * bits / 32).
//            Row n holds the K codes of output channel n as one LSB-first bit
//            stream: code j sits at bits [bits*(j % pf), bits*(j % pf) + bits) of
//            word j / pf, pf = 32 / bits (4-bit: 8 codes per word, 8-bit: 4).
//            Codes are unsigned, 0 .. 2^bits - 1; padding codes past K are 0.
//            This is MLX's `weight` and compressed-tensors' `weight_packed`
//            (without its +2^(b-1) shift: the codes here are the stored nibbles)
//            and GPTQ's `qweight` transposed, so a dequantizing GEMV reads one
//            word per 8 (or 4) consecutive k of a row, and a Marlin-style repack
//            reads the same codes GPTQ's `gptq_marlin_repack` would.
//   j is the *canonical* column: when `perm` is non-empty (GPTQ desc_act,
//            compressed-tensors actorder=group) the columns were permuted once at
//            load so that groups are contiguous; canonical column j holds input
//            channel perm[j]. A kernel gathers x[:, perm] (or permutes x once per
//            step) and then treats the matrix as ordinarily grouped.
//   group of canonical column j: j / group_size; groups() = K / group_size
//            (group_size == K for per-channel quantization).
//   scales   float [N, groups()], exact copies of the file's values (F16, BF16 or
//            F32; `scale_dtype` says which, so a kernel can keep 16-bit scales
//            without loss).
//   zeros    ZeroKind::kSymmetric: implicit zero 2^(bits-1), W = (q - 2^(b-1)) * s.
//            ZeroKind::kInteger:   zeros uint8 [N, groups()], W = (q - z) * s.
//            ZeroKind::kFloatBias: biases float [N, groups()], W = q * s + b (MLX).
//
// FP8 (kind == kFp8: compressed-tensors float-quantized, fbgemm_fp8, ModelOpt)
//   fp8      uint8 [N, K] float8_e4m3fn bit patterns, row-major (the file's `weight`).
//   scales   by `scale_layout`: kTensor: [1]; kGroup with group_size == K: [N, 1]
//            (per output channel); kBlock: [ceil(N / block_n), ceil(K / block_k)].
//            W[n, k] = fp8_to_float(q) * s.
//   act      how the checkpoint quantizes activations for W8A8 kernels; the CPU
//            reference ignores it (it computes in float32 without activation
//            quantization) unless CpuOptions::emulate_fp8_w8a8 asks it to follow
//            the CUDA backend's W8A8 path (fp8_runs_w8a8() says which weights).
//
// dequantize() computes every element with float32 operations in a fixed order
// ((float(q) - float(z)) * s; float(q) * s + b; fp8 * s), so it is bit-for-bit
// equal to scripts/quant/qformats.py's dequantizers, and returns W in the
// original (unpermuted) K order.
//
// Threading: plain values; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/tensor.h"
#include "base/status.h"

namespace kr {

enum class QuantKind : uint8_t { kInt, kFp8 };
enum class ZeroKind : uint8_t { kSymmetric, kInteger, kFloatBias };
enum class ScaleLayout : uint8_t { kGroup, kTensor, kBlock };

// How W8A8 kernels quantize the activations (FP8 only).
enum class ActQuant : uint8_t {
  kNone,          // weight-only (FP8 W8A16): activations stay 16-bit
  kStaticTensor,  // one static scale `input_scale` per Linear
  kDynamicTensor, // one scale per call, computed from the activations
  kDynamicToken,  // one scale per token (row), computed at run time
  kDynamicGroup,  // one scale per token and group of `act_group_size` channels
};

const char* quant_kind_name(QuantKind k);
const char* zero_kind_name(ZeroKind z);
const char* act_quant_name(ActQuant a);

struct QuantizedMatrix;
// Whether the backends run `m` as FP8 W8A8 (for steps of enough rows): FP8 codes
// with one weight scale per tensor or per output channel, and activations
// quantized with a static input_scale or dynamically (kDynamicTensor is computed
// per token, as vLLM's dynamic_per_token_scaled_fp8_quant). Block scales and
// per-group activations (DeepSeek-style) run W8A16, as do shapes the FP8 GEMM
// cannot take (N not a multiple of 8, K not a multiple of 16).
bool fp8_runs_w8a8(const QuantizedMatrix& m);

struct QuantizedMatrix {
  QuantKind kind = QuantKind::kInt;
  std::string format;    // "awq", "gptq", "compressed-tensors", "fbgemm_fp8", "modelopt", "mlx"
  std::string name;      // module prefix, e.g. model.layers.0.self_attn.q_proj (for messages)
  int64_t N = 0;         // out_features (rows)
  int64_t K = 0;         // in_features (columns)
  int bits = 0;          // 4 or 8 (kInt); 8 (kFp8)
  int64_t group_size = 0;  // kInt: K for per-channel; kFp8 kGroup: K (per channel)

  // kInt
  ZeroKind zero_kind = ZeroKind::kSymmetric;
  std::vector<uint32_t> qweight;  // [N, words_per_row()]
  std::vector<uint8_t> zeros;     // [N, groups()], kInteger only
  std::vector<float> biases;      // [N, groups()], kFloatBias only
  std::vector<int32_t> perm;      // [K] or empty: canonical column j is input channel perm[j]

  // kFp8
  std::vector<uint8_t> fp8;       // [N, K]
  int64_t block_n = 0, block_k = 0;  // kBlock only
  ActQuant act = ActQuant::kNone;
  float input_scale = 0.0f;          // kStaticTensor
  int64_t act_group_size = 0;        // kDynamicGroup
  float activation_scale_ub = 0.0f;  // fbgemm_fp8's cap on dynamic per-token scales (0: none)

  // both
  ScaleLayout scale_layout = ScaleLayout::kGroup;
  DType scale_dtype = DType::kF32;  // dtype of the scales in the file
  std::vector<float> scales;        // see the header comment for the shape

  // Every checkpoint tensor this matrix was read from (so a model loader can tell
  // consumed tensors from unexpected ones).
  std::vector<std::string> source_tensors;

  int pack_factor() const { return bits > 0 ? 32 / bits : 0; }
  int64_t words_per_row() const { return (K * bits + 31) / 32; }
  int64_t groups() const { return group_size > 0 ? K / group_size : 0; }
  int64_t scale_rows() const;  // first dim of `scales`
  int64_t scale_cols() const;  // second dim of `scales`

  // Unsigned code at (row n, canonical column j); kInt only.
  uint32_t code(int64_t n, int64_t j) const {
    const uint32_t w = qweight[static_cast<size_t>(n * words_per_row() + j / pack_factor())];
    return (w >> (bits * (j % pack_factor()))) & ((1u << bits) - 1u);
  }

  // Bytes a kernel reads per full pass over the weight (codes + scales + zeros),
  // at the file's scale width: for bytes-per-token accounting.
  int64_t weight_bytes() const;

  // Checks the invariants above (sizes, ranges, finite scales, perm is a
  // permutation); every reader calls it before returning. InvalidArgument naming
  // `name` otherwise.
  Status validate() const;
};

// Float32 [N, K] row-major in the original input-channel order (perm undone).
std::vector<float> dequantize(const QuantizedMatrix& m);
// One row (output channel) of dequantize(m), into out[0..K): e.g. an embedding lookup.
void dequantize_row(const QuantizedMatrix& m, int64_t n, float* out);

// Row-concatenation (q|k|v, gate|up) into one matrix of sum(N) rows, as the model
// fuses dense weights. Parts must agree on kind, K, bits, group size and act-order
// permutation; symmetric parts joined with integer-zero parts get explicit zeros
// 2^(bits-1); FP8 per-tensor scales that differ become per-channel scales (exact,
// unlike requantizing to the max scale); a static input scale becomes the max of
// the parts' (what vLLM does for fused shards). InvalidArgument naming the parts
// when they cannot be joined.
StatusOr<QuantizedMatrix> fuse_rows(const std::vector<const QuantizedMatrix*>& parts, const std::string& name);

}  // namespace kr
