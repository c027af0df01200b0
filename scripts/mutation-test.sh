#!/usr/bin/env bash
# Mutation run: plants small bugs, one at a time, in a COPY of the tree and
# checks that the tests that guard that code fail. On demand, not in CI.
#
#   scripts/mutation-test.sh                 # every mutation; summary + JSON
#   scripts/mutation-test.sh --check         # only: does each snippet still apply?
#   scripts/mutation-test.sh --only 'sampler|http'   # names matching a regex
#   options: --work DIR (default build-mutation/), --json PATH, --jobs N (2),
#            --timeout S per ctest entry (300), --no-baseline, --keep-going
#
# Each mutation is (file, the exact original snippet, its replacement, the
# ctest entries to run). A snippet that is no longer in the file exactly once
# is reported "not applied" (counted apart, never as caught), so the list
# survives unrelated code moves and says when an entry needs updating.
#
# The copy lives in <work>/tree (only the files that changed since the last
# run are rewritten, so its build in <work>/tree/build stays incremental) and
# gets the git-tracked and untracked-unignored files of this checkout, plus
# links to the test node_modules. Per mutation: write the mutant, rebuild only
# the targets of its tests (ninja), run only those ctest entries, restore the
# file. With ccache installed the builds share this checkout's cache
# (CCACHE_BASEDIR): restoring a file is a cache hit, and a first run whose
# checkout was built with ccache (build/) does not compile the tree again.
# Results: caught (some test failed or timed out), survived (all passed),
# not applied, build failed (the mutant did not compile; neither caught nor
# survived). Score = caught / (caught + survived). Exit 0 unless the run broke.
# After a run, binaries under <work>/tree/build may still hold the last mutant
# of their target (the file is restored, not rebuilt): rebuild before using them.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import argparse, json, os, re, shutil, subprocess, sys, time

# ---- the mutations ----
# name: area-what; file; find: exact original text; repl: its replacement;
# tests: ctest entries that must catch it. Keep each mutant compiling without
# warnings (the copy builds with -Werror, as CI does).
M = []
def mut(name, file, find, repl, tests):
    M.append(dict(name=name, file=file, find=find, repl=repl, tests=tests))

TOK = ["tokenizer_test", "tokenizer_jsonl_test"]
# -- tokenizer (byte-level BPE, SentencePiece, detokenizer) --
mut("tokenizer-bpe-highest-rank-first", "src/tokenizer/bpe.cc",
    "return rank != o.rank ? rank > o.rank : pos > o.pos;", "return rank != o.rank ? rank < o.rank : pos > o.pos;", TOK)
mut("tokenizer-bpe-rightmost-on-ties", "src/tokenizer/bpe.cc",
    "return rank != o.rank ? rank > o.rank : pos > o.pos;", "return rank != o.rank ? rank > o.rank : pos < o.pos;", TOK)
mut("sentencepiece-byte-fallback-nibbles-swapped", "src/tokenizer/decoder.cc",
    "return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;", "return hi < 0 || lo < 0 ? -1 : lo * 16 + hi;", TOK)
mut("sentencepiece-metaspace-strips-every-token", "src/tokenizer/decoder.cc",
    "metaspace(text, s.from, index == 0 && s.strip_first, &r);",
    "metaspace(text, s.from, (static_cast<void>(index), s.strip_first), &r);", TOK)
mut("sentencepiece-prepend-first-as-always", "src/tokenizer/pretokenize.cc",
    'else if (s == "first") step.prepend_scheme = PrependScheme::kFirst;',
    'else if (s == "first") step.prepend_scheme = PrependScheme::kAlways;', TOK + ["unicode_test"])
mut("detokenizer-one-replacement-per-invalid-run", "src/tokenizer/decoder.cc",
    "for (size_t k = 0; k < run.size(); ++k) feed(step + 1, kReplacementChar, out);",
    "feed(step + 1, kReplacementChar, out);", TOK)
# -- chat template --
CHAT = ["jinja_test", "chat_template_test", "chat_prompt_test"]
mut("jinja-loop-last-off-by-one", "src/tokenizer/jinja/interpreter.cc",
    'l.set("last", Value(i == n - 1));', 'l.set("last", Value(i + 1 == n - 1));', CHAT)
