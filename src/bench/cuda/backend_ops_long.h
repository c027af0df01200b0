// Long-context checks of kr-backend-ops (backend_ops_long.cc): the CUDA
// backend's attention (the flash kernels behind CudaBackend::attention: its tiles,
// key splits, prefill and decode tiles on one step, step graphs) against the CPU
// backend over lengths 1 … 32768, chunked prefill against cached prefixes, the
// families' GQA ratios, sliding windows and soft-caps; and the greedy outputs of
// a Llama-3.2-3B-shape dummy model for a long prompt, one-shot against chunked
// prefill; the short-decode kernels (decode steps of 1-4 sequences). Each prints one line per check in kr-backend-ops' format.
//
// Threading: the main thread of kr-backend-ops (it owns both backends).
#pragma once

#include <string>

namespace kr {

class Backend;

// --kv-fp8: every KV cache of the attention checks (here and in
// backend_ops_main.cc: attention, store_kv, qkv_rope_store, the 2-layer steps) is
// an FP8 cache (backend/kv_cache_dtype.h) with these scales, the same e4m3 bytes
// on both backends; the CPU attends over the dequantized values.
extern bool g_kv_fp8;
inline constexpr float kKvFp8KScale = 0.75f, kKvFp8VScale = 1.25f;

// Attention through the backends; returns the number of failed checks.
// prefill_variant_tag non-empty: only the cases a flash prefill variant changes
// (head dim 128, no decode step graphs), each line's case name prefixed by the tag.
int run_long_attention_checks(Backend& cpu, Backend& gpu, const std::string& prefill_variant_tag = "");
// Decode-only steps of 1-4 sequences (contexts 1 … 4096; head dims 64/128/256; GQA
// groups 1-8; windows and soft-caps; eager and as step graphs) through the backends:
// the short-decode path of a backend made with a large flash_decode_min_keys.
// Returns the number of failed checks.
int run_short_decode_attention_checks(Backend& cpu, Backend& gpu);
// One prompt of `prompt_len` tokens through the dummy 3B model in one step and in
// chunks; returns the number of failed checks.
int run_long_prompt_greedy_check(Backend& gpu, int prompt_len);

}  // namespace kr
