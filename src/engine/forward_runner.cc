#include "engine/forward_runner.h"

#include <algorithm>
#include <thread>

#include "base/clock.h"
#include "base/log.h"

namespace kr {
namespace {

// Mask workers besides the engine thread: a few, since a mask takes microseconds.
int mask_workers() { return static_cast<int>(std::clamp(std::thread::hardware_concurrency() / 4, 1u, 4u)); }

}  // namespace

ForwardRunner::ForwardRunner(std::unique_ptr<Backend> backend, std::unique_ptr<Model> model)
    : backend_(std::move(backend)),
      model_(std::move(model)),
      sampler_(backend_.get(), model_ ? model_->config().vocab_size : 0, model_ ? model_->eos_ids() : std::span<const int32_t>{}),
      masks_(mask_workers()) {
  KR_CHECK(backend_ != nullptr && model_ != nullptr && &model_->backend() == backend_.get());
}

ForwardRunner::~ForwardRunner() {
  if (host_tier_ != nullptr)
    backend_->free_host_memory(host_tier_, static_cast<size_t>(host_slots_) * static_cast<size_t>(kv_block_bytes()));
  model_.reset();  // frees its tensors while the backend lives
}

int64_t ForwardRunner::kv_block_bytes() const {
  return model_->num_kv_blocks() > 0 ? static_cast<int64_t>(model_->kv_cache_bytes() / static_cast<size_t>(model_->num_kv_blocks()))
                                     : 0;
}

Status ForwardRunner::init_host_tier(int32_t num_slots) {
  if (host_tier_ != nullptr) return FailedPrecondition("the host KV tier is allocated already");
  if (num_slots <= 0) return InvalidArgument("the host KV tier needs at least one slot");
  const size_t bytes = static_cast<size_t>(num_slots) * static_cast<size_t>(kv_block_bytes());
  host_tier_ = backend_->alloc_host_memory(bytes);
  if (host_tier_ == nullptr) {
    return ResourceExhausted("could not allocate " + std::to_string(static_cast<double>(bytes) / (1 << 30)) +
                             " GiB of host memory for the KV host tier (" + backend_->name() + ")");
  }
  host_slots_ = num_slots;
  return Status::Ok();
}

uint64_t ForwardRunner::copy_kv_blocks(std::span<const KvBlockCopy> copies, bool to_host) {
  KR_CHECK(host_tier_ != nullptr);
  for (const KvBlockCopy& c : copies)
    KR_CHECK(c.host_slot >= 0 && c.host_slot < host_slots_ && c.device_block >= 0 &&
             c.device_block < model_->num_kv_blocks());
  return backend_->copy_kv_blocks(model_->kv_layers(), host_tier_, copies, to_host);
}

int32_t ForwardRunner::max_model_len() const {
  const int64_t cache_tokens = static_cast<int64_t>(model_->num_kv_blocks()) * model_->block_size();
  return static_cast<int32_t>(std::min<int64_t>({model_->config().max_position_embeddings, cache_tokens, INT32_MAX}));
}

StepCostModel ForwardRunner::step_cost_model() const {
  const BackendRates r = backend_->rates();
  StepCostModel m;
  if (!(r.matmul_flop_s > 0.0 && r.attention_flop_s > 0.0 && r.memory_byte_s > 0.0)) return m;
  const ModelConfig& c = model_->config();
  const double H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const double Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const double L = c.num_hidden_layers;
  // Matmul weights a token meets in every layer: q/k/v, o, gate/up, down (the
  // lm_head only on sampled rows: left out).
  const double layer_weights = (Hq + 2 * Hkv) * D * H + Hq * D * H + 3 * I * H;
  double global = 0, sliding = 0;
  for (AttentionKind k : c.arch.layer_attention) (k == AttentionKind::kSliding ? sliding : global) += 1;
  if (global + sliding == 0) global = L;
  // Bytes of one cached K (or V) element: the activation dtype's, or 1 in an FP8 cache.
  const std::span<const KvLayer> kv = model_->kv_layers();
  const double act_bytes =
      static_cast<double>(dtype_size_bytes(kv.empty() ? backend_->activation_dtype() : kv[0].k.dtype));
  const double ms = 1e3;
  m.fixed_ms = static_cast<double>(model_->weight_bytes()) / r.memory_byte_s * ms + r.step_overhead_s * ms;
  m.token_ms = 2.0 * layer_weights * L / r.matmul_flop_s * ms;
  m.pair_ms = 4.0 * Hq * D * global / r.attention_flop_s * ms;       // q·k and p·v, 2 FLOPs per MAC
  m.ctx_ms = 2.0 * Hkv * D * act_bytes * global / r.memory_byte_s * ms;  // a K and a V row per key
  if (sliding > 0 && c.arch.sliding_window > 0) {
    m.window = c.arch.sliding_window;
    m.window_pair_ms = 4.0 * Hq * D * sliding / r.attention_flop_s * ms;
    m.window_ctx_ms = 2.0 * Hkv * D * act_bytes * sliding / r.memory_byte_s * ms;
  }
  m.tile_tokens = std::max(1, r.attention_tile_rows / std::max(1, c.num_attention_heads / c.num_key_value_heads));
  return m;
}

Status ForwardRunner::build_metadata(std::span<const SeqStep> seqs) {
  const int32_t bs = model_->block_size();
  StepMetadata& m = meta_;
  m.num_seqs = static_cast<int32_t>(seqs.size());
  m.block_size = bs;
  m.max_blocks_per_seq = 0;
  m.max_context_len = 0;
  m.positions.clear();
  m.slot_mapping.clear();
  m.query_start.assign(1, 0);
  m.context_lens.clear();
  m.block_tables.clear();
  token_ids_.clear();
  logit_rows_.clear();
  sample_rows_.clear();
  row_constraints_.clear();
  for (const SeqStep& s : seqs) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    const int64_t ctx = static_cast<int64_t>(s.start_pos) + n;
    if (n == 0 || s.start_pos < 0) return InvalidArgument("step: sequence " + std::to_string(s.seq_id) + " feeds no tokens");
    if (static_cast<int64_t>(s.block_table.size()) * bs < ctx)
      return InvalidArgument("step: block table of sequence " + std::to_string(s.seq_id) + " does not cover " +
                             std::to_string(ctx) + " tokens");
    if (static_cast<int64_t>(token_ids_.size()) + n > model_->max_tokens_per_step())
      return InvalidArgument("step: more than " + std::to_string(model_->max_tokens_per_step()) + " tokens");
    m.max_blocks_per_seq = std::max(m.max_blocks_per_seq, static_cast<int32_t>((ctx + bs - 1) / bs));
    m.max_context_len = std::max<int32_t>(m.max_context_len, static_cast<int32_t>(ctx));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pos = s.start_pos + i;
      m.positions.push_back(static_cast<int32_t>(pos));
      m.slot_mapping.push_back(s.block_table[pos / bs] * bs + static_cast<int32_t>(pos % bs));
      token_ids_.push_back(s.tokens[i]);
    }
    m.query_start.push_back(static_cast<int32_t>(token_ids_.size()));
    m.context_lens.push_back(static_cast<int32_t>(ctx));
    if (s.sample) {
      if (s.sampling.params == nullptr) return InvalidArgument("step: sampling sequence without SamplingParams");
      logit_rows_.push_back(static_cast<int32_t>(token_ids_.size()) - 1);
      sample_rows_.push_back(s.sampling);
      sample_rows_.back().masked = s.constraint != nullptr && s.constraint->active();
      row_constraints_.push_back(s.constraint);
    }
  }
  if (static_cast<int32_t>(logit_rows_.size()) > model_->max_logit_rows())
    return InvalidArgument("step: more than " + std::to_string(model_->max_logit_rows()) + " sampling sequences");
  m.num_tokens = static_cast<int32_t>(token_ids_.size());
  // Width rounded up to a power of two (at most the cache's block count; the
  // extra entries are -1), so that step graphs keyed by width are recorded only
  // a few times as contexts grow.
  int32_t padded = 4;
  while (padded < m.max_blocks_per_seq) padded *= 2;
  m.max_blocks_per_seq = std::max(m.max_blocks_per_seq, std::min(padded, model_->num_kv_blocks()));
  // Block tables: only the blocks covering each context, -1 padded to a common width.
  m.block_tables.assign(static_cast<size_t>(m.num_seqs) * m.max_blocks_per_seq, -1);
  for (int32_t i = 0; i < m.num_seqs; ++i) {
    const int32_t used = (m.context_lens[i] + bs - 1) / bs;
    std::copy_n(seqs[i].block_table.begin(), used, m.block_tables.begin() + static_cast<size_t>(i) * m.max_blocks_per_seq);
  }
  return Status::Ok();
}