mut("jinja-revindex-off-by-one", "src/tokenizer/jinja/interpreter.cc",
    'l.set("revindex", Value(n - i));', 'l.set("revindex", Value(n - i - 1));', CHAT)
mut("jinja-trim-blocks-ignored", "src/tokenizer/jinja/lexer.cc",
    "} else if (is_block && modifier != '+' && pos_ < src_.size() && src_[pos_] == '\\n') {",
    "} else if (is_block && modifier == '!' && pos_ < src_.size() && src_[pos_] == '\\n') {", CHAT)
mut("chat-generation-prompt-always", "src/tokenizer/chat_prompt.cc",
    'ctx["add_generation_prompt"] = options.add_generation_prompt;', 'ctx["add_generation_prompt"] = true;', CHAT)
# -- model config (config.json, RoPE) --
CFG = ["family_config_test", "model_loading_test"]
mut("config-rope-theta-default-500k", "src/model/hf_config.cc",
    "double rope_theta = 10000.0;", "double rope_theta = 500000.0;", CFG)
mut("config-llama3-smoothing-swapped", "src/model/hf_config.cc",
    "const float smoothed = (1.0f - smooth) * llama / factor + smooth * llama;",
    "const float smoothed = smooth * llama / factor + (1.0f - smooth) * llama;", CFG)
mut("config-llama3-low-band-not-divided", "src/model/hf_config.cc",
    "float llama = wavelen > low_freq_wavelen ? f / factor : f;", "float llama = f;", CFG)
mut("config-gemma3-local-theta-default", "src/model/hf_config.cc",
    "d.rope_local_base_freq = 10000.0;", "d.rope_local_base_freq = 1000000.0;", CFG)
mut("config-qwen-max-window-layers-default", "src/model/hf_config.cc",
    "int64_t first = 28;  // Qwen2Config/Qwen3Config max_window_layers",
    "int64_t first = 0;  // Qwen2Config/Qwen3Config max_window_layers", CFG)
mut("config-gemma3-pattern-off-by-one", "src/model/hf_config.cc",
    "if ((l + 1) % pattern != 0) a->layer_attention[l] = AttentionKind::kSliding;",
    "if (l % pattern != 0) a->layer_attention[l] = AttentionKind::kSliding;", CFG)
# -- model families (ops the families add) --
FAM = ["cpu_backend_test", "families_golden_test"]
mut("family-norm-times-weight-not-one-plus", "src/backend/cpu/cpu_backend.cc",
    "out[i] = x[i] * inv * (1.0f + cpu_load_as_f32(w.data, w.dtype, i));",
    "out[i] = x[i] * inv * cpu_load_as_f32(w.data, w.dtype, i);", FAM)
mut("family-sliding-window-off-by-one", "src/backend/cpu/cpu_attention.cc",
    "std::max<int64_t>(0, ctx - p.sliding_window)", "std::max<int64_t>(0, ctx - p.sliding_window - 1)", FAM)
mut("family-embedding-scale-not-sqrt", "src/model/model.cc",
    "const float s = std::sqrt(static_cast<float>(hidden));", "const float s = static_cast<float>(hidden) / 8.0f;", FAM)
mut("family-embedding-scale-not-rounded-to-bf16", "src/model/model.cc",
    "case DType::kBF16: return bf16_to_f32(f32_to_bf16(s));", "case DType::kBF16: return s;", FAM)
# -- sampler --
SAMP = ["sampler_test"]
mut("sampler-top-p-over-whole-vocabulary", "src/sampling/sampler.cc",
    "for (int32_t i : cand_) total += work_[i];", "for (float w : work_) total += w;", SAMP)
mut("sampler-min-p-threshold-halved", "src/sampling/sampler.cc",
    "const float threshold = p.min_p;", "const float threshold = p.min_p * 0.5f;", SAMP)
mut("sampler-temperature-ignored", "src/sampling/sampler.cc",
    "exp_shifted_in_place(work_, mx, inv_t);", "exp_shifted_in_place(work_, mx, 1.0f + 0.0f * inv_t);", SAMP)
