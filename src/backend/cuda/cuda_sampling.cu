// Device sampling kernel: one 1024-thread block per logits row, or a cluster of
// up to 8 such blocks sharing a row when the batch is small (method in
// cuda_sampling.h). Every pass re-reads the raw row from global memory (L2
// after the first pass) and recomputes processed logits and weights on the fly.
// Thresholds come from float histograms whose atomics add in any order, so in
// the rare case where a cumulative mass lands within rounding of the top-p
// budget the kept set (and so a seeded draw) may differ between calls.
#include "backend/cuda/cuda_sampling.h"

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_launch.cuh"

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kr::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;  // 32: the last level of every block reduction is one warp
constexpr int kBins = 2048;            // radix digits of 11, 11 and 10 bits
constexpr int kTopCap = 1024;          // candidates for the top logprobs (ties beyond are dropped)
constexpr int kMaxEos = 64;
constexpr int kMaxBitmapWords = 32768;  // 128 KiB of dynamic shared memory: V <= 1,048,576

struct Shared {
  float hist[2][kBins];  // alternate histogram levels: another block of the cluster may still read the last one
  float red_f[kWarps];
  double red_d[kWarps];
  int red_i[kWarps];
  float cl_f[2];  // this block's part of a cluster reduction, alternating like hist
  int cl_i[2];
  double cl_d[2];
  int pick[2];
  float pick_excl;
  int top_n;
  unsigned top_key[kTopCap];  // this block's top-logprob candidates
  int top_id[kTopCap];
  unsigned merged_key[kTopCap];  // block 0 of the cluster: everyone's candidates
  int merged_id[kTopCap];
  float cnt[kBins];  // candidate counts per first-level bin (compaction; written once per row)
  int eos[kMaxEos];
};

// The blocks (a thread block cluster) that share one row. Every block computes
// the same reductions from the same partial results, in the same order, so all
// take the same decisions without broadcasts.
struct Cl {
  unsigned rank;
  unsigned size;
  int red_phase;
  int hist_phase;
  __device__ void sync() const {
    if (size > 1) cg::this_cluster().sync(); else __syncthreads();
  }
  __device__ Shared* at(Shared* local, unsigned r) const {
    return size > 1 ? cg::this_cluster().map_shared_rank(local, r) : local;
  }
};

struct Args {
  const float* logits;  // [R, V]
  int V;
  int vec4;  // rows are 16-byte aligned and V % 4 == 0
  const DeviceSamplingRow* rows;
  const int32_t* penalty_ids;
  const int32_t* penalty_counts;
  const int32_t* eos_ids;
  int num_eos;
  DeviceSampleResult* out;
  int cluster;  // blocks per row (a thread block cluster of that size)
};

// Everything a pass needs to turn a raw logit into a processed one.
struct RowCtx {
  const unsigned* bitmap;  // shared: ids a penalty or suppression touches
  const int32_t* pids;     // this row's entries, ascending
  const int32_t* pcounts;
  int np;
  float rep, pres, freq;
  bool rep_on, pf_on, suppress;
  const int* eos;
  int neos;
};

__device__ __noinline__ float processed_slow(const RowCtx& c, int i, float raw) {
  float v = raw;
  int lo = 0, hi = c.np;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if (c.pids[mid] < i) lo = mid + 1; else hi = mid;
  }
  if (lo < c.np && c.pids[lo] == i) {
    // Rounded exactly as the CPU (no fast-math division, no contraction).
    if (c.rep_on) v = v > 0.0f ? __fdiv_rn(v, c.rep) : __fmul_rn(v, c.rep);
    const int n = c.pcounts[lo];
    if (c.pf_on && n > 0) v = __fsub_rn(v, __fadd_rn(__fmul_rn(c.freq, static_cast<float>(n)), c.pres));
  }
  if (c.suppress)
    for (int e = 0; e < c.neos; ++e)
      if (c.eos[e] == i) v = -INFINITY;
  return v;
}

__device__ __forceinline__ float processed(const RowCtx& c, int i, float raw) {
  if (((c.bitmap[i >> 5] >> (i & 31)) & 1u) == 0) return raw;
  return processed_slow(c, i, raw);
}

// exp((p - pmax) / T) as the CPU: 0 below -87 (and for -inf).
__device__ __forceinline__ float weight(float p, float pmax, float inv_t) {
  const float x = (p - pmax) * inv_t;
  return x >= -87.0f ? __expf(x) : 0.0f;
}

