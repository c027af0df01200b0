// kr-attention-check: the CUDA attention kernels against a float64 CPU
// reference, then their speed on the GPU. Needs a GPU.
//
// Checks: the flash prefill kernel, the flash decode kernel, both together on
// one mixed step, and the old paged kernel (launch_paged_attention), over
// lengths 1 … 32768, GQA ratios 1, 2, 3, 4, 7, 8, 16, head dims 64/128/256,
// chunked prefill against cached prefixes, sliding windows, logit soft-caps,
// forced key splits, and block tables with holes. Inputs are bf16 values that
// the host recomputes exactly (attention_check_fill.h); the reference computes
// each checked (token, head) row in double from them. Each output element must
// lie within 2^-7 Σ_j w_j |v_j| + 2^-8 |ref| + 1e-5 of the reference: P rounded
// to bf16 (2^-8 relative per weight, doubled for margin) plus the bf16 output
// rounding. Outputs are poisoned with NaN first, so an unwritten row fails.
// Long cases check a sample of tokens (the first and last of every sequence and
// random ones); short cases check every token.
//
// Timing (Llama-3.2-3B attention shape unless named: 24 q / 8 kv heads, D 128):
// prefill TFLOP/s at 8k / 32k / 128k (causal FLOPs = 4 Hq D Σ_t keys(t)) for the
// old and the new kernel next to the 775 TFLOP/s bf16 ceiling; four 2048-token
// chunks after a 24k prefix; decode µs per layer and GB/s of K/V at context 32k,
// batch 1 and 16; the layer GEMMs through cuBLAS and the projected whole-model
// prefill (28 layers) from them.
//
// Usage: kr-attention-check [--out FILE.json] [--quick] [--no-timing] [--old-128k]
//   --quick: short cases only (e.g. under compute-sanitizer); --old-128k: also
//   time the old kernel at 128k (several seconds per launch).
// Exit status: 0 when every check passes, 1 otherwise, 2 on a CUDA error.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cuda/cuda_flash_attention.h"
#include "backend/cuda/cuda_kernels.h"
#include "bench/attention_check_fill.h"

namespace kr {
namespace {

using json = nlohmann::json;
using bench::code_value;
using bench::fill_codes_bf16;
using bench::refill_rows_late;

void cuda_check(cudaError_t e, const char* what, int line) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "kr-attention-check: %s (line %d): %s\n", what, line, cudaGetErrorString(e));
    std::exit(2);
  }
}
#define CK(x) cuda_check((x), #x, __LINE__)

constexpr int kBlockSize = 16;
constexpr int kShiftQ = 5;   // q = code / 32 in [-4, 4)
constexpr int kShiftKV = 6;  // k, v = code / 64 in [-2, 2): scores of std ~2.6 at scale 1/sqrt(D)
constexpr uint64_t kSeedQ = 0x5151, kSeedK = 0x4b4b, kSeedV = 0x5656;
constexpr double kCeilingTflops = 775.0;  // bf16 matmul rate measured on the H200 (docs/performance.md)
constexpr double kHbmTBs = 3.9;           // usable HBM bandwidth, same source
constexpr size_t kScratchBytes = size_t{256} << 20;  // CudaBackend's split scratch
constexpr int kOldTargetBlocks = 528;                   // CudaBackend's split target

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

