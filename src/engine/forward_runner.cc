#include "engine/forward_runner.h"

#include <algorithm>

namespace kr {

ForwardRunner::ForwardRunner(std::unique_ptr<Backend> backend, std::unique_ptr<Model> model)
    : backend_(std::move(backend)),
      model_(std::move(model)),
      sampler_(backend_.get(), model_ ? model_->config().vocab_size : 0, model_ ? model_->eos_ids() : std::span<const int32_t>{}) {
  KR_CHECK(backend_ != nullptr && model_ != nullptr && &model_->backend() == backend_.get());
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
  sample_rows_.clear();
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
// step graph where the backend has them, keyed by batch size and the padded
// block-table width (see Backend::begin_graph).
StatusOr<Tensor> ForwardRunner::forward() {
  const bool decode_only = meta_.num_tokens == meta_.num_seqs &&
                           static_cast<int32_t>(logit_rows_.size()) == meta_.num_seqs;
  const bool graph = decode_only && backend_->begin_graph((static_cast<uint64_t>(meta_.num_seqs) << 32) |
                                                          static_cast<uint32_t>(meta_.max_blocks_per_seq));
  auto logits = model_->forward(meta_, token_ids_, logit_rows_);
  if (graph) backend_->end_graph();
  return logits;
}

Status ForwardRunner::step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) {
  out->clear();
  if (seqs.empty()) return InvalidArgument("step: no sequences");
  KR_RETURN_IF_ERROR(build_metadata(seqs));
  KR_ASSIGN_OR_RETURN(const Tensor logits, forward());  // [R, V] f32
  sampler_.sample(logits, sample_rows_, out);
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