// Order-preserving map of a float to unsigned (larger float, larger key).
__device__ __forceinline__ unsigned raw_key(float x) {
  const unsigned u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Calls f(id, raw) for every id of the row, this thread's share (the row is
// split over the cluster's blocks).
template <class F>
__device__ __forceinline__ void for_row(const float* row, int V, bool vec4, const Cl& cl, F&& f) {
  const int start = static_cast<int>(cl.rank) * kThreads + static_cast<int>(threadIdx.x);
  const int stride = static_cast<int>(cl.size) * kThreads;
  if (vec4) {
    const float4* r4 = reinterpret_cast<const float4*>(row);
    const int n4 = V / 4;
    int j = start;
    // Two loads in flight per thread before the (latency-bound) per-element work.
    for (; j + stride < n4; j += 2 * stride) {
      const float4 q = __ldg(r4 + j), q2 = __ldg(r4 + j + stride);
      f(4 * j, q.x);
      f(4 * j + 1, q.y);
      f(4 * j + 2, q.z);
      f(4 * j + 3, q.w);
      const int k = j + stride;
      f(4 * k, q2.x);
      f(4 * k + 1, q2.y);
      f(4 * k + 2, q2.z);
      f(4 * k + 3, q2.w);
    }
    if (j < n4) {
      const float4 q = __ldg(r4 + j);
      f(4 * j, q.x);
      f(4 * j + 1, q.y);
      f(4 * j + 2, q.z);
      f(4 * j + 3, q.w);
    }
  } else {
    for (int i = start; i < V; i += stride) f(i, row[i]);
  }
}

__device__ __forceinline__ bool better(float a, int ia, float b, int ib) { return a > b || (a == b && ia < ib); }

__device__ __forceinline__ void warp_argmax(float& v, int& id) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, id, o);
    if (better(ov, oi, v, id)) v = ov, id = oi;
  }
}

// Block-wide (max, lowest id on ties); every thread gets the result.
__device__ void block_argmax(Shared& sm, float& v, int& id) {
  warp_argmax(v, id);
  __syncthreads();  // earlier readers of red_* are done
  if ((threadIdx.x & 31) == 0) sm.red_f[threadIdx.x >> 5] = v, sm.red_i[threadIdx.x >> 5] = id;
  __syncthreads();
  v = sm.red_f[threadIdx.x & 31];
  id = sm.red_i[threadIdx.x & 31];
  warp_argmax(v, id);
}

__device__ double block_sum(Shared& sm, double x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sm.red_d[threadIdx.x >> 5] = x;
  __syncthreads();
  x = sm.red_d[threadIdx.x & 31];
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Cluster-wide versions: the block's result, then every block combines all
// blocks' results in rank order.
__device__ void cluster_argmax(Shared& sm, Cl& cl, float& v, int& id) {
  block_argmax(sm, v, id);
  if (cl.size == 1) return;
  const int ph = cl.red_phase++ & 1;
  if (threadIdx.x == 0) sm.cl_f[ph] = v, sm.cl_i[ph] = id;
  cl.sync();
  v = -INFINITY;
  id = INT_MAX;
  for (unsigned k = 0; k < cl.size; ++k) {
    const Shared* o = cl.at(&sm, k);
    if (better(o->cl_f[ph], o->cl_i[ph], v, id)) v = o->cl_f[ph], id = o->cl_i[ph];
  }
}

__device__ double cluster_sum(Shared& sm, Cl& cl, double x) {
  x = block_sum(sm, x);
  if (cl.size == 1) return x;
  const int ph = cl.red_phase++ & 1;
  if (threadIdx.x == 0) sm.cl_d[ph] = x;
  cl.sync();
  x = 0.0;
  for (unsigned k = 0; k < cl.size; ++k) x += cl.at(&sm, k)->cl_d[ph];
  return x;
}

// Exclusive prefix sum of one value per thread (thread order) and the total.
__device__ void block_exclusive_scan(Shared& sm, float x, float& excl, float& total) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  float incl = x;
  for (int o = 1; o < 32; o <<= 1) {
    const float y = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += y;
  }
  __syncthreads();
  if (lane == 31) sm.red_f[w] = incl;
  __syncthreads();
  const float wt = sm.red_f[lane];
  float wincl = wt;
  for (int o = 1; o < 32; o <<= 1) {
    const float y = __shfl_up_sync(0xffffffffu, wincl, o);
    if (lane >= o) wincl += y;
  }
  const float woff = __shfl_sync(0xffffffffu, wincl - wt, w);
  total = __shfl_sync(0xffffffffu, wincl, 31);
  excl = woff + incl - x;
}