template <typename T>
class DevBuf {
 public:
  DevBuf() = default;
  explicit DevBuf(size_t n) { resize(n); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  DevBuf(DevBuf&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  ~DevBuf() { reset(); }
  void resize(size_t n) {
    reset();
    n_ = n;
    if (n > 0) CK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  void reset() {
    if (p_ != nullptr) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  void upload(const std::vector<T>& v) {
    if (v.size() > n_) resize(v.size());
    if (!v.empty()) CK(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  const unsigned threads = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), 64));
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
    });
  for (auto& t : pool) t.join();
}

// ---- one attention step: layout, device buffers, launches ----

struct SeqSpec {
  int prefix;  // tokens already in the cache
  int fresh;   // new tokens of this step (their K/V are in the cache too)
};

enum class Kern { kPrefill, kDecode, kMixed, kOld };

const char* kern_name(Kern k) {
  switch (k) {
    case Kern::kPrefill: return "flash_prefill";
    case Kern::kDecode: return "flash_decode";
    case Kern::kMixed: return "flash_prefill+decode";
    case Kern::kOld: return "old_paged";
  }
  return "?";
}

struct CaseSpec {
  std::string name;
  Kern kern = Kern::kPrefill;
  int hq = 0, hkv = 0, d = 128;
  std::vector<SeqSpec> seqs;
  int window = 0;
  float softcap = 0.0f;
  int splits = 0;              // 0: the split policy; n > 0: n splits forced
  bool holes = false;          // a -1 entry and an out-of-range block id inside contexts
  int decode_tile_tokens = 1;  // tokens per decode tile
  bool sequential_blocks = false;  // block ids in order (timing) instead of shuffled
  int min_width = 0;               // block-table width at least this (-1 padded), as the runner pads it
  int decode_warps = 0;            // decode kernel's block shape forced (2 or 4); 0: the split policy's
  bool late_store = false;         // the step's own keys written by a kernel still running when the
                                   // decode kernel starts (PDL): run_late_store
};

struct Layout {
  int T = 0, S = 0, width = 0, num_blocks = 0;
  std::vector<int32_t> positions, ctx, tables, token_seq, query_start;
};

Layout make_layout(const CaseSpec& c, uint64_t seed) {
  Layout L;
  L.S = static_cast<int>(c.seqs.size());
  L.query_start.push_back(0);
  int total_blocks = 0;
  for (const SeqSpec& s : c.seqs) {
    const int ctx = s.prefix + s.fresh;
    L.ctx.push_back(ctx);
    const int blocks = (ctx + kBlockSize - 1) / kBlockSize;
    L.width = std::max(L.width, blocks);
    total_blocks += blocks;
    for (int i = 0; i < s.fresh; ++i) {
      L.positions.push_back(s.prefix + i);
      L.token_seq.push_back(static_cast<int32_t>(L.query_start.size() - 1));
    }
    L.query_start.push_back(L.query_start.back() + s.fresh);
  }
  L.T = L.query_start.back();
  L.width += 2;                       // -1 padding past every context
  L.width = std::max(L.width, c.min_width);
  L.num_blocks = total_blocks + 3;    // a few blocks no sequence owns
  std::vector<int32_t> ids(L.num_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::mt19937_64 rng(seed);
  if (!c.sequential_blocks) std::shuffle(ids.begin(), ids.end(), rng);
  L.tables.assign(static_cast<size_t>(L.S) * L.width, -1);
  size_t next = 0;
  for (int s = 0; s < L.S; ++s) {
    const int blocks = (L.ctx[s] + kBlockSize - 1) / kBlockSize;
    for (int b = 0; b < blocks; ++b) L.tables[static_cast<size_t>(s) * L.width + b] = ids[next++];
    if (c.holes && blocks >= 3) {
      L.tables[static_cast<size_t>(s) * L.width + 1] = -1;                // a hole
      L.tables[static_cast<size_t>(s) * L.width + blocks - 2] = L.num_blocks + 7;  // an id past the cache
    }
  }
  return L;
}

struct SplitInfo {
  int launches = 0;
  int tiles = 0;
  int num_splits = 1;
  int split_keys = 0;
  int decode_warps = 0;  // the decode launch's block shape (0: no decode launch)
};

class Step {
 public:
  Step(const CaseSpec& c, uint64_t seed, int layers = 1) : c_(c), L_(make_layout(c, seed)) {
    width_qkv_ = static_cast<int64_t>(c.hq + 2 * c.hkv) * c.d;
    qkv_.resize(static_cast<size_t>(L_.T) * width_qkv_);
    out_.resize(static_cast<size_t>(L_.T) * c.hq * c.d);
    cache_elems_ = static_cast<size_t>(L_.num_blocks) * kBlockSize * c.hkv * c.d;
    for (int l = 0; l < layers; ++l) {
      kc_.emplace_back(cache_elems_);
      vc_.emplace_back(cache_elems_);
      fill_codes_bf16(kc_.back().get(), cache_elems_, kSeedK + 1000 * l, kShiftKV, nullptr);
      fill_codes_bf16(vc_.back().get(), cache_elems_, kSeedV + 1000 * l, kShiftKV, nullptr);
    }
    fill_codes_bf16(qkv_.get(), qkv_.size(), kSeedQ, kShiftQ, nullptr);
    positions_.upload(L_.positions);
    ctx_.upload(L_.ctx);
    tables_.upload(L_.tables);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
  }

  const Layout& layout() const { return L_; }
  const CaseSpec& spec() const { return c_; }
  int64_t width_qkv() const { return width_qkv_; }

  // Builds the launches of kernel k (tiles, splits, workspace); run() then enqueues them.
  void prepare(Kern k) {
    kern_ = k;
    launches_.clear();
    const int group = c_.hq / c_.hkv;
    std::vector<cuda::AttnTile> prefill_tiles, decode_tiles;
    for (int s = 0; s < L_.S; ++s) {
      const int b = L_.query_start[s], e = L_.query_start[s + 1];
      const bool to_decode = k == Kern::kDecode || (k == Kern::kMixed && e - b == 1);
      int per = 0;
      if (k == Kern::kOld) per = cuda::attn_tile_tokens(group);
      else if (to_decode) per = std::min(c_.decode_tile_tokens, cuda::flash_decode_tile_tokens(group));
      else per = cuda::flash_prefill_tile_tokens(group, c_.d);
      if (per <= 0) {
        std::fprintf(stderr, "kr-attention-check: %s: no tile size for group %d\n", c_.name.c_str(), group);
        std::exit(2);
      }
      for (int t = b; t < e; t += per) (to_decode ? decode_tiles : prefill_tiles).push_back({s, t, std::min(per, e - t)});
    }
    const int max_ctx = *std::max_element(L_.ctx.begin(), L_.ctx.end());
    auto add = [&](bool decode, std::vector<cuda::AttnTile> tiles) {
      if (tiles.empty()) return;
      Launch la;
      la.decode = decode;
      la.tiles = static_cast<int>(tiles.size());
      la.tiles_dev.upload(tiles);
      const int rows_cap = decode ? cuda::kFlashDecodeRows : cuda::flash_prefill_rows(c_.d);
      // Decode splits follow the shapes only (table width), as a recorded graph needs.
      const int max_keys = decode ? L_.width * kBlockSize : max_ctx;
      // The workspace a backend would have: CudaBackend's 256 MB split scratch.
      cuda::FlashSplit sp =
          decode ? cuda::flash_decode_split(la.tiles, c_.hkv, c_.d, max_keys, kScratchBytes, false, c_.decode_warps)
                 : cuda::flash_prefill_split(la.tiles, c_.hkv, c_.d, max_keys, kScratchBytes);
      if (c_.splits > 0) {
        const int g = cuda::flash_split_granule();
        sp.split_keys = ((max_keys + c_.splits - 1) / c_.splits + g - 1) / g * g;
        sp.num_splits = (max_keys + sp.split_keys - 1) / sp.split_keys;
      }
      la.split = sp;
      const size_t ws = cuda::flash_workspace_bytes(la.tiles, c_.hkv, rows_cap, sp.num_splits, c_.d);
      la.partial_floats = static_cast<size_t>(la.tiles) * c_.hkv * rows_cap * sp.num_splits * c_.d;
      la.ws.resize(ws / sizeof(float));
      launches_.push_back(std::move(la));
    };
    if (k == Kern::kOld) {
      prepare_old(prefill_tiles);
      return;
    }
    add(false, std::move(prefill_tiles));
    add(true, std::move(decode_tiles));
  }

  // Enqueues the prepared launches on layer `layer`'s cache; false when a launcher refused.
  // The decode launch as the backend makes it after its q/k/v kernel: the rows of
  // the step's own keys poisoned (NaN), a kernel that rewrites them after ~20 us
  // (refill_rows_late), and the attention launched behind it with PDL, so that
  // whatever it reads of those rows before its griddepcontrol.wait is NaN.
  bool run_late_store(cudaStream_t stream) {
    std::vector<int64_t> rows;
    const int64_t row_elems = static_cast<int64_t>(c_.hkv) * c_.d;
    for (int t = 0; t < L_.T; ++t) {
      const int s = L_.token_seq[t], pos = L_.positions[t];
      const int32_t blk = L_.tables[static_cast<size_t>(s) * L_.width + pos / kBlockSize];
      if (blk < 0 || blk >= L_.num_blocks) continue;
      rows.push_back((static_cast<int64_t>(blk) * kBlockSize + pos % kBlockSize) * row_elems);
    }
    DevBuf<int64_t> rows_dev;
    rows_dev.upload(rows);
    for (int64_t r : rows) {
      CK(cudaMemsetAsync(kc_[0].get() + r, 0xff, row_elems * sizeof(uint16_t), stream));
      CK(cudaMemsetAsync(vc_[0].get() + r, 0xff, row_elems * sizeof(uint16_t), stream));
    }
    refill_rows_late(kc_[0].get(), kSeedK, vc_[0].get(), kSeedV, kShiftKV, rows_dev.get(), static_cast<int>(rows.size()),
                     static_cast<int>(row_elems), 40000, stream);
    const bool ok = run(0, stream, /*pdl=*/true);
    CK(cudaStreamSynchronize(stream));
    return ok;
  }

  bool run(int layer, cudaStream_t stream, bool pdl = false) {
    if (kern_ == Kern::kOld) {
      old_.k_cache = kc_[layer].get();
      old_.v_cache = vc_[layer].get();
      cuda::launch_paged_attention(old_, stream);
      return true;
    }
    for (Launch& la : launches_) {
      cuda::FlashAttnArgs a;
      a.qkv = qkv_.get();
      a.k_cache = kc_[layer].get();
      a.v_cache = vc_[layer].get();
      a.out = out_.get();
      a.positions = positions_.get();
      a.context_lens = ctx_.get();
      a.block_tables = tables_.get();
      a.tiles = la.tiles_dev.get();
      a.num_tiles = la.tiles;
      a.max_blocks = L_.width;
      a.num_blocks = L_.num_blocks;
      a.block_size = kBlockSize;
      a.q_heads = c_.hq;
      a.kv_heads = c_.hkv;
      a.head_dim = c_.d;
      a.scale = 1.0f / std::sqrt(static_cast<float>(c_.d));
      a.window = c_.window;
      a.softcap = c_.softcap;
      a.num_splits = la.split.num_splits;
      a.split_keys = la.split.split_keys;
      a.decode_warps = la.split.decode_warps;
      a.pdl = pdl && la.decode;
      if (a.num_splits > 1) {
        a.partial_out = la.ws.get();
        a.partial_ml = la.ws.get() + la.partial_floats;
      }
      const bool ok = la.decode ? cuda::launch_flash_decode(a, stream) : cuda::launch_flash_prefill(a, stream);
      if (!ok) return false;
    }
    return true;
  }

  SplitInfo split_info() const {
    SplitInfo s;
    if (kern_ == Kern::kOld) {
      s.launches = 1;
      s.tiles = old_.num_tiles;
      s.num_splits = old_.num_splits;
      s.split_keys = old_.split_keys;
      return s;
    }
    s.launches = static_cast<int>(launches_.size());
    for (const Launch& la : launches_) {
      s.tiles += la.tiles;
      if (la.decode) s.decode_warps = la.split.decode_warps;
      if (la.split.num_splits >= s.num_splits) {
        s.num_splits = la.split.num_splits;
        s.split_keys = la.split.split_keys;
      }
    }
    return s;
  }

  void poison_out() { CK(cudaMemset(out_.get(), 0xff, out_.size() * sizeof(uint16_t))); }  // bf16 NaN
  std::vector<uint16_t> download_out() const {
    std::vector<uint16_t> h(out_.size());
    CK(cudaMemcpy(h.data(), out_.get(), h.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost));
    return h;
  }
  size_t cache_elems() const { return cache_elems_; }

 private:
  struct Launch {
    bool decode = false;
    int tiles = 0;
    DevBuf<cuda::AttnTile> tiles_dev;
    cuda::FlashSplit split;
    size_t partial_floats = 0;
    DevBuf<float> ws;
  };

  // The old kernel with CudaBackend::attention's tiles and split policy (at this commit).
  void prepare_old(const std::vector<cuda::AttnTile>& tiles) {
    const int group = c_.hq / c_.hkv;
    old_tiles_.upload(tiles);
    bool decode_only = true;
    for (int s = 0; s < L_.S; ++s) decode_only &= L_.query_start[s + 1] - L_.query_start[s] <= 1;
    cuda::AttnArgs& a = old_;
    a = cuda::AttnArgs{};
    a.qkv = qkv_.get();
    a.out = out_.get();
    a.positions = positions_.get();
    a.context_lens = ctx_.get();
    a.block_tables = tables_.get();
    a.tiles = old_tiles_.get();
    a.num_tiles = static_cast<int>(tiles.size());
    a.decode_only = decode_only;
    a.max_blocks = L_.width;
    a.block_size = kBlockSize;
    a.q_heads = c_.hq;
    a.kv_heads = c_.hkv;
    a.head_dim = c_.d;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c_.d));
    const int kv_keys = L_.width * kBlockSize;
    const int rows = cuda::attn_tile_tokens(group) * group;
    a.num_splits = 1;
    a.split_keys = kv_keys;
    if (decode_only && a.num_tiles > 0) {
      int splits = (kOldTargetBlocks + a.num_tiles * c_.hkv - 1) / (a.num_tiles * c_.hkv);
      splits = std::max(1, std::min({splits, (kv_keys + 31) / 32, cuda::attn_max_splits()}));
      a.split_keys = ((kv_keys + splits - 1) / splits + 31) / 32 * 32;
      a.num_splits = (kv_keys + a.split_keys - 1) / a.split_keys;
      if (static_cast<size_t>(a.num_tiles) * c_.hkv * rows * a.num_splits * (c_.d + 2) * sizeof(float) >
          kScratchBytes) {
        a.num_splits = 1;
        a.split_keys = kv_keys;
      }
    }
    const size_t partial_rows = static_cast<size_t>(a.num_tiles) * c_.hkv * rows * a.num_splits;
    old_ws_.resize(a.num_splits > 1 ? partial_rows * (c_.d + 2) : 1);
    a.partial_out = old_ws_.get();
    a.partial_ml = old_ws_.get() + partial_rows * c_.d;
  }

