# Session 19 call 7: timing instrumentation of the decode stack kernel (not committed):
# globaltimer at each phase boundary of every layer and CTA.
p='src/backend/cuda/cuda_decode_stack.cu'
s=open(p).read()
def rep(old,new):
    global s
    assert old in s, old[:70]
    s=s.replace(old,new,1)
rep('''namespace kr::cuda {
namespace {
''','''namespace kr::cuda {
constexpr int kTrLaunches = 48, kTrPts = 15, kTrLayers = 28;
__device__ unsigned long long g_tr[kTrLaunches][kTrLayers][132][kTrPts];
__device__ int g_tr_calls[132];
__device__ __forceinline__ unsigned long long gtime() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}
namespace {
''')
rep('''  extern __shared__ __align__(16) uint8_t smem[];
  constexpr int UB = Unit<SU>::kBytes, D = kStackHeadDim;''','''  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ int tr_slot;
  if (threadIdx.x == 0) tr_slot = atomicAdd(&g_tr_calls[blockIdx.x], 1) % kTrLaunches;
  __syncthreads();
  unsigned long long* TRL = nullptr;
#define TRP(k) if (threadIdx.x == 0 && TRL) TRL[k] = gtime();
  constexpr int UB = Unit<SU>::kBytes, D = kStackHeadDim;''')
rep('''    const StackLayer& L = a.layer[l];
    // qkv: x = norm(h, input_norm), h first taking the last layer's down_proj.
    if (l > 0) {
      barrier();''','''    const StackLayer& L = a.layer[l];
    TRL = l < kTrLayers ? g_tr[tr_slot][l][blockIdx.x] : nullptr;
    TRP(0)
    // qkv: x = norm(h, input_norm), h first taking the last layer's down_proj.
    if (l > 0) {
      barrier();
      TRP(1)''')
rep('''    stage_norm(h, L.input_norm_w, H, a.eps, a.norm_kind, xs, red);
    run_matrix(4 * l, qkvsum);
    if (staged_item) prefetch_chunk(a, L, blockIdx.x / S, blockIdx.x % S, S, pos, stage, lane);
    barrier();
    zero_sums(dsum, H);''','''    stage_norm(h, L.input_norm_w, H, a.eps, a.norm_kind, xs, red);
    TRP(2)
    run_matrix(4 * l, qkvsum);
    if (staged_item) prefetch_chunk(a, L, blockIdx.x / S, blockIdx.x % S, S, pos, stage, lane);
    TRP(3)
    barrier();
    TRP(4)
    zero_sums(dsum, H);''')
rep('''    barrier();
    zero_sums(qkvsum, QKV);
    // o_proj's input: the merged attention, as it is.
    for (int v = tid; v < Hq * D / 8; v += kThreads)
      reinterpret_cast<uint4*>(xs)[v] = __ldcg(reinterpret_cast<const uint4*>(a.attn_out) + v);
    __syncthreads();
    run_matrix(4 * l + 1, osum);
    barrier();
    add_sums(h, osum, H);
    stage_norm(h, L.mlp_norm_w, H, a.eps, a.norm_kind, xs, red);
    run_matrix(4 * l + 2, gusum);
    barrier();
    zero_sums(osum, H);''','''    TRP(5)
    barrier();
    TRP(6)
    zero_sums(qkvsum, QKV);
    // o_proj's input: the merged attention, as it is.
    for (int v = tid; v < Hq * D / 8; v += kThreads)
      reinterpret_cast<uint4*>(xs)[v] = __ldcg(reinterpret_cast<const uint4*>(a.attn_out) + v);
    __syncthreads();
    TRP(7)
    run_matrix(4 * l + 1, osum);
    TRP(8)
    barrier();
    TRP(9)
    add_sums(h, osum, H);
    stage_norm(h, L.mlp_norm_w, H, a.eps, a.norm_kind, xs, red);
    TRP(10)
    run_matrix(4 * l + 2, gusum);
    TRP(11)
    barrier();
    TRP(12)
    zero_sums(osum, H);''')
rep('''      __syncthreads();
    }
    run_matrix(4 * l + 3, dsum);''','''      __syncthreads();
    }
    TRP(13)
    run_matrix(4 * l + 3, dsum);
    TRP(14)''')
rep('''template <int SU, bool kBias>
void configure_one() {
  KR_CUDA_CHECK(cudaFuncSetAttribute(decode_stack_kernel<SU, kBias>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(kSmemLimit)));''','''template <int SU, bool kBias>
void configure_one() {
  KR_CUDA_CHECK(cudaFuncSetAttribute(decode_stack_kernel<SU, kBias>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(kSmemLimit) - 1024));''')
s += r'''
#include <cstdio>
#include <vector>
#include <algorithm>
namespace kr::cuda {
void dump_stack_trace() {
  static unsigned long long h[kTrLaunches][kTrLayers][132][kTrPts];
  int calls[132];
  cudaDeviceSynchronize();
  cudaMemcpyFromSymbol(h, g_tr, sizeof(h));
  cudaMemcpyFromSymbol(calls, g_tr_calls, sizeof(calls));
  const int n = calls[0];
  std::printf("stack trace: %d launches\n", n);
  if (n < 40) return;
  const char* names[kTrPts] = {"layer start", "bar d->qkv", "stage norm", "qkv units", "bar qkv->attn", "attention", "bar attn->o", "stage attn", "o units", "bar o->gu", "stage norm2", "gu units", "bar gu->d", "stage glu", "down units"};
  double md[kTrPts] = {0}, mx[kTrPts] = {0}, mn[kTrPts] = {0};
  double period = 0; int pc = 0;
  int cnt = 0;
  for (int k = n - 32; k < n; ++k) {
    const int Lk = k % kTrLaunches;
    for (int l = 1; l < kTrLayers - 1; ++l) {
      unsigned long long t0 = ~0ull, t1 = ~0ull;
      for (int c = 0; c < 132; ++c) { t0 = std::min(t0, h[Lk][l][c][0]); t1 = std::min(t1, h[Lk][l + 1][c][0]); }
      period += double(t1 - t0) / 1000.0; ++pc;
      for (int p = 0; p < kTrPts; ++p) {
        std::vector<double> v;
        for (int c = 0; c < 132; ++c) v.push_back(double(h[Lk][l][c][p] - t0) / 1000.0);
        std::sort(v.begin(), v.end());
        mn[p] += v.front(); md[p] += v[66]; mx[p] += v.back();
      }
      ++cnt;
    }
  }
  std::printf("layer period (min start to next min start) %.2f us\n", period / pc);
  for (int p = 0; p < kTrPts; ++p)
    std::printf("  %-14s min %7.2f  med %7.2f  max %7.2f us\n", names[p], mn[p] / cnt, md[p] / cnt, mx[p] / cnt);
}
}  // namespace kr::cuda
'''
open(p,'w').write(s)
p='src/bench/cuda/cuda_bench_main.cc'
s=open(p).read()
old='''  int exit_code = 0;
  std::vector<std::pair<std::string, nlohmann::json>> results;'''
assert old in s
s=s.replace(old,'''  int exit_code = 0;
  struct TrDump { ~TrDump() { kr::cuda::dump_stack_trace(); } } tr_dump;
  std::vector<std::pair<std::string, nlohmann::json>> results;''',1)
s=s.replace('int main(int argc, char** argv) {','namespace kr::cuda { void dump_stack_trace(); }\nint main(int argc, char** argv) {',1)
open(p,'w').write(s)