// Radix select over 32-bit keys in three histogram passes; visit(g) calls
// g(key, mass) for every element that takes part (this thread's share).
//   kMass == false: the key of the k-th largest element, or 0 when at most k
//     take part (keep all).
//   kMass == true: the smallest key v such that the mass of keys < v is
//     <= drop_frac * (total mass): keys < v are the longest ascending prefix
//     that top-p may drop; ties at v stay whole.
template <bool kMass, class Visit>
__device__ unsigned radix_select(Shared& sm, Cl& cl, Visit&& visit, int k, float drop_frac) {
  unsigned prefix = 0, mask = 0;
  float before = 0.0f;  // outside the current bucket, on the side the walk starts from
  float target = 0.0f;
  for (int level = 0; level < 3; ++level) {
    const int shift = level == 0 ? 21 : (level == 1 ? 10 : 0);
    const int nbins = level == 2 ? 1024 : 2048;
    const int hb = cl.hist_phase++ & 1;
    float* hist = sm.hist[hb];
    for (int b = threadIdx.x; b < kBins; b += kThreads) hist[b] = 0.0f;
    __syncthreads();
    visit([&](unsigned key, float mass) {
      if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & (nbins - 1)], kMass ? mass : 1.0f);
    });
    cl.sync();
    // Ordered position j: the count walk starts at the largest keys, the mass walk at the smallest.
    const int per = nbins / kThreads;  // 2 or 1
    float local[2] = {0.0f, 0.0f};
    float sum = 0.0f;
    for (int q = 0; q < per; ++q) {
      const int j = threadIdx.x * per + q;
      const int b = kMass ? j : nbins - 1 - j;
      local[q] = 0.0f;
      for (unsigned c = 0; c < cl.size; ++c) local[q] += cl.at(&sm, c)->hist[hb][b];
      sum += local[q];
    }
    float excl = 0.0f, total = 0.0f;
    block_exclusive_scan(sm, sum, excl, total);
    if (level == 0) {
      if (kMass) {
        target = drop_frac * total;
      } else {
        if (total <= static_cast<float>(k)) return 0u;
        target = static_cast<float>(k);
      }
    }
    if (threadIdx.x == 0) sm.pick[0] = INT_MAX, sm.pick[1] = -1;
    __syncthreads();
    float run = excl;
    for (int q = 0; q < per; ++q) {
      const int j = threadIdx.x * per + q;
      const float incl = run + local[q];
      const bool cross = kMass ? (before + incl > target) : (before + incl >= target);
      if (cross) atomicMin(&sm.pick[0], j);
      if (local[q] > 0.0f) atomicMax(&sm.pick[1], j);
      run = incl;
    }
    __syncthreads();
    int j = sm.pick[0];
    if (j == INT_MAX) j = sm.pick[1] > 0 ? sm.pick[1] : 0;  // rounding left no crossing: the last non-empty bucket
    if (j / per == static_cast<int>(threadIdx.x)) {
      float e = excl;
      for (int q = 0; q < j % per; ++q) e += local[q];
      sm.pick_excl = e;
    }
    __syncthreads();
    before += sm.pick_excl;
    const int b = kMass ? j : nbins - 1 - j;
    prefix |= static_cast<unsigned>(b) << shift;
    mask |= static_cast<unsigned>(nbins - 1) << shift;
    __syncthreads();  // pick / pick_excl / hist are reused
  }
  return prefix;
}