mut("sampler-repetition-penalty-per-occurrence", "src/sampling/sampler.cc",
    "cand_.erase(std::unique(cand_.begin(), cand_.end()), cand_.end());", "", SAMP)
mut("sampler-top-k-drops-ties", "src/sampling/sampler.cc",
    "[&](int32_t i) { return work_[i] >= kth; }", "[&](int32_t i) { return work_[i] > kth || i == cand_[0]; }", SAMP)
# -- scheduler, admission --
SCHED = ["scheduler_test", "engine_test"]
mut("scheduler-admission-ignores-token-budget", "src/engine/scheduler.cc",
    "*n = time_fit(s->num_computed, std::min(s->num_uncomputed(), budget), config_.max_batched_tokens - budget);",
    "*n = time_fit(s->num_computed, s->num_uncomputed(), config_.max_batched_tokens - budget);", SCHED)
mut("scheduler-admits-after-preempting", "src/engine/scheduler.cc",
    "if (!out->preempted.empty() || waiting_.empty()) {\n    run_yielded();",
    "if (waiting_.empty()) {\n    run_yielded();", SCHED)
mut("scheduler-max-num-seqs-off-by-one", "src/engine/scheduler.cc",
    "budget >= 1 &&\n         static_cast<int32_t>(running_.size()) < max_seqs) {",
    "budget >= 1 &&\n         static_cast<int32_t>(running_.size()) <= max_seqs) {", SCHED)
mut("admission-context-length-off-by-one", "src/engine/request.cc",
    "if (prompt_tokens + max_tokens <= max_model_len) return Status::Ok();",
    "if (prompt_tokens + max_tokens <= max_model_len + 1) return Status::Ok();", ["prompt_test", "engine_test"])
# -- KV blocks --
KV = ["kv_block_manager_test", "scheduler_test"]
mut("kv-blocks-needed-rounds-down", "src/engine/kv_block_manager.cc",
    "const int64_t want = (total_tokens + block_size_ - 1) / block_size_;",
    "const int64_t want = total_tokens / block_size_;", KV)
mut("kv-free-ignores-refcount", "src/engine/kv_block_manager.cc",
    "if (--rc > 0) continue;", "--rc;", KV)
mut("kv-tokens-that-fit-ignores-free-blocks", "src/engine/kv_block_manager.cc",
    "const int64_t capacity = (static_cast<int64_t>(table.size()) + num_free_blocks()) * block_size_;",
    "const int64_t capacity = (static_cast<int64_t>(table.size()) + num_free_blocks() + 1) * block_size_;", KV)
# -- HTTP parser --
HTTP = ["http_parser_test"]
mut("http-complete-oversized-header-400", "src/server/http_parser.cc",
    'if (head_end - start > limits_.max_header_bytes) return fail(431, "request headers too large");',
    'if (head_end - start > limits_.max_header_bytes) return fail(400, "request headers too large");', HTTP)
mut("http-header-limit-off-by-one", "src/server/http_parser.cc",
    'if (head_end - start > limits_.max_header_bytes) return fail(431, "request headers too large");',
    'if (head_end - start >= limits_.max_header_bytes) return fail(431, "request headers too large");', HTTP)
mut("http-trailer-section-unbounded", "src/server/http_parser.cc",
    'if (pos - trailer_start > limits_.max_header_bytes) return fail(431, "trailers too large");', "", HTTP)
mut("http-content-length-with-chunked-accepted", "src/server/http_parser.cc",
    'if (cl || te_count > 1) return fail(400, "conflicting message framing headers");',
    'if (te_count > 1) return fail(400, "conflicting message framing headers");', HTTP)
# -- OpenAI request validation --
OAI = ["openai_request_test"]
mut("openai-top-p-zero-accepted", "src/server/openai_request.cc",
    "if (top_p && *top_p <= 0.0) return c.fail(", "if (top_p && *top_p < 0.0) return c.fail(", OAI)
mut("openai-presence-penalty-range", "src/server/openai_request.cc",
    'c.number("presence_penalty", -2.0, 2.0, &presence)', 'c.number("presence_penalty", -2.0, 20.0, &presence)', OAI)
