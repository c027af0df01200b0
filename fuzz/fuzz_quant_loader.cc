// libFuzzer target: the quantized-checkpoint readers (model/quant) on arbitrary
// config.json texts and safetensors bytes: every format's shapes, dtypes, config
// keys and values. Any input must give OK or an error Status, never a crash, a
// read out of bounds or an invalid QuantizedMatrix.
//
// Input: [u16 N][u16 K][u8 flags][u16 config length L][L bytes config.json][safetensors file]
// (little-endian). flags bit 0: ask for an embedding instead of a Linear. Every
// tensor-name prefix of the safetensors header is tried as a module of [N, K].
// Seeds: fuzz/corpus/quant_loader (scripts/quant/pack.py fuzz-seeds).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "model/quant/quant_loader.h"

namespace {

uint32_t le(const uint8_t* p, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 7) return 0;
  const int64_t N = 1 + le(data, 2) % 4096, K = 1 + le(data + 2, 2) % 4096;
  const kr::ModuleRole role = (data[4] & 1) ? kr::ModuleRole::kEmbedding : kr::ModuleRole::kLinear;
  const size_t L = le(data + 5, 2);
  if (7 + L > size) return 0;
  const std::string config(reinterpret_cast<const char*>(data + 7), L);
  const uint8_t* st = data + 7 + L;
  const size_t st_size = size - 7 - L;

  auto cfg = kr::parse_quant_config(config, "fuzz/config.json",
                                    {{"hf_quant_config.json", config}, {"quantize_config.json", config}});
  std::vector<kr::TensorView> views;
  if (!kr::SafetensorsFile::parse_header(st, st_size, "fuzz/model.safetensors", &views, kr::DTypePolicy::kAny).ok())
    return 0;
  kr::TensorMap tensors;
  std::set<std::string> modules;
  for (const kr::TensorView& v : views) {
    tensors[v.name] = v;
    const size_t dot = v.name.rfind('.');
    // A model only asks about its own, short module names.
    if (dot != std::string::npos && dot > 0 && dot < 256) modules.insert(v.name.substr(0, dot));
  }
  if (!cfg.ok()) return 0;
  int tried = 0;
  for (const std::string& m : modules) {
    if (++tried > 8) break;
    (void)kr::is_quantized_module(*cfg, tensors, m);
    (void)kr::load_kv_cache_scales(tensors, m);
    auto q = kr::load_quantized_matrix(*cfg, tensors, m, role, N, K);
    if (!q.ok()) continue;
    if (!q->validate().ok()) __builtin_trap();  // readers return only valid matrices
    if (q->N * q->K > (int64_t{1} << 22)) continue;
    const std::vector<float> w = kr::dequantize(*q);
    if (static_cast<int64_t>(w.size()) != q->N * q->K) __builtin_trap();
    auto f = kr::fuse_rows({&*q, &*q}, m + ".fused");
    if (f.ok() && f->N != 2 * q->N) __builtin_trap();
  }
  return 0;
}