__device__ __forceinline__ uint64_t splitmix64(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Gumbel noise of id i: G = -log(E), E ~ Exp(1) from the row's random bits.
__device__ __forceinline__ float gumbel(uint64_t bits, int i) {
  const uint64_t h = splitmix64(bits, static_cast<uint64_t>(i));
  // v in (0, 1), fine near 0 where E = -log1p(-v) ~ v is small and G large.
  const float v = (static_cast<float>(static_cast<uint32_t>(h >> 32)) + 0.5f) * 2.3283064365386963e-10f;
  return -__logf(-log1pf(-v));
}

// Top-k / top-p with one histogram pass and one collecting pass instead of
// three radix passes each: the first-level histogram (mass and count per bin of
// the weight's top 11 bits) finds the bin that bounds the kept set (the k-th
// largest weight's bin for top-k, else the bin where the ascending mass crosses
// the top-p budget); when at most kTopCap candidates lie in or above it, they
// are gathered in block 0, sorted, cut exactly and drawn from there. Returns
// the drawn id (in block 0; -2 elsewhere) or -1 when the caller must take the
// full path (too many candidates, or no cut to make).
__device__ int compact_and_draw(Shared& sm, Cl& cl, const RowCtx& c, const float* row, int V, bool vec4,
                                const DeviceSamplingRow& p, float pmax, float inv_t, float min_p) {
  const bool want_p = p.top_p < 1.0f;
  if (p.top_k <= 0 && !want_p) return -1;
  auto cand = [&](float w) { return w > 0.0f && !(min_p > 0.0f && w < min_p); };
  const int hb = cl.hist_phase++ & 1;
  float* hist = sm.hist[hb];
  for (int b = threadIdx.x; b < kBins; b += kThreads) hist[b] = 0.0f, sm.cnt[b] = 0.0f;
  __syncthreads();
  for_row(row, V, vec4, cl, [&](int i, float x) {
    const float w = weight(processed(c, i, x), pmax, inv_t);
    if (cand(w)) {
      const unsigned b = __float_as_uint(w) >> 21;
      atomicAdd(&hist[b], w);
      atomicAdd(&sm.cnt[b], 1.0f);
    }
  });
  cl.sync();
  // Thread t owns descending positions j = 2t, 2t + 1 (bin = kBins - 1 - j).
  float m[2], n[2];
  for (int q = 0; q < 2; ++q) {
    const int b = kBins - 1 - (2 * static_cast<int>(threadIdx.x) + q);
    m[q] = 0.0f;
    n[q] = 0.0f;
    for (unsigned k = 0; k < cl.size; ++k) {
      const Shared* o = cl.at(&sm, k);
      m[q] += o->hist[hb][b];
      n[q] += o->cnt[b];
    }
  }
  float mexcl, mtotal, nexcl, ntotal;
  block_exclusive_scan(sm, m[0] + m[1], mexcl, mtotal);
  block_exclusive_scan(sm, n[0] + n[1], nexcl, ntotal);
  const bool top_k_cuts = p.top_k > 0 && static_cast<float>(p.top_k) < ntotal;
  if (!top_k_cuts && !want_p) return -1;
  const float budget = (1.0f - p.top_p) * mtotal;  // top-p only: the mass it may drop
  if (threadIdx.x == 0) sm.pick[0] = INT_MAX, sm.pick[1] = -1;
  __syncthreads();
  {
    float mrun = mexcl, nrun = nexcl;
    for (int q = 0; q < 2; ++q) {
      const int j = 2 * static_cast<int>(threadIdx.x) + q;
      if (top_k_cuts) {
        if (nrun + n[q] >= static_cast<float>(p.top_k)) atomicMin(&sm.pick[0], j);
      } else if (mtotal - mrun > budget && n[q] > 0.0f) {
        atomicMax(&sm.pick[1], j);  // lowest bin whose ascending inclusive mass passes the budget
      }
      mrun += m[q];
      nrun += n[q];
    }
  }
  __syncthreads();
  int jcut = top_k_cuts ? sm.pick[0] : sm.pick[1];
  __syncthreads();
  if (jcut == INT_MAX || jcut < 0) return -1;  // rounding left no crossing: the full path decides
  const unsigned bin_cut = static_cast<unsigned>(kBins - 1 - jcut);
  // Candidates in and above the cut bin, and the mass strictly below it.
  float in_list = 0.0f, below = 0.0f;
  for (int q = 0; q < 2; ++q) {
    const int j = 2 * static_cast<int>(threadIdx.x) + q;
    if (j <= jcut) in_list += n[q]; else below += m[q];
  }
  in_list = static_cast<float>(block_sum(sm, in_list));
  below = static_cast<float>(block_sum(sm, below));
  if (in_list > static_cast<float>(kTopCap)) return -1;

  // ---- gather (x = (l - max) / T, id) of those candidates into block 0 ----
  if (threadIdx.x == 0) sm.top_n = 0;
  __syncthreads();
  for_row(row, V, vec4, cl, [&](int i, float raw) {
    const float xv = __fmul_rn(processed(c, i, raw) - pmax, inv_t);
    const float w = xv >= -87.0f ? __expf(xv) : 0.0f;  // = weight()
    if (cand(w) && (__float_as_uint(w) >> 21) >= bin_cut) {
      const int s = atomicAdd(&sm.top_n, 1);
      if (s < kTopCap) sm.top_key[s] = __float_as_uint(xv), sm.top_id[s] = i;
    }
  });
  cl.sync();
  if (cl.rank != 0) return -2;  // block 0 finishes the row
  int total_n = 0;
  for (unsigned b = 0; b < cl.size; ++b) {
    const Shared* o = cl.at(&sm, b);
    const int nb = o->top_n < kTopCap - total_n ? o->top_n : kTopCap - total_n;
    for (int s = threadIdx.x; s < nb; s += kThreads)
      sm.merged_key[total_n + s] = o->top_key[s], sm.merged_id[total_n + s] = o->top_id[s];
    total_n += nb;
  }
  for (int s = total_n + threadIdx.x; s < kTopCap; s += kThreads)
    sm.merged_key[s] = __float_as_uint(-INFINITY), sm.merged_id[s] = INT_MAX;
  __syncthreads();
  // Bitonic sort, best first (x descending, id ascending); kTopCap == kThreads.
  const int t = threadIdx.x;
  for (int k = 2; k <= kTopCap; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      const int u = t ^ j;
      const float xt = __uint_as_float(sm.merged_key[t]), xu = __uint_as_float(sm.merged_key[u]);
      const int it = sm.merged_id[t], iu = sm.merged_id[u];
      __syncthreads();
      if (u > t) {
        const bool up = (t & k) == 0;  // this pair's run sorts best first
        const bool swap = up ? better(xu, iu, xt, it) : better(xt, it, xu, iu);
        if (swap) {
          sm.merged_key[t] = __float_as_uint(xu), sm.merged_id[t] = iu;
          sm.merged_key[u] = __float_as_uint(xt), sm.merged_id[u] = it;
        }
      }
      __syncthreads();
    }
  }
  const float x = __uint_as_float(sm.merged_key[t]);
  const int id = sm.merged_id[t];
  const float w = t < total_n ? (x >= -87.0f ? __expf(x) : 0.0f) : 0.0f;
  // top-k: keep every weight >= the k-th (the list holds all of them).
  int nk = total_n;
  if (top_k_cuts) {
    if (t == p.top_k - 1) sm.pick_excl = w;
    __syncthreads();
    const float kth = sm.pick_excl;
    nk = __syncthreads_count(t < total_n && w >= kth);
  }
  int cut = nk;
  if (want_p) {
    // Drop the longest ascending run (a suffix here) whose mass, with what lies
    // below the list, stays <= budget; ties with the last kept weight stay.
    const float v = t < nk ? w : 0.0f;
    float pre, tot;
    block_exclusive_scan(sm, v, pre, tot);
    const float total = top_k_cuts ? tot : mtotal;
    const float base = top_k_cuts ? 0.0f : below;
    const float drop_budget = (1.0f - p.top_p) * total;
    if (t == 0) sm.pick[0] = nk;
    __syncthreads();
    if (t >= 1 && t < nk && base + (tot - pre) <= drop_budget) atomicMin(&sm.pick[0], t);
    __syncthreads();
    const int c0 = sm.pick[0];
    __syncthreads();
    if (t == c0 - 1) sm.pick_excl = w;
    __syncthreads();
    const float last = sm.pick_excl;
    cut = __syncthreads_count(t < nk && w >= last);
  }
  // Gumbel-max over the kept list.
  float best = -INFINITY;
  int best_id = INT_MAX;
  if (t < cut) best = x + gumbel(p.random_bits, id), best_id = id;
  block_argmax(sm, best, best_id);
  return best_id;
}