mut("openai-top-k-minus-one-refused", "src/server/openai_request.cc",
    'c.integer("top_k", -1, std::numeric_limits<int32_t>::max(), &top_k)',
    'c.integer("top_k", 0, std::numeric_limits<int32_t>::max(), &top_k)', OAI)
mut("openai-min-tokens-above-max-tokens", "src/server/openai_request.cc",
    "if (out->max_tokens && out->min_tokens > *out->max_tokens)",
    "if (out->max_tokens && out->min_tokens > *out->max_tokens + 1)", OAI)
# -- stop strings --
STOP = ["stop_matcher_test"]
mut("stop-no-holdback-of-one-char-prefix", "src/server/stop_matcher.cc",
    "for (size_t len = max_len; len > hold; --len) {", "for (size_t len = max_len; len > hold + 1; --len) {", STOP)
mut("stop-latest-match-wins", "src/server/stop_matcher.cc",
    "if (at < best || (at == best && s.size() > matched_.size())) {", "if (best == std::string::npos || at > best) {", STOP)
# -- metrics --
MET = ["metrics_parts_test", "metrics_test", "metrics_exposition_test"]
mut("metrics-histogram-bound-exclusive", "src/metrics/histogram.cc",
    "std::lower_bound(bounds_.begin(), bounds_.end(), v)", "std::upper_bound(bounds_.begin(), bounds_.end(), v)", MET)
mut("metrics-finish-reason-always-first", "src/metrics/metrics.cc",
    "m.finished[r >= 0 && r < kNumFinishReasons ? r : 0].add(1);", "m.finished[r >= 0 && r < 0 ? r : 0].add(1);", MET)
# -- grammar masks --
GR = ["grammar_matcher_test", "grammar_json_schema_test", "grammar_regex_test", "grammar_gbnf_test"]
mut("grammar-mask-cache-ignores-state", "src/grammar/matcher.cc",
    "if (cache_valid_ && !finished_ && stacks_ == cached_stacks_) {", "if (cache_valid_ && !finished_) {", GR)
mut("grammar-eos-never-allowed", "src/grammar/matcher.cc",
    "if (!eos && ctx_.can_terminate(h)) eos = true;", "if (!eos && ctx_.can_terminate(h)) eos = false;", GR)
# -- quantized-checkpoint readers --
Q = ["quant_loader_test", "quant_hostile_test"]
mut("quant-awq-no-interleave", "src/model/quant/awq_reader.cc",
    "constexpr int kAwqReverseOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};",
    "constexpr int kAwqReverseOrder[8] = {0, 1, 2, 3, 4, 5, 6, 7};", Q)
mut("quant-gptq-v1-zero-offset-dropped", "src/model/quant/gptq_reader.cc",
    "const uint32_t offset = p.gptq_version == 1 ? 1u : 0u;", "const uint32_t offset = p.gptq_version == 1 ? 0u : 0u;", Q)

# -- several models (models config, memory shares, the registry's LRU) --
MM = ["models_config_test"]
mut("models-shares-ignore-max-loaded-models", "src/server/models_config.cc",
    "return max_loaded_models > 0 ? std::min(n, static_cast<size_t>(max_loaded_models)) : n;",
    "return static_cast<void>(max_loaded_models), n;", MM)
mut("models-shares-smallest-first", "src/server/models_config.cc",
    "[&](size_t a, size_t b) { return values[a] > values[b]; }", "[&](size_t a, size_t b) { return values[a] < values[b]; }", MM)
mut("models-shares-no-rounding-slack", "src/server/models_config.cc",
    "if (sum > 1.0 + kShareSlack) {", "if (sum > 1.0 + 0.0 * kShareSlack) {", MM)
mut("registry-evicts-most-recently-used", "src/server/model_registry.cc",
    "if (pick == slots.size() || s.last_used_ns < slots[pick]->last_used_ns) pick = i;",
    "if (pick == slots.size() || s.last_used_ns > slots[pick]->last_used_ns) pick = i;", ["integration_models"])