  CaseSpec c_;
  Layout L_;
  int64_t width_qkv_ = 0;
  size_t cache_elems_ = 0;
  DevBuf<uint16_t> qkv_, out_;
  std::vector<DevBuf<uint16_t>> kc_, vc_;
  DevBuf<int32_t> positions_, ctx_, tables_;
  Kern kern_ = Kern::kPrefill;
  std::vector<Launch> launches_;
  cuda::AttnArgs old_{};
  DevBuf<cuda::AttnTile> old_tiles_;
  DevBuf<float> old_ws_;
};

// ---- the reference ----

struct RowError {
  double max_abs = 0.0;  // max |gpu - ref|
  double max_ratio = 0.0;  // max |gpu - ref| / tol
  int64_t bad = 0;         // elements over tol (NaN included)
};

// Keys attended by token t (for the FLOP count and the reference cost).
int64_t keys_attended(const Layout& L, int t, int window) {
  const int s = L.token_seq[t];
  const int p = std::min(L.positions[t], L.ctx[s] - 1);
  if (p < 0) return 0;
  const int lo = window > 0 ? std::max(0, p - window + 1) : 0;
  return p - lo + 1;
}

// Tokens to check: all when the reference cost fits the budget, else the first
// and last 4 of every sequence plus random ones up to the budget.
std::vector<int> tokens_to_check(const Layout& L, const CaseSpec& c, double budget_macs, uint64_t seed) {
  auto cost = [&](int t) { return static_cast<double>(keys_attended(L, t, c.window)) * c.hq * c.d * 2.0; };
  double total = 0.0;
  for (int t = 0; t < L.T; ++t) total += cost(t);
  std::vector<int> toks;
  if (total <= budget_macs) {
    toks.resize(L.T);
    std::iota(toks.begin(), toks.end(), 0);
    return toks;
  }
  std::vector<char> picked(L.T, 0);
  double used = 0.0;
  for (int s = 0; s < L.S; ++s)
    for (int i = 0; i < 4; ++i)
      for (int t : {L.query_start[s] + i, L.query_start[s + 1] - 1 - i})
        if (t >= L.query_start[s] && t < L.query_start[s + 1] && !picked[t]) {
          picked[t] = 1;
          used += cost(t);
        }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, L.T - 1);
  for (int tries = 0; used < budget_macs && tries < 4 * L.T; ++tries) {
    const int t = pick(rng);
    if (picked[t]) continue;
    picked[t] = 1;
    used += cost(t);
  }
  for (int t = 0; t < L.T; ++t)
    if (picked[t]) toks.push_back(t);
  return toks;
}

// Float copies of one layer's cache (layer 0), [slots, Hkv, D].
struct HostCache {
  std::vector<float> k, v;
};