// Pure decode steps (one token per sequence, all sampling) replay a recorded
// step graph where the backend has them, keyed by batch size, the padded
// block-table width (see Backend::begin_graph) and whether the ids are fed.
StatusOr<Tensor> ForwardRunner::forward(bool fed_ids) {
  const bool decode_only = meta_.num_tokens == meta_.num_seqs &&
                           static_cast<int32_t>(logit_rows_.size()) == meta_.num_seqs;
  const uint64_t key = (fed_ids ? uint64_t{1} << 62 : 0) | (static_cast<uint64_t>(meta_.num_seqs) << 32) |
                       static_cast<uint32_t>(meta_.max_blocks_per_seq);
  const bool graph = decode_only && backend_->begin_graph(key);
  auto logits = model_->forward(meta_, token_ids_, logit_rows_, fed_ids);
  if (graph) backend_->end_graph();
  return logits;
}

bool ForwardRunner::warm_up(std::span<const int32_t> step_tokens) {
  if (!backend_->first_shape_is_slow()) return false;
  model_->warm_up_matmuls(step_tokens);
  return true;
}

Status ForwardRunner::step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) {
  out->clear();
  if (!launched_.empty()) return FailedPrecondition("step: a launched step is uncollected");
  KR_RETURN_IF_ERROR(launch(seqs));
  return collect(out);
}

