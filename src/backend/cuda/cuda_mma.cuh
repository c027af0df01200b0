// The warp-level tensor-core MMA the flash attention kernels and the quantized
// GEMMs share (PTX ISA, "mma.sync.aligned.m16n8k16" with .bf16). Included only by
// .cu files.
#pragma once

#include <cstdint>

namespace kr::cuda {

// d += a · b for one m16n8k16 tile (16×16 bf16 · 16×8 bf16, f32 accumulate).
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace kr::cuda