HostCache host_cache(size_t elems) {
  HostCache h;
  h.k.resize(elems);
  h.v.resize(elems);
  constexpr size_t kChunk = size_t{1} << 20;
  parallel_for((elems + kChunk - 1) / kChunk, [&](size_t b) {
    const size_t e = std::min(elems, (b + 1) * kChunk);
    for (size_t i = b * kChunk; i < e; ++i) {
      h.k[i] = code_value(kSeedK, i, kShiftKV);
      h.v[i] = code_value(kSeedV, i, kShiftKV);
    }
  });
  return h;
}

// Compares the checked rows of `out` with the double reference.
RowError check_rows(const CaseSpec& c, const Layout& L, int64_t width_qkv, const HostCache& hc,
                    const std::vector<uint16_t>& out, const std::vector<int>& toks) {
  const int D = c.d, group = c.hq / c.hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  std::vector<RowError> errs(toks.size() * c.hq);
  parallel_for(errs.size(), [&](size_t item) {
    const int t = toks[item / c.hq], h = static_cast<int>(item % c.hq), g = h / group;
    const int s = L.token_seq[t];
    const int p = std::min(L.positions[t], L.ctx[s] - 1);
    const int lo = c.window > 0 ? std::max(0, p - c.window + 1) : 0;
    std::vector<double> q(D), acc(D, 0.0), absacc(D, 0.0), score;
    std::vector<const float*> vrows;
    for (int d = 0; d < D; ++d) q[d] = code_value(kSeedQ, static_cast<uint64_t>(t) * width_qkv + h * D + d, kShiftQ);
    score.reserve(p - lo + 1);
    vrows.reserve(p - lo + 1);
    double mx = -INFINITY;
    for (int j = lo; j <= p; ++j) {
      const int32_t blk = L.tables[static_cast<size_t>(s) * L.width + j / kBlockSize];
      if (blk < 0 || blk >= L.num_blocks) continue;  // no key there
      const size_t row = (static_cast<size_t>(blk) * kBlockSize + j % kBlockSize) * c.hkv + g;
      const float* kr = hc.k.data() + row * D;
      double d4[4] = {0.0, 0.0, 0.0, 0.0};  // independent chains (D is a multiple of 4)
      for (int d = 0; d < D; d += 4)
        for (int i = 0; i < 4; ++i) d4[i] += q[d + i] * kr[d + i];
      double sc = ((d4[0] + d4[1]) + (d4[2] + d4[3])) * scale;
      if (c.softcap > 0.0f) sc = c.softcap * std::tanh(sc / c.softcap);
      score.push_back(sc);
      vrows.push_back(hc.v.data() + row * D);
      mx = std::max(mx, sc);
    }
    double sum = 0.0;
    for (size_t i = 0; i < score.size(); ++i) {
      const double w = std::exp(score[i] - mx);
      sum += w;
      const float* vr = vrows[i];
      for (int d = 0; d < D; ++d) {
        acc[d] += w * vr[d];
        absacc[d] += w * std::fabs(vr[d]);
      }
    }
    RowError e;
    const uint16_t* o = out.data() + (static_cast<size_t>(t) * c.hq + h) * D;
    for (int d = 0; d < D; ++d) {
      const double ref = sum > 0.0 ? acc[d] / sum : 0.0;
      const double absw = sum > 0.0 ? absacc[d] / sum : 0.0;
      const double tol = std::ldexp(absw, -7) + std::ldexp(std::fabs(ref), -8) + 1e-5;
      const double got = bf16_bits_to_float(o[d]);
      const double err = std::fabs(got - ref);
      if (!(err <= tol)) ++e.bad;  // NaN too
      if (std::isnan(got)) {
        e.max_abs = INFINITY;
        e.max_ratio = INFINITY;
      } else {
        e.max_abs = std::max(e.max_abs, err);
        e.max_ratio = std::max(e.max_ratio, err / tol);
      }
    }
    errs[item] = e;
  });
  RowError total;
  for (const RowError& e : errs) {
    total.max_abs = std::max(total.max_abs, e.max_abs);
    total.max_ratio = std::max(total.max_ratio, e.max_ratio);
    total.bad += e.bad;
  }
  return total;
}

// ---- the cases ----