__global__ void __launch_bounds__(kThreads, 1) sample_kernel(Args a) {
  extern __shared__ unsigned bitmap[];
  __shared__ Shared sm;
  Cl cl;
  cl.size = static_cast<unsigned>(a.cluster);
  cl.rank = cl.size > 1 ? cg::this_cluster().block_rank() : 0u;
  cl.red_phase = 0;
  cl.hist_phase = 0;
  const int r = blockIdx.x / a.cluster;
  const int V = a.V;
  const bool vec4 = a.vec4 != 0;
  const float* row = a.logits + static_cast<size_t>(r) * V;
  const DeviceSamplingRow p = a.rows[r];
  DeviceSampleResult* out = a.out + r;

  RowCtx c;
  c.bitmap = bitmap;
  c.pids = a.penalty_ids + p.penalty_begin;
  c.pcounts = a.penalty_counts + p.penalty_begin;
  c.np = p.penalty_end - p.penalty_begin;
  c.rep = p.repetition_penalty;
  c.pres = p.presence_penalty;
  c.freq = p.frequency_penalty;
  c.rep_on = p.repetition_penalty != 1.0f;
  c.pf_on = p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
  c.suppress = p.suppress_eos != 0;
  c.eos = sm.eos;
  c.neos = a.num_eos;

  // ---- bitmap of touched ids ----
  const int words = (V + 31) / 32;
  for (int w = threadIdx.x; w < words; w += kThreads) bitmap[w] = 0u;
  for (int e = threadIdx.x; e < a.num_eos; e += kThreads) sm.eos[e] = a.eos_ids[e];
  // Top logprobs: pass 1 also counts raw keys per first-level bin.
  const int ntop = p.top_logprobs;
  const int hb0 = ntop > 0 ? (cl.hist_phase++ & 1) : 0;
  if (ntop > 0)
    for (int b = threadIdx.x; b < kBins; b += kThreads) sm.hist[hb0][b] = 0.0f;
  __syncthreads();
  if (c.rep_on || c.pf_on)
    for (int e = threadIdx.x; e < c.np; e += kThreads) {
      const int id = c.pids[e];
      atomicOr(&bitmap[id >> 5], 1u << (id & 31));
    }
  if (c.suppress)
    for (int e = threadIdx.x; e < a.num_eos; e += kThreads) {
      const int id = sm.eos[e];
      if (id >= 0 && id < V) atomicOr(&bitmap[id >> 5], 1u << (id & 31));
    }
  __syncthreads();

  // ---- pass 1: finiteness, raw max/argmax and online sum of exp, processed max/argmax ----
  int bad = 0;
  ArgmaxLse raw;  // raw max, its lowest index and the sum of exp(x - max), in one pass
  float pmax = -INFINITY;
  int parg = INT_MAX;
  // A masked row (Backend::apply_token_mask) holds -inf at masked tokens: there
  // only NaN and +Inf are non-finite (the mask marks a broken row with +Inf).
  const unsigned bad_neg_inf = p.masked != 0 ? 0u : 1u;
  for_row(row, V, vec4, cl, [&](int i, float x) {
    const unsigned u = __float_as_uint(x);
    bad |= (u & 0x7f800000u) == 0x7f800000u && (u != 0xff800000u || bad_neg_inf != 0u);
    raw.add(x, i);
    const float v = processed(c, i, x);
    if (better(v, i, pmax, parg)) pmax = v, parg = i;
    if (ntop > 0) atomicAdd(&sm.hist[hb0][raw_key(x) >> 21], 1.0f);
  });
  if (cluster_sum(sm, cl, bad ? 1.0 : 0.0) > 0.0) {
    if (cl.rank == 0 && threadIdx.x == 0) {
      out->id = -1;
      out->logprob = 0.0f;
      out->non_finite = 1;
      out->num_top = 0;
    }
    cl.sync();  // no block may leave while another can still read its shared memory
    return;
  }
  float rmax = raw.m, rsum = raw.s;
  int rarg = raw.i;
  const float my_max = rsum == 0.0f ? -INFINITY : rmax;  // a thread that saw no finite logit adds nothing
  cluster_argmax(sm, cl, rmax, rarg);
  const double total =
      cluster_sum(sm, cl, my_max == -INFINITY ? 0.0 : static_cast<double>(rsum * __expf(my_max - rmax)));
  const float lse = rmax + static_cast<float>(log(total));
  cluster_argmax(sm, cl, pmax, parg);

  // ---- top logprobs of the raw logits ----
  if (ntop > 0) {
    // The N-th largest raw key's first-level bin from pass 1's counts (every
    // block merges them alike); when at most kTopCap keys lie in or above it,
    // they are the candidates, else a radix select finds the exact N-th key.
    float n[2];
    for (int q = 0; q < 2; ++q) {
      const int b = kBins - 1 - (2 * static_cast<int>(threadIdx.x) + q);
      n[q] = 0.0f;
      for (unsigned k = 0; k < cl.size; ++k) n[q] += cl.at(&sm, k)->hist[hb0][b];
    }
    float nexcl, ntotal;
    block_exclusive_scan(sm, n[0] + n[1], nexcl, ntotal);
    unsigned kth = 0;  // all keys when the row has at most N entries
    if (ntotal > static_cast<float>(ntop)) {
      if (threadIdx.x == 0) sm.pick[0] = INT_MAX;
      __syncthreads();
      if (nexcl + n[0] >= static_cast<float>(ntop)) atomicMin(&sm.pick[0], 2 * static_cast<int>(threadIdx.x));
      else if (nexcl + n[0] + n[1] >= static_cast<float>(ntop)) atomicMin(&sm.pick[0], 2 * static_cast<int>(threadIdx.x) + 1);
      __syncthreads();
      const int jcut = sm.pick[0];
      __syncthreads();
      float mine = 0.0f;
      for (int q = 0; q < 2; ++q) mine += 2 * static_cast<int>(threadIdx.x) + q <= jcut ? n[q] : 0.0f;
      const double in_list = block_sum(sm, mine);
      if (jcut != INT_MAX && in_list <= kTopCap) {
        kth = static_cast<unsigned>(kBins - 1 - jcut) << 21;
      } else {
        kth = radix_select<false>(
            sm, cl, [&](auto&& g) { for_row(row, V, vec4, cl, [&](int, float x) { g(raw_key(x), 0.0f); }); }, ntop,
            0.0f);
      }
    }
    if (threadIdx.x == 0) sm.top_n = 0;
    __syncthreads();
    for_row(row, V, vec4, cl, [&](int i, float x) {
      const unsigned key = raw_key(x);
      if (key >= kth) {
        const int s = atomicAdd(&sm.top_n, 1);
        if (s < kTopCap) sm.top_key[s] = key, sm.top_id[s] = i;
      }
    });
    cl.sync();
    if (cl.rank == 0 && threadIdx.x < 32) {
      // Gather every block's candidates (at most kTopCap in all; ties beyond are dropped).
      int n = 0;
      for (unsigned b = 0; b < cl.size; ++b) {
        const Shared* o = cl.at(&sm, b);
        const int nb = o->top_n < kTopCap ? o->top_n : kTopCap;
        for (int s = threadIdx.x; s < nb && n + s < kTopCap; s += 32)
          sm.merged_key[n + s] = o->top_key[s], sm.merged_id[n + s] = o->top_id[s];
        n = n + nb < kTopCap ? n + nb : kTopCap;
      }
      __syncwarp();
      for (int t = 0; t < ntop && t < n; ++t) {
        // best remaining (largest key, lowest id); taken ones have key 0 (no finite float maps to 0)
        unsigned bk = 0;
        int bi = INT_MAX, bs = -1;
        for (int s = threadIdx.x; s < n; s += 32) {
          const unsigned k = sm.merged_key[s];
          const int id = sm.merged_id[s];
          if (k > bk || (k == bk && k != 0 && id < bi)) bk = k, bi = id, bs = s;
        }
        for (int o = 16; o > 0; o >>= 1) {
          const unsigned ok = __shfl_xor_sync(0xffffffffu, bk, o);
          const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
          const int os = __shfl_xor_sync(0xffffffffu, bs, o);
          if (ok > bk || (ok == bk && oi < bi)) bk = ok, bi = oi, bs = os;
        }
        if (threadIdx.x == 0) {
          out->top_ids[t] = bi;
          out->top_logprobs[t] = row[bi] - lse;
          sm.merged_key[bs] = 0;
        }
        __syncwarp();
      }
    }
    cl.sync();  // block 0 has read every block's candidates: the arrays are free again
  }

  // ---- choose ----
  int chosen = parg;
  if (p.temperature >= kGreedyTemperature && pmax != -INFINITY) {
    const float inv_t = 1.0f / p.temperature;
    const float min_p = p.min_p;
    auto cand = [&](float w) { return w > 0.0f && !(min_p > 0.0f && w < min_p); };
    unsigned thr = 0;
    const int compact = compact_and_draw(sm, cl, c, row, V, vec4, p, pmax, inv_t, min_p);
    if (compact != -1) {  // the cluster agrees on -1 (every block saw the same histogram)
      chosen = compact == INT_MAX ? rarg : compact;  // meaningful in block 0, the one that writes the result
    } else {
    if (p.top_k > 0) {
      thr = radix_select<false>(
          sm, cl,
          [&](auto&& g) {
            for_row(row, V, vec4, cl, [&](int i, float x) {
              const float w = weight(processed(c, i, x), pmax, inv_t);
              if (cand(w)) g(__float_as_uint(w), 0.0f);
            });
          },
          p.top_k, 0.0f);
    }
    if (p.top_p < 1.0f) {
      const unsigned thr_k = thr;
      thr = radix_select<true>(
          sm, cl,
          [&](auto&& g) {
            for_row(row, V, vec4, cl, [&](int i, float x) {
              const float w = weight(processed(c, i, x), pmax, inv_t);
              if (cand(w) && __float_as_uint(w) >= thr_k) g(__float_as_uint(w), w);
            });
          },
          0, 1.0f - p.top_p);
      if (thr < thr_k) thr = thr_k;
    }
    // Gumbel-max: argmax of log w + G with G = -log(E), E ~ Exp(1) from the hash.
    float best = -INFINITY;
    int best_id = INT_MAX;
    const uint64_t bits = p.random_bits;
    for_row(row, V, vec4, cl, [&](int i, float x) {
      const float pv = processed(c, i, x);
      const float w = weight(pv, pmax, inv_t);
      if (!cand(w) || __float_as_uint(w) < thr) return;
      const float s = __fmul_rn(pv - pmax, inv_t) + gumbel(bits, i);  // as compact_and_draw
      if (better(s, i, best, best_id)) best = s, best_id = i;
    });
    cluster_argmax(sm, cl, best, best_id);
    chosen = best_id != INT_MAX ? best_id : rarg;  // nothing kept: the CPU falls back to the raw argmax
    }
  } else if (p.temperature >= kGreedyTemperature) {
    chosen = rarg;  // every logit masked to -inf: as the CPU, the raw argmax
  }
  if (cl.rank == 0 && threadIdx.x == 0) {
    out->id = chosen;
    out->logprob = row[chosen] - lse;
    out->non_finite = 0;
    out->num_top = ntop;
  }
  cl.sync();  // no block may leave while another can still read its shared memory
}

