// Backend::copy_kv_blocks on the GPU against the layout backend.h defines (the
// CPU's default copies bytes the same way): random bf16 caches of a tiny and of
// the Llama-3.2-3B shape (28 layers, 8 KV heads of 128, 16-token blocks; more
// blocks than one staging chunk holds) are copied out to shuffled host slots,
// compared byte for byte with the host's own copy of the cache, copied back
// into other blocks and compared again. Ordering: a copy out and a copy back of
// the same slot issued back to back; a block overwritten by the compute stream
// right after a copy out (wait_kv_copies first) must leave the slot intact.
// Then the bandwidth of each direction on 512 blocks of the 3B shape (GB/s of
// host bytes, timed on the host from the call to the ticket's completion).
#include "bench/cuda/kv_copy_check.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace kr {
namespace {

struct Cache {
  Backend& b;
  int L, blocks, bs, hkv, d;
  std::vector<KvLayer> layers;
  std::vector<std::vector<uint16_t>> host;  // [2L] the values written, K then V per layer

  Cache(Backend& backend, int layers_, int blocks_, int bs_, int hkv_, int d_, std::mt19937_64& rng)
      : b(backend), L(layers_), blocks(blocks_), bs(bs_), hkv(hkv_), d(d_) {
    for (int l = 0; l < L; ++l) {
      KvLayer kv{b.alloc(DType::kBF16, {blocks, bs, hkv, d}), b.alloc(DType::kBF16, {blocks, bs, hkv, d})};
      for (Tensor* t : {&kv.k, &kv.v}) {
        std::vector<uint16_t> v(static_cast<size_t>(t->numel()));
        for (auto& x : v) x = static_cast<uint16_t>(rng());
        b.copy_from_host(*t, v.data(), v.size() * 2);
        host.push_back(std::move(v));
      }
      layers.push_back(kv);
    }
    b.synchronize();
  }
  ~Cache() {
    for (KvLayer& l : layers) {
      b.free(l.k);
      b.free(l.v);
    }
  }
  size_t piece_bytes() const { return static_cast<size_t>(bs) * hkv * d * 2; }
  size_t slot_bytes() const { return 2 * static_cast<size_t>(L) * piece_bytes(); }
  // Block `blk` of layer piece p (2l: K, 2l+1: V) as the host wrote it.
  const uint16_t* expected(int p, int blk) const {
    return host[static_cast<size_t>(p)].data() + static_cast<size_t>(blk) * piece_bytes() / 2;
  }
  // Reads block `blk` of every piece back from the device, in slot layout.
  std::vector<char> read_block(int blk) {
    std::vector<char> out(slot_bytes());
    for (int l = 0; l < L; ++l) {
      b.copy_to_host(out.data() + (2 * l) * piece_bytes(), layers[l].k.rows(blk, 1), piece_bytes());
      b.copy_to_host(out.data() + (2 * l + 1) * piece_bytes(), layers[l].v.rows(blk, 1), piece_bytes());
    }
    return out;
  }
  bool slot_holds(const char* slot, int blk) const {
    for (int p = 0; p < 2 * L; ++p)
      if (std::memcmp(slot + p * piece_bytes(), expected(p, blk), piece_bytes()) != 0) return false;
    return true;
  }
};

int line(const std::string& what, bool ok) {
  std::printf("%-14s %-58s %s\n", "kv_block_copy", what.c_str(), ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}

void wait_done(Backend& b, uint64_t ticket) {
  while (!b.kv_copies_done(ticket)) {
  }
}

int check_shape(Backend& gpu, int L, int blocks, int bs, int hkv, int d, int n, std::mt19937_64& rng) {
  int failures = 0;
  Cache c(gpu, L, blocks, bs, hkv, d, rng);
  // snprintf, not a "literal" + std::string chain: GCC 12 reports a false -Wrestrict there (GCC bug 105329).
  char shape_text[96];
  std::snprintf(shape_text, sizeof shape_text, "L%d bs%d Hkv%d D%d x%d", L, bs, hkv, d, n);
  const std::string shape = shape_text;
  const int slots = n + 7;
  char* host = static_cast<char*>(gpu.alloc_host_memory(static_cast<size_t>(slots) * c.slot_bytes()));
  if (host == nullptr) return line(shape + " pinned alloc", false);
  std::vector<int> blk(static_cast<size_t>(blocks)), slot(static_cast<size_t>(slots));
  std::iota(blk.begin(), blk.end(), 0);
  std::iota(slot.begin(), slot.end(), 0);
  std::shuffle(blk.begin(), blk.end(), rng);
  std::shuffle(slot.begin(), slot.end(), rng);
  std::vector<KvBlockCopy> out;
  for (int i = 0; i < n; ++i) out.push_back({blk[static_cast<size_t>(i)], slot[static_cast<size_t>(i)]});
  wait_done(gpu, gpu.copy_kv_blocks(c.layers, host, out, /*to_host=*/true));
  bool ok = true;
  for (const KvBlockCopy& x : out) ok = ok && c.slot_holds(host + x.host_slot * c.slot_bytes(), x.device_block);
  failures += line(shape + " out: slots hold the blocks", ok);

  // Back into the last n blocks of the shuffle; the compute stream reads them after wait_kv_copies.
  std::vector<KvBlockCopy> in;
  for (int i = 0; i < n; ++i) in.push_back({blk[static_cast<size_t>(blocks - 1 - i)], slot[static_cast<size_t>(i)]});
  const uint64_t t = gpu.copy_kv_blocks(c.layers, host, in, /*to_host=*/false);
  gpu.wait_kv_copies(t);
  ok = true;
  for (int i = 0; i < n; ++i) {
    const std::vector<char> got = c.read_block(in[static_cast<size_t>(i)].device_block);
    ok = ok && c.slot_holds(got.data(), out[static_cast<size_t>(i)].device_block);
  }
  failures += line(shape + " back: blocks equal the originals", ok);

  // Out then back through one slot, issued back to back: stream order.
  const int src = blk[0], dst = blk[static_cast<size_t>(blocks - 1)], s = slot[static_cast<size_t>(n)];
  const KvBlockCopy o{src, s}, i2{dst, s};
  gpu.copy_kv_blocks(c.layers, host, std::span<const KvBlockCopy>(&o, 1), true);
  gpu.wait_kv_copies(gpu.copy_kv_blocks(c.layers, host, std::span<const KvBlockCopy>(&i2, 1), false));
  failures += line(shape + " out+back through one slot", c.slot_holds(c.read_block(dst).data(), src));

  // A copy out, then the compute stream overwrites the block: the slot keeps the old data.
  const KvBlockCopy o2{blk[1], slot[static_cast<size_t>(n + 1)]};
  const uint64_t t2 = gpu.copy_kv_blocks(c.layers, host, std::span<const KvBlockCopy>(&o2, 1), true);
  gpu.wait_kv_copies(t2);
  for (KvLayer& l : c.layers) {
    Tensor k = l.k.rows(blk[1], 1), v = l.v.rows(blk[1], 1);
    gpu.fill_zero(k);
    gpu.fill_zero(v);
  }
  gpu.synchronize();
  wait_done(gpu, t2);
  failures += line(shape + " overwrite after wait_kv_copies", c.slot_holds(host + o2.host_slot * c.slot_bytes(), blk[1]));
  gpu.free_host_memory(host, static_cast<size_t>(slots) * c.slot_bytes());
  return failures;
}

void bandwidth(Backend& gpu, std::mt19937_64& rng) {
  const int L = 28, blocks = 512, bs = 16, hkv = 8, d = 128;
  Cache c(gpu, L, blocks, bs, hkv, d, rng);
  char* host = static_cast<char*>(gpu.alloc_host_memory(static_cast<size_t>(blocks) * c.slot_bytes()));
  if (host == nullptr) return;
  std::vector<KvBlockCopy> copies;
  for (int i = 0; i < blocks; ++i) copies.push_back({i, blocks - 1 - i});
  const double gb = static_cast<double>(blocks) * static_cast<double>(c.slot_bytes()) / 1e9;
  for (bool to_host : {true, false, true, false}) {  // the first of each direction warms up
    gpu.synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    wait_done(gpu, gpu.copy_kv_blocks(c.layers, host, copies, to_host));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-14s %-58s %.1f GB/s (%.2f GB in %.2f ms)\n", "kv_block_copy",
                to_host ? "3B shape, 512 blocks out (device -> pinned host)" : "3B shape, 512 blocks back (host -> device)",
                gb / s, gb, s * 1e3);
  }
  gpu.free_host_memory(host, static_cast<size_t>(blocks) * c.slot_bytes());
}

}  // namespace

int check_kv_block_copies(Backend& gpu) {
  std::mt19937_64 rng(99);
  int failures = 0;
  failures += check_shape(gpu, 2, 64, 4, 2, 16, 20, rng);       // the tiny model's shape
  failures += check_shape(gpu, 28, 400, 16, 8, 128, 150, rng);  // 3B: 150 blocks > one staging chunk (71)
  bandwidth(gpu, rng);
  return failures;
}

}  // namespace kr