std::vector<CaseSpec> correctness_cases(bool quick) {
  std::vector<CaseSpec> cs;
  struct Gqa {
    int hq, hkv;
  };
  // GQA ratios 1, 2, 3 (Llama-3.2-3B: 24/8), 4, 7 (Qwen2.5-7B: 28/4), 8.
  const Gqa gqas[] = {{8, 8}, {8, 4}, {24, 8}, {16, 4}, {28, 4}, {32, 4}};
  const int lens[] = {1, 7, 16, 100, 512, 2048, 8192, 32768};
  auto name = [](const char* what, int hq, int hkv, int d, const std::string& rest) {
    return std::string(what) + " " + std::to_string(hq) + "/" + std::to_string(hkv) + " D" + std::to_string(d) + " " + rest;
  };
  for (const Gqa& g : gqas)
    for (int len : lens) {
      if (quick && len > 512) continue;
      CaseSpec c;
      c.hq = g.hq;
      c.hkv = g.hkv;
      c.seqs = {{0, len}};
      c.name = name("prefill", g.hq, g.hkv, 128, "len " + std::to_string(len));
      c.kern = Kern::kPrefill;
      cs.push_back(c);
      if ((g.hq == 24 || g.hq == 28) && len <= 8192) {
        c.kern = Kern::kOld;
        cs.push_back(c);
      }
      // Decode: one new token at context len.
      c.seqs = {{len - 1, 1}};
      c.name = name("decode b1", g.hq, g.hkv, 128, "ctx " + std::to_string(len));
      c.kern = Kern::kDecode;
      cs.push_back(c);
      if (g.hq == 24) {
        c.kern = Kern::kOld;
        cs.push_back(c);
      }
    }
  // Chunked prefill against cached prefixes: the queries are the new chunk.
  {
    std::vector<std::pair<int, int>> chunks = {{100, 37}, {15, 1}, {4090, 130}, {1000, 2048}};
    if (!quick)
      for (int i = 0; i < 4; ++i) chunks.push_back({24576 + 2048 * i, 2048});
    for (const Gqa& g : {Gqa{24, 8}, Gqa{28, 4}})
      for (auto [prefix, chunk] : chunks) {
        if (g.hq == 28 && prefix > 24576) continue;
        CaseSpec c;
        c.hq = g.hq;
        c.hkv = g.hkv;
        c.seqs = {{prefix, chunk}};
        c.name = name("chunk", g.hq, g.hkv, 128, std::to_string(chunk) + " after " + std::to_string(prefix));
        c.kern = Kern::kPrefill;
        cs.push_back(c);
        if (g.hq == 24 && prefix < 24576) {
          c.kern = Kern::kOld;
          cs.push_back(c);
        }
      }
  }
  // Batches of several sequences: prefill kernel alone, and prefill + decode on one step.
  {
    const std::vector<SeqSpec> mixed = {{0, 1}, {0, 7}, {0, 100}, {30, 17}, {500, 1}, {0, 513}, {1000, 64}, {77, 1}, {3000, 1}};
    for (Kern k : {Kern::kPrefill, Kern::kMixed, Kern::kOld}) {
      CaseSpec c;
      c.hq = 24;
      c.hkv = 8;
      c.seqs = mixed;
      c.kern = k;
      c.name = name("batch of 9", 24, 8, 128, "mixed lengths");
      cs.push_back(c);
    }
    std::vector<SeqSpec> b16;
    std::mt19937 rng(16);
    for (int i = 0; i < 16; ++i) b16.push_back({std::uniform_int_distribution<int>(0, quick ? 600 : 9000)(rng), 1});
    for (Kern k : {Kern::kDecode, Kern::kOld}) {
      CaseSpec c;
      c.hq = 24;
      c.hkv = 8;
      c.seqs = b16;
      c.kern = k;
      c.name = name("decode b16", 24, 8, 128, "random contexts");
      cs.push_back(c);
    }
    CaseSpec c;  // decode tiles of several tokens (e.g. speculative verification): 5 tokens × group 3
    c.hq = 24;
    c.hkv = 8;
    c.seqs = {{700, 5}, {33, 3}, {2000, 2}};
    c.kern = Kern::kDecode;
    c.decode_tile_tokens = 5;
    c.name = name("decode tiles of 5 tokens", 24, 8, 128, "3 sequences");
    cs.push_back(c);
    c.seqs = {{3, 16}};
    c.hq = 16;
    c.hkv = 16;
    c.decode_tile_tokens = 16;
    c.name = name("decode tiles of 16 tokens", 16, 16, 128, "1 sequence");
    cs.push_back(c);
  }
  // Sliding windows (the query's own position included) and soft-caps.
  {
    struct W {
      int hq, hkv, d;
      std::vector<SeqSpec> seqs;
      int window;
      float cap;
      Kern k;
      const char* what;
    };
    std::vector<W> ws = {
        {24, 8, 128, {{0, 512}}, 100, 0.0f, Kern::kPrefill, "window 100"},
        {24, 8, 128, {{0, 100}}, 1, 0.0f, Kern::kPrefill, "window 1"},
        {24, 8, 128, {{0, 300}}, 64, 0.0f, Kern::kPrefill, "window 64"},
        {24, 8, 128, {{0, 8192}}, 4096, 0.0f, Kern::kPrefill, "window 4096"},
        {24, 8, 128, {{8192, 512}}, 4096, 0.0f, Kern::kPrefill, "window 4096, chunk after 8192"},
        {24, 8, 128, {{8191, 1}, {5000, 1}, {100, 1}, {4095, 1}}, 4096, 0.0f, Kern::kDecode, "window 4096 decode b4"},
        {8, 4, 256, {{0, 2048}}, 1024, 0.0f, Kern::kPrefill, "window 1024 (Gemma 3)"},
        {16, 8, 256, {{0, 2048}}, 0, 50.0f, Kern::kPrefill, "softcap 50 (Gemma 2)"},
        {16, 8, 256, {{0, 5000}}, 4096, 50.0f, Kern::kPrefill, "window 4096 + softcap 50"},
        {16, 8, 256, {{4999, 1}, {700, 1}}, 4096, 50.0f, Kern::kDecode, "window 4096 + softcap 50 decode"},
        {24, 8, 128, {{0, 1000}}, 0, 30.0f, Kern::kPrefill, "softcap 30"},
        {24, 8, 128, {{999, 1}}, 0, 30.0f, Kern::kDecode, "softcap 30 decode"},
    };
    for (const W& w : ws) {
      if (quick && w.seqs[0].prefix + w.seqs[0].fresh > 2048) continue;
      CaseSpec c;
      c.hq = w.hq;
      c.hkv = w.hkv;
      c.d = w.d;
      c.seqs = w.seqs;
      c.window = w.window;
      c.softcap = w.cap;
      c.kern = w.k;
      c.name = name(w.k == Kern::kDecode ? "decode" : "prefill", w.hq, w.hkv, w.d, w.what);
      cs.push_back(c);
    }
  }
  // Head dims 64 and 256, GQA 16 (decode rows full).
  {
    struct H {
      int hq, hkv, d;
    };
    for (const H& h : {H{8, 8, 64}, H{16, 2, 64}, H{8, 4, 256}, H{32, 16, 256}, H{32, 2, 128}})
      for (int len : {7, 100, 2048}) {
        CaseSpec c;
        c.hq = h.hq;
        c.hkv = h.hkv;
        c.d = h.d;
        c.seqs = {{0, len}};
        c.kern = Kern::kPrefill;
        c.name = name("prefill", h.hq, h.hkv, h.d, "len " + std::to_string(len));
        cs.push_back(c);
        c.seqs = {{len - 1, 1}, {len / 2, 1}};
        c.kern = Kern::kDecode;
        c.name = name("decode b2", h.hq, h.hkv, h.d, "ctx " + std::to_string(len));
        cs.push_back(c);
        if (h.d == 64 && len == 100) {
          c.kern = Kern::kOld;
          cs.push_back(c);
        }
      }
  }
  // Forced key splits (the in-kernel merge with many and with uneven splits).
  {
    struct F {
      Kern k;
      std::vector<SeqSpec> seqs;
      int splits;
      int window;
    };
    for (const F& f : {F{Kern::kPrefill, {{0, 512}}, 3, 0}, F{Kern::kPrefill, {{1000, 300}, {0, 50}}, 7, 0},
                       F{Kern::kPrefill, {{0, 2048}}, 2, 700}, F{Kern::kDecode, {{4999, 1}, {10, 1}}, 1, 0},
                       F{Kern::kDecode, {{4999, 1}, {10, 1}}, 79, 0}, F{Kern::kDecode, {{16383, 1}}, 256, 0},
                       F{Kern::kDecode, {{6000, 1}}, 5, 1000}}) {
      CaseSpec c;
      c.hq = 24;
      c.hkv = 8;
      c.seqs = f.seqs;
      c.kern = f.k;
      c.splits = f.splits;
      c.window = f.window;
      c.name = name(f.k == Kern::kDecode ? "decode" : "prefill", 24, 8, 128,
                    std::to_string(f.splits) + " splits forced" + (f.window ? ", window " + std::to_string(f.window) : ""));
      cs.push_back(c);
    }
  }
  // Decode steps whose table width (the runner's padded width: the shape a step
  // graph's split count comes from) far exceeds the contexts: the policy's splits
  // cut each tile's own keys evenly, so none is empty and the merge sees them all.
  {
    struct P {
      std::vector<SeqSpec> seqs;
      int width;
      int window;
    };
    for (const P& p : {P{{{16384, 1}}, 2048, 0}, P{{{20000, 1}, {70, 1}, {4999, 1}}, 2048, 0},
                       P{{{9000, 1}}, 4096, 4096}, P{{{32768, 1}}, 4096, 0}}) {
      if (quick && p.seqs[0].prefix > 10000) continue;
      CaseSpec c;
      c.hq = 24;
      c.hkv = 8;
      c.seqs = p.seqs;
      c.window = p.window;
      c.min_width = p.width;
      c.kern = Kern::kDecode;
      c.name = name("decode", 24, 8, 128, "b" + std::to_string(p.seqs.size()) + " ctx " +
                                              std::to_string(p.seqs[0].prefix + 1) + " width " +
                                              std::to_string(p.width) + (p.window ? " window" : ""));
      cs.push_back(c);
    }
  }
  // Block tables with a -1 hole and an id past the cache inside the context:
  // those keys do not exist (the reference skips them); nothing is read out of bounds.
  for (Kern k : {Kern::kPrefill, Kern::kDecode, Kern::kMixed}) {
    CaseSpec c;
    c.hq = 24;
    c.hkv = 8;
    c.seqs = k == Kern::kDecode ? std::vector<SeqSpec>{{300, 1}, {49, 1}} : std::vector<SeqSpec>{{0, 300}, {49, 1}, {20, 40}};
    c.holes = true;
    c.kern = k;
    c.name = name(k == Kern::kDecode ? "decode" : "prefill", 24, 8, 128, "block table holes");
    cs.push_back(c);
  }
  // Decode behind a kernel that stores the step's own keys late (PDL): the kernel
  // must read them only after its wait. Contexts whose own key falls in the
  // stages loaded before the wait (the first 2 of 32 or 64 keys), and beyond them.
  {
    struct L {
      std::vector<SeqSpec> seqs;
      int window;
      const char* what;
    };
    std::vector<SeqSpec> mixed;
    for (int ctx : {1, 10, 40, 63, 64, 65, 100, 127, 128, 129, 200, 700}) mixed.push_back({ctx - 1, 1});
    for (const L& l : {L{std::vector<SeqSpec>(64, SeqSpec{29, 1}), 0, "b64 ctx 30"}, L{mixed, 0, "b12 ctx 1..700"},
                       L{{{3999, 1}}, 0, "b1 ctx 4000 (splits)"}, L{mixed, 48, "b12 ctx 1..700 window 48"}}) {
      CaseSpec c;
      c.hq = 24;
      c.hkv = 8;
      c.seqs = l.seqs;
      c.window = l.window;
      c.kern = Kern::kDecode;
      c.late_store = true;
      c.name = name("decode", 24, 8, 128, std::string(l.what) + ", own keys stored late (PDL)");
      cs.push_back(c);
    }
  }
  // Every case with decode tiles on both block shapes of the decode kernel (4 and 2
  // warps, FlashAttnArgs::decode_warps), whichever the policy would pick.
  const size_t n = cs.size();
  for (size_t i = 0; i < n; ++i) {
    if (cs[i].kern != Kern::kDecode && cs[i].kern != Kern::kMixed) continue;
    CaseSpec two = cs[i];
    cs[i].decode_warps = 4;
    cs[i].name += " [4 warps]";
    two.decode_warps = 2;
    two.name += " [2 warps]";
    cs.push_back(two);
  }
  return cs;
}