# -- checks that once could not fail (issue 19): each must catch its stub --
mut("forward-runner-repetition-penalty-multiplies", "src/sampling/sampler.cc",
    "l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;",
    "l = l > 0 ? l * p.repetition_penalty : l / p.repetition_penalty;", ["forward_runner_test"])
mut("sampler-presence-penalty-dropped", "src/sampling/sampler.cc",
    "work_[id] -= p.frequency_penalty * static_cast<float>(counts_[id]) + p.presence_penalty;",
    "work_[id] -= p.frequency_penalty * static_cast<float>(counts_[id]);", SAMP + ["forward_runner_test"])
mut("generate-cli-text-empty", "src/app/generate_cmd.cc",
    "if (codec) text = codec->decode(output);", "if (codec) text = std::string();", ["generate_cli_test"])
mut("bench-client-ignores-arrival-schedule", "src/bench/kr_bench/load_gen.cc",
    "if (const int64_t wait_ns = due_ns - steady_now_ns(); wait_ns > 0)",
    "if (const int64_t wait_ns = due_ns - steady_now_ns(); wait_ns > 0 && i < 0)", ["kr_bench_client_test"])
mut("engine-cancel-counted-as-length", "src/engine/engine.cc",
    "if (it != seqs.end()) finish(it->second.get(), FinishReason::kCancelled, Status::Ok());",
    "if (it != seqs.end()) finish(it->second.get(), FinishReason::kLength, Status::Ok());", ["integration_server"])

# -- prefix caching (block hashes, matches, claims, the host tier) --
PC = ["prefix_cache_test", "prefix_cache_engine_test"]
mut("prefix-cache-salt-ignored", "src/engine/prefix_cache.cc",
    "s->root_hash = hasher_.root(BlockHashExtras{s->request.cache_salt, 0});",
    "s->root_hash = hasher_.root(BlockHashExtras{});", PC)
mut("prefix-hash-parent-not-chained", "src/engine/block_hash.cc",
    "const BlockHash& parent = i == 0 ? root : (*hashes)[i - 1];", "const BlockHash& parent = root;", PC)
mut("prefix-match-covers-last-token", "src/engine/prefix_cache.cc",
    "const int32_t max_blocks = (s->num_tokens() - 1) / bs;", "const int32_t max_blocks = s->num_tokens() / bs;",
    PC + ["prefix_cache_tiny_llama_test"])
mut("prefix-racers-do-not-wait", "src/engine/prefix_cache.cc",
    "m.wait = it != claims_.end() && it->second != s->id();", "m.wait = it != claims_.end() && it->second == s->id();", PC)
mut("prefix-release-keeps-claims", "src/engine/prefix_cache.cc",
    "for (int32_t i = s->claims_begin; i < s->claims_end && i < static_cast<int32_t>(s->block_hashes.size()); ++i) {",
    "for (int32_t i = s->claims_begin; i < s->claims_begin && i < static_cast<int32_t>(s->block_hashes.size()); ++i) {", PC)
mut("host-tier-reload-hold-not-dropped", "src/engine/kv_host_tier.cc",
    "if (--held_[static_cast<size_t>(c.host_slot)] == 0) lru_.push_back(c.host_slot);",
    "if (held_[static_cast<size_t>(c.host_slot)] == 1) lru_.push_back(c.host_slot);", PC)
# -- the step-time budget (cost model, online scale) --
SB = ["step_budget_test", "scheduler_test"]
mut("step-budget-alpha-branches-swapped", "src/engine/step_cost.cc",
    "const double alpha = ratio > s ? kAlphaUp : kAlpha;", "const double alpha = ratio > s ? kAlpha : kAlphaUp;", SB)
mut("step-cost-pairs-skip-diagonal", "src/engine/step_cost.cc",
    "static_cast<double>(n) * static_cast<double>(n + 1) / 2.0;", "static_cast<double>(n) * static_cast<double>(n - 1) / 2.0;", SB)
mut("step-cost-tile-reads-round-down", "src/engine/step_cost.cc",
    "static_cast<double>((n + std::max(1, tile_tokens) - 1) / std::max(1, tile_tokens));",
    "static_cast<double>(n / std::max(1, tile_tokens));", SB)