size_t align16(size_t v) { return (v + 15) / 16 * 16; }

cudaError_t launch(Args a, int R, int cluster, size_t smem_bytes, cudaStream_t stream) {
  a.cluster = cluster;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(R * cluster));
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem_bytes;
  cfg.stream = stream;
  cudaLaunchAttribute attr = cluster_x_attr(cluster);
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, sample_kernel, a);
}

}  // namespace

CudaSampler::CudaSampler() {
  KR_CUDA_CHECK(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              kMaxBitmapWords * static_cast<int>(sizeof(unsigned))));
  int device = 0;
  KR_CUDA_CHECK(cudaGetDevice(&device));
  KR_CUDA_CHECK(cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, device));
  in_capacity_ = size_t{1} << 20;
  out_capacity_ = 256 * sizeof(DeviceSampleResult);
  KR_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&in_host_), in_capacity_));
  KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&in_dev_), in_capacity_));
  KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&out_dev_), out_capacity_));
  KR_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&out_host_), out_capacity_));
}

CudaSampler::~CudaSampler() {
  cudaFreeHost(in_host_);
  cudaFree(in_dev_);
  cudaFree(out_dev_);
  cudaFreeHost(out_host_);
}

void CudaSampler::reserve(size_t in_bytes, size_t out_bytes, cudaStream_t stream) {
  if (in_bytes <= in_capacity_ && out_bytes <= out_capacity_) return;
  KR_CUDA_CHECK(cudaStreamSynchronize(stream));  // the old buffers may still be read
  if (in_bytes > in_capacity_) {
    KR_CUDA_CHECK(cudaFreeHost(in_host_));
    KR_CUDA_CHECK(cudaFree(in_dev_));
    in_capacity_ = in_bytes * 2;
    KR_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&in_host_), in_capacity_));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&in_dev_), in_capacity_));
  }
  if (out_bytes > out_capacity_) {
    KR_CUDA_CHECK(cudaFree(out_dev_));
    KR_CUDA_CHECK(cudaFreeHost(out_host_));
    out_capacity_ = out_bytes * 2;
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&out_dev_), out_capacity_));
    KR_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&out_host_), out_capacity_));
  }
}

