// Test data of kr-attention-check that the host can recompute bit for bit:
// element i of a buffer is code(seed, i) · 2^-shift, where code is a signed byte
// drawn from a hash of (seed, i). The values are exact in bf16 (8 significant
// bits), so the device fill and the host reference agree without any rounding.
//
// Threading: any thread (pure functions; the fill enqueues on `stream`).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#ifdef __CUDACC__
#define KR_HOST_DEVICE __host__ __device__
#else
#define KR_HOST_DEVICE
#endif

namespace kr::bench {

// splitmix64's finaliser.
KR_HOST_DEVICE constexpr uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

KR_HOST_DEVICE constexpr int code_of(uint64_t seed, uint64_t i) {
  return static_cast<int8_t>(static_cast<uint8_t>(mix64(seed + i * 0x9e3779b97f4a7c15ULL) >> 56));
}

inline float code_value(uint64_t seed, uint64_t i, int shift) {
  return static_cast<float>(code_of(seed, i)) / static_cast<float>(1 << shift);
}

// p[i] = code_value(seed, i, shift) as bf16, i in [0, n).
void fill_codes_bf16(void* p, size_t n, uint64_t seed, int shift, cudaStream_t stream);

// A stand-in for the kernel that stores a decode step's own keys, late: one block
// signals its programmatic dependents (griddepcontrol.launch_dependents) at once,
// spins for about `spin_cycles` SM clocks, then writes elements [r, r + row_elems)
// of a and b as fill_codes_bf16(seed_a / seed_b, shift) wrote them, for each r in
// rows[0, n_rows) (device array). A kernel launched after it with PDL starts while
// it spins, and sees these rows only after its griddepcontrol.wait.
void refill_rows_late(void* a, uint64_t seed_a, void* b, uint64_t seed_b, int shift, const int64_t* rows, int n_rows,
                      int row_elems, long long spin_cycles, cudaStream_t stream);

}  // namespace kr::bench