mut("step-cost-window-keys-not-clipped", "src/engine/step_cost.cc",
    "ms += reads * window_ctx_ms * std::min<double>(keys, window);", "ms += reads * window_ctx_ms * keys;", SB)
mut("step-budget-counts-steps-that-did-not-wait", "src/engine/scheduler.cc",
    "  if (waited) budget_.observe(step_estimate_ms_, measured_ms, step_has_decode_);",
    "  budget_.observe(step_estimate_ms_, measured_ms, step_has_decode_);", SB)
mut("step-token-align-ignored", "src/engine/scheduler.cc",
    "    if (aligned >= align) n = aligned;", "    (void)aligned;", SB)
mut("step-token-align-rounds-up", "src/engine/scheduler.cc",
    "const int32_t aligned = (step_tokens + n) / align * align - step_tokens;",
    "const int32_t aligned = (step_tokens + n + align - 1) / align * align - step_tokens;", SB)
# -- the CPU emulation of FP8 W8A8 activation quantization --
FP8 = ["cpu_backend_test"]
mut("fp8-w8a8-input-not-rounded-to-bf16", "src/backend/cpu/cpu_matmul.cc",
    "for (int64_t k = 0; k < K; ++k) row[k] = bf16_to_f32(f32_to_bf16(xs[t * K + k]));",
    "for (int64_t k = 0; k < K; ++k) row[k] = xs[t * K + k];", FP8)
mut("fp8-e4m3-ties-away-from-zero", "src/backend/float_codec.h",
    "int m = static_cast<int>(std::rint((fr * 2.0f - 1.0f) * 8.0f));",
    "int m = static_cast<int>(std::round((fr * 2.0f - 1.0f) * 8.0f));", FP8)
mut("fp8-w8a8-k-alignment-dropped", "src/backend/quantized_matrix.cc",
    "m.N % 8 == 0 && m.K % 16 == 0 &&", "m.N % 8 == 0 &&", FP8)
mut("fp8-w8a8-dynamic-tensor-runs-w8a16", "src/backend/quantized_matrix.cc",
    "(m.act == ActQuant::kStaticTensor || m.act == ActQuant::kDynamicToken || m.act == ActQuant::kDynamicTensor);",
    "(m.act == ActQuant::kStaticTensor || m.act == ActQuant::kDynamicToken);", FP8)

# ---- the runner ----
ap = argparse.ArgumentParser(prog="scripts/mutation-test.sh")
ap.add_argument("--work", default="build-mutation")
ap.add_argument("--json", default=None)
ap.add_argument("--only", default=None)
ap.add_argument("--jobs", type=int, default=2)
ap.add_argument("--timeout", type=int, default=300)
ap.add_argument("--check", action="store_true")
ap.add_argument("--no-baseline", action="store_true")
ap.add_argument("--keep-going", action="store_true")
a = ap.parse_args()

repo = os.getcwd()
work = os.path.abspath(a.work)
tree = os.path.join(work, "tree")
build = os.path.join(tree, "build")
out_json = a.json or os.path.join(work, "mutation-results.json")
logs = os.path.join(work, "logs")
sel = [m for m in M if not a.only or re.search(a.only, m["name"])]
t_start = time.time()

def say(*x):
    print(*x, flush=True)

def applies(text, m):
    n = text.count(m["find"])
    return (True, "") if n == 1 else (False, "snippet not found" if n == 0 else f"snippet found {n} times")

if a.check:
    bad = 0
    for m in sel:
        path = os.path.join(repo, m["file"])
        text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        ok, why = applies(text, m) if text else (False, "file missing")
        bad += not ok
        say(f"{'ok ' if ok else 'NOT APPLIED'}  {m['name']}  {m['file']}  {why}")
    say(f"{len(sel) - bad} of {len(sel)} apply")
    sys.exit(0)