bool CudaSampler::sample(const float* logits, int R, int V, const DeviceSamplingRow* rows, const int32_t* penalty_ids,
                         const int32_t* penalty_counts, int num_penalty, const int32_t* eos_ids, int num_eos,
                         DeviceSampleResult* out, cudaStream_t stream) {
  if (R <= 0) return true;
  const int words = (V + 31) / 32;
  if (V <= 0 || words > kMaxBitmapWords || num_eos < 0 || num_eos > kMaxEos || num_penalty < 0) return false;
  for (int r = 0; r < R; ++r) {
    const DeviceSamplingRow& p = rows[r];
    if (p.top_logprobs < 0 || p.top_logprobs > kDeviceSamplingMaxTop || p.top_logprobs > V) return false;
    if (p.penalty_begin < 0 || p.penalty_begin > p.penalty_end || p.penalty_end > num_penalty) return false;
  }
  for (int e = 0; e < num_penalty; ++e)
    if (penalty_ids[e] < 0 || penalty_ids[e] >= V) return false;
  // One host->device copy: rows, penalty ids, penalty counts, eos ids.
  const size_t rows_bytes = align16(R * sizeof(DeviceSamplingRow));
  const size_t pen_bytes = align16(static_cast<size_t>(num_penalty) * sizeof(int32_t));
  const size_t eos_bytes = align16(static_cast<size_t>(num_eos) * sizeof(int32_t));
  const size_t in_bytes = rows_bytes + 2 * pen_bytes + eos_bytes;
  const size_t out_bytes = R * sizeof(DeviceSampleResult);
  reserve(in_bytes, out_bytes, stream);
  std::memcpy(in_host_, rows, R * sizeof(DeviceSamplingRow));
  if (num_penalty > 0) {
    std::memcpy(in_host_ + rows_bytes, penalty_ids, num_penalty * sizeof(int32_t));
    std::memcpy(in_host_ + rows_bytes + pen_bytes, penalty_counts, num_penalty * sizeof(int32_t));
  }
  if (num_eos > 0) std::memcpy(in_host_ + rows_bytes + 2 * pen_bytes, eos_ids, num_eos * sizeof(int32_t));
  KR_CUDA_CHECK(cudaMemcpyAsync(in_dev_, in_host_, in_bytes, cudaMemcpyHostToDevice, stream));
  Args a;
  a.logits = logits;
  a.V = V;
  a.vec4 = (V % 4 == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0) ? 1 : 0;
  a.rows = reinterpret_cast<const DeviceSamplingRow*>(in_dev_);
  a.penalty_ids = reinterpret_cast<const int32_t*>(in_dev_ + rows_bytes);
  a.penalty_counts = reinterpret_cast<const int32_t*>(in_dev_ + rows_bytes + pen_bytes);
  a.eos_ids = reinterpret_cast<const int32_t*>(in_dev_ + rows_bytes + 2 * pen_bytes);
  a.num_eos = num_eos;
  a.out = out_dev_;
  // Few rows leave most SMs idle: split each row over a cluster of up to 8
  // blocks (one per SM) so that a batch-1 call is not one SM's work.
  int cluster = 1;
  while (cluster < 8 && R * cluster * 2 <= num_sms_) cluster *= 2;
  cudaError_t err = launch(a, R, cluster, words * sizeof(unsigned), stream);
  if (err != cudaSuccess && cluster > 1) {  // e.g. no room for a cluster: one block per row
    (void)cudaGetLastError();
    err = launch(a, R, 1, words * sizeof(unsigned), stream);
  }
  KR_CUDA_CHECK(err);
  KR_CUDA_CHECK(cudaMemcpyAsync(out_host_, out_dev_, out_bytes, cudaMemcpyDeviceToHost, stream));
  KR_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::memcpy(static_cast<void*>(out), out_host_, out_bytes);
  return true;
}

}  // namespace kr::cuda