json run_check(const CaseSpec& c, int index, bool* pass) {
  const double t0 = now_s();
  Step st(c, 1000 + index);
  st.prepare(c.kern);
  st.poison_out();
  bool launched = false;
  if (c.late_store) {
    cudaStream_t stream = nullptr;
    CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    launched = st.run_late_store(stream);
    CK(cudaStreamDestroy(stream));
  } else {
    launched = st.run(0, nullptr);
  }
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  json j;
  j["name"] = c.name;
  j["kernel"] = kern_name(c.kern);
  j["q_heads"] = c.hq;
  j["kv_heads"] = c.hkv;
  j["head_dim"] = c.d;
  json seqs = json::array();
  for (const SeqSpec& s : c.seqs) seqs.push_back({s.prefix, s.fresh});
  j["seqs_prefix_fresh"] = seqs;
  if (c.window > 0) j["window"] = c.window;
  if (c.softcap > 0) j["softcap"] = c.softcap;
  const SplitInfo si = st.split_info();
  j["tiles"] = si.tiles;
  j["num_splits"] = si.num_splits;
  j["split_keys"] = si.split_keys;
  if (!launched) {
    j["pass"] = false;
    j["error"] = "launcher refused the arguments";
    *pass = false;
    return j;
  }
  const std::vector<uint16_t> out = st.download_out();
  const HostCache hc = host_cache(st.cache_elems());
  const std::vector<int> toks = tokens_to_check(st.layout(), c, 2e9, 77 + index);
  const RowError e = check_rows(c, st.layout(), st.width_qkv(), hc, out, toks);
  *pass = e.bad == 0;
  j["tokens"] = st.layout().T;
  j["tokens_checked"] = toks.size();
  j["max_abs_err"] = std::isfinite(e.max_abs) ? json(e.max_abs) : json("nan");
  j["max_err_over_tol"] = std::isfinite(e.max_ratio) ? json(e.max_ratio) : json("nan");
  j["elements_over_tol"] = e.bad;
  j["pass"] = *pass;
  j["seconds"] = now_s() - t0;
  return j;
}

// ---- timing ----

double time_launches(const std::function<void(int)>& launch, int launches, int warmup) {
  for (int i = 0; i < warmup; ++i) launch(i);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a));
  for (int i = 0; i < launches; ++i) launch(i);
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  CK(cudaGetLastError());
  float ms = 0.0f;
  CK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / launches;  // ms per launch
}

double attention_flops(const Layout& L, int hq, int d, int window) {
  double keys = 0.0;
  for (int t = 0; t < L.T; ++t) keys += static_cast<double>(keys_attended(L, t, window));
  return 4.0 * hq * d * keys;
}

json time_prefill(const char* what, int hq, int hkv, int d, std::vector<SeqSpec> seqs, int window, Kern k, int reps) {
  CaseSpec c;
  c.hq = hq;
  c.hkv = hkv;
  c.d = d;
  c.seqs = std::move(seqs);
  c.window = window;
  c.kern = k;
  c.sequential_blocks = true;
  Step st(c, 5);
  st.prepare(k);
  bool ok = true;
  const double ms = time_launches([&](int) { ok &= st.run(0, nullptr); }, reps, 1);
  if (!ok) {
    std::fprintf(stderr, "kr-attention-check: %s: the launcher refused the arguments\n", what);
    std::exit(2);
  }
  const double flops = attention_flops(st.layout(), hq, d, window);
  const double tflops = flops / (ms * 1e-3) / 1e12;
  json j;
  j["case"] = what;
  j["kernel"] = kern_name(k);
  j["q_heads"] = hq;
  j["kv_heads"] = hkv;
  j["head_dim"] = d;
  j["tokens"] = st.layout().T;
  j["context"] = *std::max_element(st.layout().ctx.begin(), st.layout().ctx.end());
  if (window > 0) j["window"] = window;
  j["ms"] = ms;
  j["gflop"] = flops / 1e9;
  j["tflops"] = tflops;
  j["fraction_of_775"] = tflops / kCeilingTflops;
  j["num_splits"] = st.split_info().num_splits;
  std::printf("  %-34s %-22s %9.3f ms  %7.1f TFLOP/s  (%4.1f%% of %.0f)\n", what, kern_name(k), ms, tflops,
              100.0 * tflops / kCeilingTflops, kCeilingTflops);
  std::fflush(stdout);
  return j;
}