# 1. The copy: rewrite only what differs, so that the build stays incremental.
files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], check=True, capture_output=True).stdout
files = [f for f in files.decode().split("\0") if f and not f.startswith(os.path.relpath(work, repo) + "/")]
os.makedirs(tree, exist_ok=True)
keep = set(files)
written = 0
for f in files:
    src, dst = os.path.join(repo, f), os.path.join(tree, f)
    if not os.path.isfile(src) or os.path.islink(src):
        continue
    data = open(src, "rb").read()
    if os.path.isfile(dst) and open(dst, "rb").read() == data:
        continue
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    open(dst, "wb").write(data)
    shutil.copymode(src, dst)
    written += 1
for d, dirs, names in os.walk(tree):
    rel = os.path.relpath(d, tree)
    if rel == "build" or rel.startswith("build/") or "node_modules" in rel.split(os.sep):
        dirs[:] = []
        continue
    dirs[:] = [x for x in dirs if not os.path.islink(os.path.join(d, x))]
    for n in names:
        r = os.path.normpath(os.path.join(rel, n))
        if r not in keep and not os.path.islink(os.path.join(d, n)):
            os.remove(os.path.join(d, n))
for nm in ("tests/integration/node_modules", "tests/deploy/node_modules"):
    if os.path.isdir(os.path.join(repo, nm)) and not os.path.exists(os.path.join(tree, nm)):
        os.symlink(os.path.join(repo, nm), os.path.join(tree, nm))
say(f"tree: {tree} ({written} files rewritten)")

env = dict(os.environ)
launcher = []
if shutil.which("ccache"):
    base = os.path.commonpath([repo, tree])
    if base != "/":
        env["CCACHE_BASEDIR"] = base
    env["CCACHE_NOHASHDIR"] = "1"
    launcher = ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
# Configured on every run (seconds): a CMakeLists.txt that changed since the last
# run may register new tests, which ctest below must already list.
gen = ["-G", "Ninja"] if shutil.which("ninja") and not os.path.exists(os.path.join(build, "CMakeCache.txt")) else []
subprocess.run(["cmake", "-S", tree, "-B", build, *gen, "-DCMAKE_BUILD_TYPE=Release", "-DKR_CUDA=OFF",
                "-DKR_WERROR=ON", *launcher], check=True, env=env, stdout=subprocess.DEVNULL)
os.makedirs(logs, exist_ok=True)

# 2. Which target builds each ctest entry.
shown = json.loads(subprocess.run(["ctest", "--test-dir", build, "--show-only=json-v1"], check=True,
                                  capture_output=True, env=env).stdout)
# A GoogleTest entry is built by the target of its name (kr_add_test); the node
# suites need kr-serve. (Before the first build ctest cannot name missing
# executables, so the build system's target list decides.)
if os.path.exists(os.path.join(build, "build.ninja")):
    listed = subprocess.run(["ninja", "-C", build, "-t", "targets", "all"], check=True, capture_output=True,
                            text=True, env=env).stdout
    targets = {line.split(":")[0].rsplit("/", 1)[-1] for line in listed.splitlines()}
else:
    listed = subprocess.run(["make", "-C", build, "help"], check=True, capture_output=True, text=True, env=env).stdout
    targets = {line[4:].split()[0] for line in listed.splitlines() if line.startswith("... ")}
target_of = {}
for t in shown["tests"]:
    cmd = t.get("command") or []
    if t["name"] in targets:
        target_of[t["name"]] = [t["name"]]
    elif cmd and os.path.basename(cmd[0]) == "node":
        target_of[t["name"]] = ["kr-serve"]
    else:
        target_of[t["name"]] = []

def build_targets(tests, log):
    targets = sorted({x for t in tests for x in target_of.get(t, [])})
    if not targets:
        return True
    tool = ["ninja", "-C", build, f"-j{a.jobs}"] if os.path.exists(os.path.join(build, "build.ninja")) \
        else ["make", "-C", build, f"-j{a.jobs}"]
    with open(log, "a") as f:
        r = subprocess.run(tool + targets, stdout=f, stderr=subprocess.STDOUT, env=env)
    return r.returncode == 0

