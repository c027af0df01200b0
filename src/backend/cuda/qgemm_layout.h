// The device layout of quantized weights for the tensor-core kernels of
// cuda_qgemm.cu, as index arithmetic shared by the host repack
// (cuda_quant_repack.cc), the kernels and the CPU test that simulates the
// kernels' fragments (qgemm_layout_test.cc). Plain C++ (host and device).
//
// The kernels run mma.sync.m16n8k16 (bf16 in, f32 accumulate) with the weight as
// the A operand (16 output rows n by 16 k) and the activations as B (16 k by 8
// tokens). The k order inside one mma tile is free as long as A and B agree, so
// it is chosen to make every load contiguous per lane ("lane-contiguous k"):
// K is cut into chunks of CK columns (CK = 32 for integer codes, 64 for FP8);
// in a chunk, lane (g = lane / 4, t = lane % 4) owns the CK / 4 consecutive
// columns [t * CK / 4, (t + 1) * CK / 4), and mma tile i of the chunk (CK / 16
// tiles) uses positions 4i .. 4i + 3 of every lane's slice:
//   A regs: (a0, a1) = row g, positions 4i, 4i+1;  (a2, a3) = row g+8, 4i, 4i+1;
//           (a4, a5) = row g, 4i+2, 4i+3;          (a6, a7) = row g+8, 4i+2, 4i+3
//   B regs: (b0, b1) = token g, positions 4i, 4i+1; (b2, b3) = token g, 4i+2, 4i+3
// i.e. the mma's logical column 2t + e is position 4i + e of lane t's slice and
// 2t + 8 + e is position 4i + 2 + e, for A and B alike (PTX ISA, "Matrix
// Fragments for mma.m16n8k16" with .bf16). A lane thus reads its activations as
// 16-byte vectors of x's row, and its weights as below.
//
// Integer codes (4 or 8 bits, unsigned as in QuantizedMatrix), repacked into
// 16-byte words per (16-row tile nt, step, lane):
//   4-bit: a step is 64 columns (two chunks c0 = 2 step, c1 = 2 step + 1); the
//          uint4 is {R_g(c0), R_g8(c0), R_g(c1), R_g8(c1)}, R_r(c) = the 8 codes of
//          row 16 nt + r at chunk positions 0..7 (columns 32 c + 8 t + p), code p
//          in nibble u4_nibble(p) = [0, 4, 1, 5, 2, 6, 3, 7][p], so that
//          (w >> 4j) & 0x000F000F holds positions (2j, 2j+1): one register pair.
//   8-bit: a step is one chunk of 32 columns; the uint4 is {R_g lo, R_g hi,
//          R_g8 lo, R_g8 hi}, lo = positions 0..3 (byte p), hi = 4..7.
//   index of the uint4: (nt * steps + step) * 32 + lane.
// FP8 (e4m3) keeps the checkpoint's row-major [Np, Kp] bytes (what cuBLASLt's
// FP8 GEMM reads too): with CK = 64 a lane's slice of a row is 16 consecutive
// bytes, one 16-byte load for row g and one for row g+8.
//
// Per (tile nt, group, row r in 0..15) one 32-bit meta word, index
// (nt * groups + group) * 16 + r:
//   integer codes: low 16 bits the scale (f16 or bf16 bits, QWeight::meta_f16),
//                  high 16 bits the zero point (an integer) or, for MLX's float
//                  biases (QWeight::has_bias), the bias (same 16-bit type).
//   FP8: the f32 scale of the row's block (per-tensor and per-channel scales have
//        one group).
// A group holds `group` columns, a multiple of the chunk, so each chunk lies in one.
// Rows are padded to Np (a multiple of 32) and columns to Kp (a multiple of 64)
// with zero codes and zero meta: padded columns meet zero activations.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define KR_HD __host__ __device__ __forceinline__
#else
#define KR_HD inline
#endif

namespace kr::cuda {

enum class QCode : uint8_t { kU4, kU8, kFp8 };

constexpr int kQTileRows = 16;   // rows of one mma A tile
constexpr int kQRowAlign = 32;   // Np: a block works on two tiles
constexpr int kQColAlign = 64;   // Kp: one step of the widest kind

// Columns per chunk (the fold unit and the group granularity) and per step (one
// 16-byte weight load per lane and tile; two for FP8).
KR_HD int q_chunk_cols(QCode c) { return c == QCode::kFp8 ? 64 : 32; }
KR_HD int q_step_cols(QCode c) { return c == QCode::kU8 ? 32 : 64; }

// Nibble of 4-bit position p (0..7) inside its 32-bit word.
KR_HD int u4_nibble(int p) { return (p & 1) * 4 + (p >> 1); }

// Column (within the chunk) of position p of lane t's slice.
KR_HD int q_slice_col(QCode c, int t, int p) { return t * (q_chunk_cols(c) / 4) + p; }

// Index of the uint4 of (tile, step, lane) for integer codes.
KR_HD int64_t q_word_index(int64_t nt, int64_t steps, int64_t step, int lane) { return (nt * steps + step) * 32 + lane; }

// Where the code of (row n, canonical column j) of an integer layout lives: the
// uint4 index, the 32-bit word inside it (0..3) and the bit shift.
struct QCodePos {
  int64_t vec;
  int word;
  int shift;
};
KR_HD QCodePos q_code_pos(QCode c, int64_t steps, int64_t n, int64_t j) {
  const int64_t nt = n / kQTileRows;
  const int r = static_cast<int>(n % kQTileRows), g = r % 8, upper = r / 8;
  const int64_t chunk = j / 32;
  const int in_chunk = static_cast<int>(j % 32), t = in_chunk / 8, p = in_chunk % 8;
  const int lane = g * 4 + t;
  QCodePos pos;
  if (c == QCode::kU4) {
    pos.vec = q_word_index(nt, steps, chunk / 2, lane);
    pos.word = static_cast<int>(chunk % 2) * 2 + upper;
    pos.shift = 4 * u4_nibble(p);
  } else {
    pos.vec = q_word_index(nt, steps, chunk, lane);
    pos.word = upper * 2 + p / 4;
    pos.shift = 8 * (p % 4);
  }
  return pos;
}

KR_HD int64_t q_meta_index(int64_t nt, int64_t groups, int64_t group, int r) { return (nt * groups + group) * 16 + r; }

// The batched kernel of T > 8 (cuda_qgemm.cu, QGemmPath::kV2) stages x per weight
// step in shared memory: row r (a token) holds the step's q_step_cols(c) columns
// as bf16, and when a step holds two 32-column chunks (4-bit) chunk h of row r
// sits at chunk position h ^ (r & 1). A lane (g, t) reads the 16 bytes of its
// slice (columns 8t .. 8t + 7 of a chunk) of row 8j + g; the 8 lanes of a
// quarter-warp (rows g, g + 1) then cover the 8 distinct 16-byte bank groups of a
// 128-byte window. Element index of (row r, column col of the step):
KR_HD int q_xstage_index(QCode c, int r, int col) {
  const int step = q_step_cols(c);
  if (step == 2 * q_chunk_cols(c)) return r * step + ((col / 32) ^ (r & 1)) * 32 + col % 32;
  return r * step + col;
}

// bf16x2 bit patterns (low half first) of 128 + the codes at positions
// (2j, 2j + 1) of a 4-bit word: bf16 128.0 is 0x4300, and a code below 16 fits
// its mantissa's low bits, so 128 + q is exact.
KR_HD uint32_t u4_pair_plus128(uint32_t w, int j) { return ((w >> (4 * j)) & 0x000F000Fu) | 0x43004300u; }

}  // namespace kr::cuda
