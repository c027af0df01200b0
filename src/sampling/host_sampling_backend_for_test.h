// HostSamplingBackend: a test Backend that forwards every op to another one
// (the CPU backend) and also implements Backend::sample with the host Sampler,
// on inputs rebuilt from the packed rows (penalty entries -> prompt/output ids,
// random_bits -> a generator). Tests of the device-sampling path run with it on
// any machine: it proves the packing and unpacking, not the CUDA kernels
// (kr-sampling-check does those). argmax_logprob is not forwarded (the
// default refuses), so plain greedy rows fall through to sample().
//
// Threading: like any Backend, one thread.
#pragma once

#include <memory>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "backend/backend.h"
#include "sampling/sampler.h"

namespace kr {

class HostSamplingBackend final : public Backend {
 public:
  explicit HostSamplingBackend(std::unique_ptr<Backend> inner) : in_(std::move(inner)) {}
  std::string name() const override { return "host-sampling"; }
  DType activation_dtype() const override { return in_->activation_dtype(); }
  Tensor alloc(DType dtype, std::initializer_list<int64_t> dims) override { return in_->alloc(dtype, dims); }
  void free(Tensor& t) override { in_->free(t); }
  Tensor upload_weight(const Tensor& host) override { return in_->upload_weight(host); }
  bool upload_keeps_host_pointer() const override { return in_->upload_keeps_host_pointer(); }
  StatusOr<LinearWeight> upload_quantized(const QuantizedMatrix& m) override { return in_->upload_quantized(m); }
  void copy_from_host(Tensor& dst, const void* src, size_t bytes) override { in_->copy_from_host(dst, src, bytes); }
  void copy_to_host(void* dst, const Tensor& src, size_t bytes) override { in_->copy_to_host(dst, src, bytes); }
  void fill_zero(Tensor& t) override { in_->fill_zero(t); }
  void synchronize() override { in_->synchronize(); }
  size_t kv_cache_budget_bytes() const override { return in_->kv_cache_budget_bytes(); }
  void set_step_metadata(const StepMetadata& meta) override { in_->set_step_metadata(meta); }
  void embedding(const LinearWeight& table, const Tensor& ids, float scale, Tensor& out) override {
    in_->embedding(table, ids, scale, out);
  }
  void rms_norm(const Tensor& x, const RmsNorm& n, Tensor& out) override { in_->rms_norm(x, n, out); }
  void add_rms_norm(Tensor& residual, const Tensor& x, const RmsNorm& n, Tensor& out) override {
    in_->add_rms_norm(residual, x, n, out);
  }
  void matmul(const Tensor& x, const LinearWeight& w, Tensor& out) override { in_->matmul(x, w, out); }
  void rope(Tensor& qkv, const QkvParams& p) override { in_->rope(qkv, p); }
  void store_kv(const Tensor& qkv, int q_heads, int kv_heads, int head_dim, KvLayer& kv) override {
    in_->store_kv(qkv, q_heads, kv_heads, head_dim, kv);
  }
  // No FP8 rows (writes_fp8_rows is not forwarded either): the record cleared.
  void attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out,
                 Fp8Out out_fp8 = {}) override {
    if (out_fp8.rows != nullptr) out_fp8.rows->clear();
    in_->attention(qkv, kv, p, out);
  }
  void silu_mul(const Tensor& gate_up, Activation f, Tensor& out) override { in_->silu_mul(gate_up, f, out); }
  void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) override { in_->gather_rows(x, idx, out); }
  void softcap(Tensor& x, float cap) override { in_->softcap(x, cap); }
  bool implements_sample() const override { return true; }

  bool sample(const Tensor& logits, std::span<const DeviceSamplingRow> rows, std::span<const int32_t> penalty_ids,
              std::span<const int32_t> penalty_counts, std::span<const int32_t> eos_ids,
              DeviceSampleResult* out) override {
    if (refuse_sample) return false;
    ++calls;
    EXPECT_EQ(logits.dim(0), static_cast<int64_t>(rows.size()));  // one logits row per sampling row
    EXPECT_EQ(penalty_ids.size(), penalty_counts.size());
    last_rows.assign(rows.begin(), rows.end());
    const size_t V = static_cast<size_t>(logits.dim(1));
    std::vector<float> host(rows.size() * V);
    in_->copy_to_host(host.data(), logits, host.size() * sizeof(float));
    for (size_t r = 0; r < rows.size(); ++r) {
      const DeviceSamplingRow& row = rows[r];
      SamplingParams p;
      p.temperature = row.temperature;
      p.top_p = row.top_p;
      p.top_k = row.top_k;
      p.min_p = row.min_p;
      p.repetition_penalty = row.repetition_penalty;
      p.presence_penalty = row.presence_penalty;
      p.frequency_penalty = row.frequency_penalty;
      p.logprobs = row.top_logprobs > 0 ? row.top_logprobs : -1;
      std::vector<int32_t> prompt, output;
      for (int32_t e = row.penalty_begin; e < row.penalty_end; ++e) {
        prompt.push_back(penalty_ids[e]);
        output.insert(output.end(), penalty_counts[e], penalty_ids[e]);
      }
      std::mt19937_64 rng(row.random_bits);
      SampleInput in;
      in.params = &p;
      in.prompt_ids = prompt;
      in.output_ids = output;
      in.suppress_eos = row.suppress_eos != 0;
      in.masked = row.masked != 0;
      in.rng = &rng;
      const SampledToken t = sampler_.sample(std::span<const float>(host.data() + r * V, V), in, eos_ids);
      out[r].id = t.id;
      out[r].logprob = t.logprob;
      out[r].non_finite = t.non_finite ? 1 : 0;
      out[r].num_top = static_cast<int32_t>(t.top.size());
      for (size_t k = 0; k < t.top.size(); ++k) {
        out[r].top_ids[k] = t.top[k].first;
        out[r].top_logprobs[k] = t.top[k].second;
      }
    }
    return true;
  }

  int calls = 0;                          // sample() calls served
  bool refuse_sample = false;             // sample() returns false (a backend that cannot serve the rows)
  std::vector<DeviceSamplingRow> last_rows;

 private:
  std::unique_ptr<Backend> in_;
  Sampler sampler_;
};

}  // namespace kr