def run_tests(tests, log):
    regex = "^(" + "|".join(re.escape(t) for t in tests) + ")$"
    r = subprocess.run(["ctest", "--test-dir", build, "-R", regex, "--timeout", str(a.timeout), "-j", str(a.jobs),
                        "--output-on-failure"], capture_output=True, text=True, env=env)
    with open(log, "a") as f:
        f.write(r.stdout + r.stderr)
    failed = re.findall(r"^\s*\d+ - (\S+) \(([^)]*)\)", r.stdout, re.M)
    ran = re.search(r"tests passed, (\d+) tests failed out of (\d+)", r.stdout)
    total = int(ran.group(2)) if ran else 0
    return r.returncode, failed, total

unknown = sorted({t for m in sel for t in m["tests"] if t not in target_of})
if unknown:
    say(f"ctest entries not registered in this build: {unknown}")
    sys.exit(2)

# 3. Baseline: every test used must pass on the unmutated copy.
results = []
baseline_s = 0.0
if not a.no_baseline:
    t0 = time.time()
    tests = sorted({t for m in sel for t in m["tests"]})
    log = os.path.join(logs, "baseline.log")
    open(log, "w").close()
    if not build_targets(tests, log):
        say(f"baseline does not build: see {log}")
        sys.exit(1)
    rc, failed, total = run_tests(tests, log)
    baseline_s = time.time() - t0
    say(f"baseline: {total} ctest entries, {len(failed)} failing, {baseline_s:.0f} s")
    if failed:
        say(f"failing without any mutation: {failed} (see {log})")
        if not a.keep_going:
            sys.exit(1)
        broken = {n for n, _ in failed}
        for m in sel:
            m["tests"] = [t for t in m["tests"] if t not in broken]

# 4. One mutation at a time.
for i, m in enumerate(sel, 1):
    path = os.path.join(tree, m["file"])
    rec = dict(name=m["name"], file=m["file"], tests=m["tests"], find=m["find"], repl=m["repl"])
    t0 = time.time()
    original = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    ok, why = applies(original, m) if original is not None else (False, "file missing")
    if not ok or not m["tests"]:
        rec.update(status="not_applied", reason=why or "no working test to run", seconds=0.0)
    else:
        log = os.path.join(logs, m["name"] + ".log")
        open(log, "w").close()
        try:
            open(path, "w", encoding="utf-8").write(original.replace(m["find"], m["repl"], 1))
            if not build_targets(m["tests"], log):
                rec.update(status="build_failed", reason=f"the mutant does not compile (see {log})")
            else:
                rc, failed, total = run_tests(m["tests"], log)
                if failed:
                    rec.update(status="caught", failed_tests=[f"{n} ({how})" for n, how in failed])
                elif rc != 0 or total == 0:
                    rec.update(status="caught" if rc != 0 else "build_failed",
                               reason=f"ctest exit {rc}, {total} tests ran (see {log})")
                else:
                    rec.update(status="survived", reason=f"{total} ctest entries passed")
        finally:
            open(path, "w", encoding="utf-8").write(original)
        rec["seconds"] = round(time.time() - t0, 1)
    results.append(rec)
    extra = ", ".join(rec.get("failed_tests", [])) or rec.get("reason", "")
    say(f"[{i}/{len(sel)}] {rec['status']:<12} {m['name']}  ({rec['seconds']} s)  {extra}")

counts = {k: sum(r["status"] == k for r in results) for k in ("caught", "survived", "not_applied", "build_failed")}
decided = counts["caught"] + counts["survived"]
summary = dict(mutations=len(results), **counts, score=round(counts["caught"] / decided, 4) if decided else None,
               baseline_seconds=round(baseline_s, 1), total_seconds=round(time.time() - t_start, 1),
               jobs=a.jobs, tree=tree)
json.dump(dict(summary=summary, results=results), open(out_json, "w"), indent=1)
say("")
say(f"caught {counts['caught']}, survived {counts['survived']}, not applied {counts['not_applied']}, "
    f"build failed {counts['build_failed']}; score {summary['score']}; {summary['total_seconds']:.0f} s")
for r in results:
    if r["status"] != "caught":
        say(f"  {r['status']}: {r['name']} ({r['file']}): {r.get('reason', '')}")
say(f"JSON: {out_json}")
PY