json time_decode(int batch, int ctx, int layers, Kern k, int rounds, int warps = 0) {
  CaseSpec c;
  c.hq = 24;
  c.hkv = 8;
  c.d = 128;
  c.seqs.assign(batch, SeqSpec{ctx - 1, 1});
  c.kern = k;
  c.sequential_blocks = true;
  c.decode_warps = warps;
  Step st(c, 6, layers);
  st.prepare(k);
  bool ok = true;
  const double ms = time_launches([&](int i) { ok &= st.run(i % layers, nullptr); }, rounds * layers, layers);
  if (!ok) {
    std::fprintf(stderr, "kr-attention-check: decode b%d: the launcher refused the arguments\n", batch);
    std::exit(2);
  }
  const double bytes = static_cast<double>(batch) * ctx * c.hkv * c.d * 2.0 * 2.0;  // K and V
  json j;
  j["kernel"] = kern_name(k);
  j["batch"] = batch;
  j["context"] = ctx;
  j["layers_cycled"] = layers;
  j["us_per_layer"] = ms * 1e3;
  j["kv_bytes_per_layer"] = bytes;
  j["gb_per_s"] = bytes / (ms * 1e-3) / 1e9;
  j["fraction_of_3900_gb_s"] = bytes / (ms * 1e-3) / (kHbmTBs * 1e12);
  const SplitInfo si = st.split_info();
  j["num_splits"] = si.num_splits;
  j["split_keys"] = si.split_keys;
  j["blocks"] = static_cast<int64_t>(si.tiles) * c.hkv * si.num_splits;
  j["decode_warps_forced"] = warps;
  j["decode_warps"] = si.decode_warps;
  const std::string shape = si.decode_warps > 0 ? ", " + std::to_string(si.decode_warps) + " warps" +
                                                        (warps > 0 ? " (forced)" : "")
                                                  : "";  // the old kernel has one shape
  std::printf("  decode b%-3d ctx %-6d %-22s %8.1f us/layer  %7.0f GB/s (%4.1f%% of %.1f TB/s)  splits %d%s\n", batch,
              ctx, kern_name(k), ms * 1e3, bytes / (ms * 1e-3) / 1e9, 100.0 * bytes / (ms * 1e-3) / (kHbmTBs * 1e12),
              kHbmTBs, si.num_splits, shape.c_str());
  std::fflush(stdout);
  return j;
}

// The Llama-3.2-3B layer GEMMs at T tokens through cuBLAS (as CudaBackend::matmul calls it).
json time_gemms(int T) {
  struct G {
    const char* name;
    int n, k;
  };
  const G gs[] = {{"qkv", 5120, 3072}, {"o_proj", 3072, 3072}, {"gate_up", 16384, 3072}, {"down", 3072, 8192}};
  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return json{{"error", "cublasCreate failed"}};
  DevBuf<uint16_t> x(static_cast<size_t>(T) * 8192), w(static_cast<size_t>(16384) * 8192), y(static_cast<size_t>(T) * 16384);
  fill_codes_bf16(x.get(), x.size(), 1, 8, nullptr);
  fill_codes_bf16(w.get(), w.size(), 2, 8, nullptr);
  json j;
  double total_ms = 0.0, total_flops = 0.0;
  for (const G& g : gs) {
    const float alpha = 1.0f, beta = 0.0f;
    bool ok = true;
    const double ms = time_launches(
        [&](int) {
          ok &= cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, g.n, T, g.k, &alpha, w.get(), CUDA_R_16BF, g.k, x.get(),
                             CUDA_R_16BF, g.k, &beta, y.get(), CUDA_R_16BF, g.n, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
        },
        5, 2);
    const double flops = 2.0 * T * g.n * g.k;
    j[g.name] = {{"ms", ms}, {"tflops", flops / (ms * 1e-3) / 1e12}, {"ok", ok}};
    total_ms += ms;
    total_flops += flops;
  }
  cublasDestroy(h);
  j["tokens"] = T;
  j["total_ms"] = total_ms;
  j["total_tflops"] = total_flops / (total_ms * 1e-3) / 1e12;
  std::printf("  layer GEMMs at T=%d (qkv, o, gate_up, down): %.3f ms, %.1f TFLOP/s (%.1f%% of %.0f)\n", T, total_ms,
              total_flops / (total_ms * 1e-3) / 1e12, 100.0 * total_flops / (total_ms * 1e-3) / 1e12 / kCeilingTflops,
              kCeilingTflops);
  return j;
}