bool ForwardRunner::can_feed(const SeqStep& s) const {
  return s.sample && s.sampling.params != nullptr && s.constraint == nullptr && is_plain_greedy(s.sampling) &&
         backend_->implements_launch_argmax();
}

Status ForwardRunner::launch(std::span<const SeqStep> seqs) {
  if (seqs.empty()) return InvalidArgument("step: no sequences");
  if (launched_.size() >= 2) return FailedPrecondition("launch: two launched steps are uncollected");
  const bool fed = seqs[0].fed;
  Launched l;
  for (const SeqStep& s : seqs) {
    if (s.fed != fed) return InvalidArgument("launch: fed and unfed sequences in one step");
    if (s.sample) l.seq_ids.push_back(s.seq_id);
  }
  if (fed) {
    // Row i's token is the previous launch's row i, left on the device by its argmax.
    const Launched* prev = launched_.empty() ? nullptr : &launched_.back();
    if (prev == nullptr || !prev->on_device || prev->seq_ids != l.seq_ids || l.seq_ids.size() != seqs.size())
      return InvalidArgument("launch: fed sequences do not follow a launched greedy step of the same sequences");
    for (const SeqStep& s : seqs)
      if (s.tokens.size() != 1 || !can_feed(s)) return InvalidArgument("launch: a fed sequence that cannot be fed");
  }
  const int64_t t0 = steady_now_ns();
  KR_RETURN_IF_ERROR(build_metadata(seqs));
  const int64_t t1 = steady_now_ns();
  // Masks of the constrained rows: started on the workers before the forward
  // is launched, collected after it (StepMasks::start/wait).
  const size_t num_masked = StepMasks::count_masked(row_constraints_);
  if (num_masked > 0) {
    const size_t words = (static_cast<size_t>(model_->config().vocab_size) + 31) / 32;
    masks_.start(row_constraints_, words, backend_->token_mask_host_buffer(num_masked * words));
  }
  auto logits = forward(fed);  // [R, V] f32
  const int64_t t2 = steady_now_ns();
  if (num_masked > 0) masks_.wait();  // also on a failed forward: the workers must be done
  if (!logits.ok()) return logits.status();
  StepTokenMasks m;
  if (num_masked > 0) {
    m.rows = masks_.masked_rows();
    m.words = masks_.masks();
    m.words_per_row = masks_.words_per_row();
    l.dead_ends.assign(masks_.dead_ends().begin(), masks_.dead_ends().end());
  }
  l.on_device = sampler_.begin(*logits, sample_rows_, m);
  const bool l_on_device = l.on_device;
  launched_.push_back(std::move(l));
  // KR_LOG_LEVEL=debug: where the host time of a step with a prefill chunk goes
  // (launching the forward, then sampling: a host or device-sampling path waits for
  // the device here, the argmax path at collect).
  if (meta_.num_tokens != meta_.num_seqs) {
    const int64_t t3 = steady_now_ns();
    KR_LOG(kDebug, "forward: %d tokens, %d sequences: metadata %.3f ms, launch %.3f ms, sample (%s) %.3f ms",
           meta_.num_tokens, meta_.num_seqs, (t1 - t0) * 1e-6, (t2 - t1) * 1e-6,
           l_on_device ? "argmax launched" : "device wait", (t3 - t2) * 1e-6);
  }
  return Status::Ok();
}

Status ForwardRunner::collect(std::vector<SampledToken>* out) {
  if (launched_.empty()) return FailedPrecondition("collect: no launched step");
  sampler_.finish(out);
  for (int32_t r : launched_.front().dead_ends) (*out)[static_cast<size_t>(r)].no_allowed_token = true;
  launched_.pop_front();
  return Status::Ok();
}

StatusOr<std::unique_ptr<ForwardRunner>> make_forward_runner(const std::string& model_dir,
                                                         std::unique_ptr<Backend> backend,
                                                         const ModelOptions& options) {
  if (backend == nullptr) return InvalidArgument("make_forward_runner: no backend");
  KR_ASSIGN_OR_RETURN(auto model, load_model(model_dir, *backend, options));
  return std::make_unique<ForwardRunner>(std::move(backend), std::move(model));
}

}  // namespace kr
