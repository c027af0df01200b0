#include "engine/forward_runner.h"

#include <algorithm>
#include <cmath>

namespace kr {

ForwardRunner::ForwardRunner(std::unique_ptr<Backend> backend, std::unique_ptr<Model> model)
    : backend_(std::move(backend)), model_(std::move(model)) {
  KR_CHECK(backend_ != nullptr && model_ != nullptr && &model_->backend() == backend_.get());
  // No random bits are drawn for a backend without device sampling (the CPU).
  backend_samples_ = backend_->implements_sample();
  use_device_sampling_ = backend_samples_;
}

ForwardRunner::~ForwardRunner() { model_.reset(); }  // frees its tensors while the backend lives

int32_t ForwardRunner::max_model_len() const {
  const int64_t cache_tokens = static_cast<int64_t>(model_->num_kv_blocks()) * model_->block_size();
  return static_cast<int32_t>(std::min<int64_t>({model_->config().max_position_embeddings, cache_tokens, INT32_MAX}));
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
      if (s.sampling == nullptr) return InvalidArgument("step: sampling sequence without SamplingParams");
      logit_rows_.push_back(static_cast<int32_t>(token_ids_.size()) - 1);
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

namespace {

// Greedy with nothing that needs the full row on the host: no penalties, no
// EOS suppression, no top-k logprobs. The backend's argmax_logprob serves it.
bool plain_greedy(const SeqStep& s) {
  const SamplingParams& p = *s.sampling;
  return p.temperature < 1e-5f && p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f &&
         p.frequency_penalty == 0.0f && !s.suppress_eos && p.logprobs <= 0;
}

}  // namespace

void append_device_row(const SamplingParams& p, bool suppress_eos, std::span<const int32_t> prompt_ids,
                       std::span<const int32_t> output_ids, int32_t vocab, DeviceSamplingBatch* batch) {
  DeviceSamplingRow r;
  r.temperature = p.temperature;
  r.top_p = p.top_p;
  r.top_k = p.top_k;
  r.min_p = p.min_p;
  r.repetition_penalty = p.repetition_penalty;
  r.presence_penalty = p.presence_penalty;
  r.frequency_penalty = p.frequency_penalty;
  r.suppress_eos = suppress_eos ? 1 : 0;
  r.top_logprobs = std::max(0, p.logprobs);
  const bool repetition = p.repetition_penalty != 1.0f;
  if (repetition || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    const auto range = append_penalty_entries(prompt_ids.data(), prompt_ids.size(), output_ids.data(),
                                              output_ids.size(), repetition, vocab, &batch->penalty_ids,
                                              &batch->penalty_counts, &batch->scratch);
    r.penalty_begin = range.first;
    r.penalty_end = range.second;
  }
  batch->rows.push_back(r);
}

bool pack_device_sampling(std::span<const SeqStep> seqs, int32_t vocab, std::mt19937_64* default_rng,
                          DeviceSamplingBatch* batch) {
  batch->rows.clear();
  batch->penalty_ids.clear();
  batch->penalty_counts.clear();
  for (const SeqStep& s : seqs)
    if (s.sample && s.sampling->logprobs > kDeviceSamplingMaxTop) return false;
  for (const SeqStep& s : seqs) {
    if (!s.sample) continue;
    append_device_row(*s.sampling, s.suppress_eos, s.prompt_ids, s.output_ids, vocab, batch);
    if (s.sampling->temperature >= 1e-5f) batch->rows.back().random_bits = (*(s.rng != nullptr ? s.rng : default_rng))();
  }
  return true;
}

Status ForwardRunner::step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) {
  out->clear();
  if (seqs.empty()) return InvalidArgument("step: no sequences");
  KR_RETURN_IF_ERROR(build_metadata(seqs));
  // Pure decode steps (one token per sequence, all sampling) replay a recorded
  // step graph where the backend has them, keyed by batch size and the padded
  // block-table width (see Backend::begin_graph).
  const bool decode_only = meta_.num_tokens == meta_.num_seqs &&
                           static_cast<int32_t>(logit_rows_.size()) == meta_.num_seqs;
  const bool graph = use_graphs_ && decode_only &&
                     backend_->begin_graph((static_cast<uint64_t>(meta_.num_seqs) << 32) |
                                           static_cast<uint32_t>(meta_.max_blocks_per_seq));
  auto logits_or = model_->forward(meta_, token_ids_, logit_rows_);
  if (graph) backend_->end_graph();
  if (!logits_or.ok()) return logits_or.status();
  const Tensor logits = *logits_or;
  if (logit_rows_.empty()) return Status::Ok();
  bool all_plain = true;
  for (const SeqStep& s : seqs) all_plain &= !s.sample || plain_greedy(s);
  if (all_plain) {
    device_ids_.resize(logit_rows_.size());
    device_logprobs_.resize(logit_rows_.size());
    if (backend_->argmax_logprob(logits, device_ids_.data(), device_logprobs_.data())) {
      size_t row = 0;
      for (const SeqStep& s : seqs) {
        if (!s.sample) continue;
        SampledToken t;
        t.seq_id = s.seq_id;
        t.id = device_ids_[row];
        t.logprob = device_logprobs_[row];
        t.non_finite = !std::isfinite(t.logprob);
        if (t.non_finite) t.id = -1;
        out->push_back(std::move(t));
        ++row;
      }
      return Status::Ok();
    }
  }
  const size_t V = static_cast<size_t>(model_->config().vocab_size);
  if (use_device_sampling_ &&
      pack_device_sampling(seqs, static_cast<int32_t>(V), &default_rng_, &device_batch_)) {
    device_results_.resize(device_batch_.rows.size());
    if (backend_->sample(logits, device_batch_.rows, device_batch_.penalty_ids, device_batch_.penalty_counts,
                         model_->eos_ids(), device_results_.data())) {
      size_t row = 0;
      for (const SeqStep& s : seqs) {
        if (!s.sample) continue;
        const DeviceSampleResult& d = device_results_[row++];
        SampledToken t;
        t.seq_id = s.seq_id;
        t.non_finite = d.non_finite != 0;
        t.id = t.non_finite ? -1 : d.id;
        t.logprob = d.logprob;
        t.top.reserve(static_cast<size_t>(d.num_top));
        for (int32_t k = 0; k < d.num_top; ++k) t.top.emplace_back(d.top_ids[k], d.top_logprobs[k]);
        out->push_back(std::move(t));
      }
      return Status::Ok();
    }
  }
  logits_host_.resize(logit_rows_.size() * V);
  backend_->copy_to_host(logits_host_.data(), logits, logits_host_.size() * sizeof(float));
  sample_inputs_.clear();
  for (const SeqStep& s : seqs) {
    if (!s.sample) continue;
    SampleInput in;
    in.params = s.sampling;
    in.prompt_ids = s.prompt_ids;
    in.output_ids = s.output_ids;
    in.suppress_eos = s.suppress_eos;
    in.eos_ids = model_->eos_ids();
    in.rng = s.rng != nullptr ? s.rng : &default_rng_;
    sample_inputs_.push_back({s.seq_id, in});
  }
  // Rows are independent (each has its own rng), so they are sampled in parallel:
  // at batch 64 the host sampler would otherwise dominate the step.
  const int64_t rows = static_cast<int64_t>(sample_inputs_.size());
  const int64_t parts = std::min<int64_t>(rows, sample_pool_.num_threads());
  if (static_cast<int64_t>(samplers_.size()) < parts) samplers_.resize(static_cast<size_t>(parts));
  sampled_.assign(static_cast<size_t>(rows), SampledToken{});
  auto sample_part = [&](int64_t part_begin, int64_t part_end) {
    for (int64_t part = part_begin; part < part_end; ++part) {
      for (int64_t r = part * rows / parts; r < (part + 1) * rows / parts; ++r) {
        const auto& [seq_id, in] = sample_inputs_[static_cast<size_t>(r)];
        SampledToken t = samplers_[static_cast<size_t>(part)].sample(
            std::span<const float>(logits_host_.data() + static_cast<size_t>(r) * V, V), in);
        t.seq_id = seq_id;
        sampled_[static_cast<size_t>(r)] = std::move(t);
      }
    }
  };
  if (parts <= 1) {
    sample_part(0, parts);
  } else {
    sample_pool_.parallel_for(parts, 1, sample_part);
  }
  for (SampledToken& t : sampled_) out->push_back(std::move(t));
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