int main_impl(int argc, char** argv) {
  std::string out_path;
  bool quick = false, timing = true, old_128k = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--quick") quick = true;
    else if (a == "--no-timing") timing = false;
    else if (a == "--old-128k") old_128k = true;
    else {
      std::fprintf(stderr, "usage: kr-attention-check [--out FILE.json] [--quick] [--no-timing] [--old-128k]\n");
      return 2;
    }
  }
  const double t_start = now_s();
  int dev = 0;
  CK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, dev));
  int runtime = 0;
  CK(cudaRuntimeGetVersion(&runtime));
  cuda::configure_attention_kernels();  // the old kernel's shared-memory limit, as CudaBackend sets it
  std::printf("kr-attention-check on %s (%d SMs, %.0f MB L2), CUDA runtime %d\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize / 1048576.0, runtime);
  json report;
  report["program"] = "kr-attention-check";
  report["device"] = prop.name;
  report["sms"] = prop.multiProcessorCount;
  report["cuda_runtime"] = runtime;
  report["ceiling_tflops"] = kCeilingTflops;
  report["hbm_tb_s"] = kHbmTBs;
  report["tolerance"] = "|gpu - ref| <= 2^-7 sum_j w_j |v_j| + 2^-8 |ref| + 1e-5 per element";

  // ---- checks ----
  const std::vector<CaseSpec> cases = correctness_cases(quick);
  std::printf("\n%zu checks against the float64 reference:\n", cases.size());
  json checks = json::array();
  int passed = 0, failed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    bool pass = false;
    json j = run_check(cases[i], static_cast<int>(i), &pass);
    (pass ? passed : failed)++;
    std::printf("  %s %-58s %-21s tok %6d/%-6d err %.2e (%.2f of tol) splits %d\n", pass ? "PASS" : "FAIL",
                cases[i].name.c_str(), kern_name(cases[i].kern), j.value("tokens_checked", 0), j.value("tokens", 0),
                j["max_abs_err"].is_number() ? j["max_abs_err"].get<double>() : NAN,
                j["max_err_over_tol"].is_number() ? j["max_err_over_tol"].get<double>() : NAN,
                j.value("num_splits", 1));
    std::fflush(stdout);
    checks.push_back(std::move(j));
  }
  report["checks"] = checks;
  report["checks_passed"] = passed;
  report["checks_failed"] = failed;
  std::printf("checks: %d passed, %d failed\n", passed, failed);

  // ---- timing ----
  if (timing) {
    json t;
    std::printf("\nprefill attention (Llama-3.2-3B: 24 q / 8 kv heads, D 128, causal, one sequence):\n");
    json pre = json::array();
    struct P {
      int n, reps_new, reps_old;
    };
    for (const P& p : {P{8192, 10, 3}, P{32768, 4, 1}, P{131072, 2, old_128k ? 1 : 0}}) {
      const std::string what = std::to_string(p.n / 1024) + "k";
      pre.push_back(time_prefill(what.c_str(), 24, 8, 128, {{0, p.n}}, 0, Kern::kPrefill, p.reps_new));
      if (p.reps_old > 0) pre.push_back(time_prefill(what.c_str(), 24, 8, 128, {{0, p.n}}, 0, Kern::kOld, p.reps_old));
    }
    std::printf("other shapes (new kernel):\n");
    pre.push_back(time_prefill("32k Qwen2.5-7B 28/4", 28, 4, 128, {{0, 32768}}, 0, Kern::kPrefill, 3));
    pre.push_back(time_prefill("8k D256 8/4", 8, 4, 256, {{0, 8192}}, 0, Kern::kPrefill, 5));
    pre.push_back(time_prefill("8k D256 8/4 window 1024", 8, 4, 256, {{0, 8192}}, 1024, Kern::kPrefill, 5));
    pre.push_back(time_prefill("8k D64 16/16", 16, 16, 64, {{0, 8192}}, 0, Kern::kPrefill, 5));
    t["prefill"] = pre;

    std::printf("chunked prefill: 4 chunks of 2048 after a 24576-token prefix (24/8, D 128):\n");
    json chunked = json::array();
    for (Kern k : {Kern::kPrefill, Kern::kOld}) {
      double ms = 0.0, gflop = 0.0;
      for (int i = 0; i < 4; ++i) {
        const std::string what = "chunk " + std::to_string(i + 1) + " after " + std::to_string(24576 + 2048 * i);
        json j = time_prefill(what.c_str(), 24, 8, 128, {{24576 + 2048 * i, 2048}}, 0, k, k == Kern::kOld ? 1 : 5);
        ms += j["ms"].get<double>();
        gflop += j["gflop"].get<double>();
        chunked.push_back(j);
      }
      std::printf("  4 chunks, %-22s %9.3f ms  %7.1f TFLOP/s\n", kern_name(k), ms, gflop / ms);
      chunked.push_back({{"kernel", kern_name(k)}, {"total_ms", ms}, {"tflops", gflop / ms}});
    }
    t["chunked_prefill"] = chunked;

    std::printf("decode attention per layer (24/8, D 128; layers cycled so K/V come from HBM):\n");
    json dec = json::array();
    for (Kern k : {Kern::kDecode, Kern::kOld}) {
      dec.push_back(time_decode(1, 32768, 8, k, 4));
      dec.push_back(time_decode(16, 32768, 2, k, 4));
      dec.push_back(time_decode(1, 4096, 16, k, 4));
      dec.push_back(time_decode(64, 4096, 2, k, 4));
    }
    t["decode"] = dec;
    std::printf("flash decode block shapes (FlashAttnArgs::decode_warps) forced, then the policy's:\n");
    json shapes = json::array();
    struct B {
      int batch, ctx, layers;
    };
    for (const B& b : {B{1, 32768, 8}, B{16, 32768, 2}, B{1, 4096, 16}, B{16, 200, 16}, B{32, 200, 8}, B{64, 200, 4},
                       B{128, 200, 4}, B{64, 1024, 2}, B{64, 4096, 2}, B{256, 4096, 2}})
      for (int w : {4, 2, 0}) shapes.push_back(time_decode(b.batch, b.ctx, b.layers, Kern::kDecode, 4, w));
    t["decode_block_shapes"] = shapes;
    {
      // Batch-1 decode at 32k over 28 layers against its roofline: (weights + K/V) / 3.9 TB/s.
      const double kv_token = 28.0 * 32768 * 8 * 128 * 2 * 2, weights = 6.4255e9;
      const double us_new = dec[0]["us_per_layer"].get<double>();
      json r;
      r["kv_bytes_per_token"] = kv_token;
      r["weights_bytes"] = weights;
      r["roofline_ms_per_token"] = (weights + kv_token) / (kHbmTBs * 1e12) * 1e3;
      r["attention_ms_per_token"] = 28.0 * us_new * 1e-3;
      r["attention_roofline_ms_per_token"] = kv_token / (kHbmTBs * 1e12) * 1e3;
      // What the rest of the step may take for the step to stay at 80% of the roofline.
      r["non_attention_budget_ms_at_80pct"] = (weights + kv_token) / (kHbmTBs * 1e12) * 1e3 / 0.8 - 28.0 * us_new * 1e-3;
      std::printf("  batch-1 decode at 32k, 28 layers: attention %.3f ms/token (its roofline %.3f); whole-step roofline "
                  "%.3f ms; 80%% of it leaves %.3f ms for the rest of the step\n",
                  r["attention_ms_per_token"].get<double>(), r["attention_roofline_ms_per_token"].get<double>(),
                  r["roofline_ms_per_token"].get<double>(), r["non_attention_budget_ms_at_80pct"].get<double>());
      t["decode_b1_32k_roofline"] = r;
    }

    std::printf("whole-layer arithmetic (Llama-3.2-3B prefill, 28 layers):\n");
    json gemm = time_gemms(8192);
    t["gemm_8192"] = gemm;
    json proj = json::array();
    for (const json& p : pre) {
      if (p["kernel"] != "flash_prefill" || p["q_heads"] != 24 || p.contains("window")) continue;
      const int n = p["tokens"].get<int>();
      const double attn_ms = p["ms"].get<double>(), gemm_ms = gemm["total_ms"].get<double>() * n / 8192.0;
      const double flops = 28.0 * (p["gflop"].get<double>() * 1e9 + 2.0 * n * 3072.0 * (5120 + 3072 + 16384 + 8192));
      const double total_s = 28.0 * (attn_ms + gemm_ms) * 1e-3;
      std::printf("  %6d tokens: attention %.3f s + GEMMs %.3f s = %.3f s (norms, rope, lm_head excluded): %.1f "
                  "TFLOP/s against the %.0f ceiling\n",
                  n, 28.0 * attn_ms * 1e-3, 28.0 * gemm_ms * 1e-3, total_s, flops / total_s / 1e12, kCeilingTflops);
      proj.push_back({{"tokens", n},
                      {"attention_s", 28.0 * attn_ms * 1e-3},
                      {"gemm_s", 28.0 * gemm_ms * 1e-3},
                      {"projected_s", total_s},
                      {"tflops", flops / total_s / 1e12}});
    }
    t["prefill_projection_28_layers"] = proj;
    report["timing"] = t;
  }
  report["elapsed_s"] = now_s() - t_start;
  std::printf("\nkr-attention-check: %d passed, %d failed (%.1f s)\n", passed, failed, now_s() - t_start);
  if (!out_path.empty()) {
    std::ofstream f(out_path);
    f << report.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "kr-attention-check: cannot write %s\n", out_path.c_str());
      return 2;
    }
    std::printf("wrote %s\n", out_path.c_str());
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace kr

int main(int argc, char** argv) { return kr::main_impl(argc, argv); }
