// Memory, metadata and the element-wise / row-wise ops of the CPU backend.
// matmul is in cpu_matmul.cc; rope, store_kv and attention in cpu_attention.cc.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend/dtype_convert.h"
#include "backend/float_codec.h"

namespace kr {

std::unique_ptr<Backend> make_cpu_backend(int threads, size_t kv_cache_bytes) {
  return std::make_unique<CpuBackend>(threads, kv_cache_bytes);
}

CpuBackend::CpuBackend(int threads, size_t kv_cache_bytes, const CpuOptions& options)
    : pool_(threads), kv_cache_bytes_(kv_cache_bytes), options_(options) {}

CpuBackend::~CpuBackend() {
  for (void* p : allocations_) std::free(p);
}

float cpu_load_as_f32(const void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kF32: return static_cast<const float*>(data)[i];
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kI32:
    case DType::kF8E4M3: break;
  }
  KR_CHECK_MSG(false, "not a float dtype");
  return 0.0f;
}

void cpu_convert_to_f32(const void* src, DType dtype, int64_t offset, int64_t n, float* dst) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, static_cast<const float*>(src) + offset, static_cast<size_t>(n) * 4);
      return;
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);  // vectorizes (shift)
      return;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::kI32:
    case DType::kF8E4M3: break;
  }
  KR_CHECK_MSG(false, "not a float dtype");
}

Tensor CpuBackend::alloc(DType dtype, std::initializer_list<int64_t> dims) {
  Tensor t(nullptr, dtype, dims);
  KR_CHECK(t.numel() >= 0);
  // 64-byte alignment for vector loads; aligned_alloc needs a multiple of the alignment.
  const size_t bytes = (std::max<size_t>(t.bytes(), 1) + 63) / 64 * 64;
  t.data = std::aligned_alloc(64, bytes);
  KR_CHECK_MSG(t.data != nullptr, "CpuBackend::alloc: out of memory");
  allocations_.push_back(t.data);
  return t;
}

void CpuBackend::free(Tensor& t) {
  if (t.data == nullptr) return;
  for (size_t i = 0; i < allocations_.size(); ++i) {
    if (allocations_[i] == t.data) {
      std::free(t.data);
      allocations_[i] = allocations_.back();
      allocations_.pop_back();
      w8a8_.erase(t.data);
      t.data = nullptr;
      return;
    }
  }
  t.data = nullptr;  // a weight view (upload_weight): not ours to free
}

Tensor CpuBackend::upload_weight(const Tensor& host) {
  KR_CHECK(host.dtype == DType::kF32 || host.dtype == DType::kBF16 || host.dtype == DType::kF16);
  return host;
}

StatusOr<LinearWeight> CpuBackend::upload_quantized(const QuantizedMatrix& m) {
  KR_RETURN_IF_ERROR(m.validate());
  const std::vector<float> w = dequantize(m);
  Tensor t = alloc(DType::kF32, {m.N, m.K});
  std::memcpy(t.data, w.data(), w.size() * sizeof(float));
  if (options_.emulate_fp8_w8a8 && fp8_runs_w8a8(m))
    w8a8_[t.data] = Fp8ActQuant{m.act == ActQuant::kStaticTensor, m.input_scale, m.activation_scale_ub};
  return LinearWeight(t);
}

// The CUDA path: quantize_fp8_rows_kernel (cuda_qgemm.cu).
float cpu_fp8_act_scale(const float* x, int64_t K, const Fp8ActQuant& q) {
  if (q.static_input) return q.input_scale;
  float amax = 0.0f;
  for (int64_t k = 0; k < K; ++k) amax = std::fmax(amax, std::fabs(x[k]));  // fmaxf: a NaN is skipped
  if (q.ub > 0.0f) amax = std::fmin(amax, q.ub);
  return std::fmax(amax / 448.0f, 1.0f / (448.0f * 512.0f));
}

void cpu_fp8_quantize_row(const float* x, int64_t K, const Fp8ActQuant& q, float* out) {
  const float s = cpu_fp8_act_scale(x, K, q);
  for (int64_t k = 0; k < K; ++k) out[k] = fp8_e4m3_to_f32(f32_to_fp8_e4m3(x[k] / s)) * s;
}

void CpuBackend::copy_from_host(Tensor& dst, const void* src, size_t bytes) {
  KR_CHECK(bytes <= dst.bytes());
  std::memcpy(dst.data, src, bytes);
}

void CpuBackend::copy_to_host(void* dst, const Tensor& src, size_t bytes) {
  KR_CHECK(bytes <= src.bytes());
  std::memcpy(dst, src.data, bytes);
}

void CpuBackend::fill_zero(Tensor& t) { std::memset(t.data, 0, t.bytes()); }

void CpuBackend::set_step_metadata(const StepMetadata& meta) {
  KR_CHECK(static_cast<int32_t>(meta.positions.size()) == meta.num_tokens);
  KR_CHECK(static_cast<int32_t>(meta.slot_mapping.size()) == meta.num_tokens);
  KR_CHECK(static_cast<int32_t>(meta.query_start.size()) == meta.num_seqs + 1);
  KR_CHECK(static_cast<int32_t>(meta.context_lens.size()) == meta.num_seqs);
  KR_CHECK(static_cast<int64_t>(meta.block_tables.size()) ==
           static_cast<int64_t>(meta.num_seqs) * meta.max_blocks_per_seq);
  meta_ = meta;
  token_seq_.assign(meta.num_tokens, -1);
  for (int32_t s = 0; s < meta.num_seqs; ++s) {
    for (int32_t t = meta.query_start[s]; t < meta.query_start[s + 1]; ++t) token_seq_[t] = s;
  }
}

void CpuBackend::embedding(const LinearWeight& weight, const Tensor& ids, float scale, Tensor& out) {
  // table [V, H]; ids [T]; out [T, H] f32
  KR_CHECK_MSG(!weight.quantized(), "CpuBackend: a quantized weight of another backend");
  const Tensor& table = weight.dense;
  KR_CHECK(ids.dtype == DType::kI32 && out.dtype == DType::kF32);
  const int64_t T = ids.dim(0), H = table.dim(1), V = table.dim(0);
  KR_CHECK(out.dim(0) == T && out.dim(1) == H);
  const int32_t* id = ids.as<int32_t>();
  for (int64_t t = 0; t < T; ++t) {
    KR_CHECK_MSG(id[t] >= 0 && id[t] < V, "embedding: token id out of range");
    float* o = out.as<float>() + t * H;
    cpu_convert_to_f32(table.data, table.dtype, id[t] * H, H, o);
    if (scale != 1.0f)
      for (int64_t i = 0; i < H; ++i) o[i] *= scale;
  }
}

void cpu_rms_norm_row(const float* x, const RmsNorm& norm, int64_t n, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + norm.eps));
  const Tensor& w = *norm.w;
  if (norm.kind == NormKind::kTimesOnePlusWeight) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * (1.0f + cpu_load_as_f32(w.data, w.dtype, i));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * cpu_load_as_f32(w.data, w.dtype, i);
  }
}

void CpuBackend::rms_norm(const Tensor& x, const RmsNorm& norm, Tensor& out) {
  // x, out [T, H]; w [H]
  const int64_t T = x.dim(0), H = x.dim(1);
  KR_CHECK(norm.present() && out.dim(0) == T && out.dim(1) == H && norm.w->numel() == H);
  pool_.parallel_for(T, 16, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) cpu_rms_norm_row(x.as<float>() + t * H, norm, H, out.as<float>() + t * H);
  });
}

void CpuBackend::add_rms_norm(Tensor& residual, const Tensor& x, const RmsNorm& norm, Tensor& out) {
  // residual, x, out [T, H]; w [H]
  const int64_t T = x.dim(0), H = x.dim(1);
  KR_CHECK(norm.present() && residual.dim(0) == T && residual.dim(1) == H && out.dim(0) == T &&
           norm.w->numel() == H);
  pool_.parallel_for(T, 16, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      float* r = residual.as<float>() + t * H;
      const float* xi = x.as<float>() + t * H;
      for (int64_t i = 0; i < H; ++i) r[i] += xi[i];
      cpu_rms_norm_row(r, norm, H, out.as<float>() + t * H);
    }
  });
}

void CpuBackend::silu_mul(const Tensor& gate_up, Activation f, Tensor& out) {
  // gate_up [T, 2I]; out [T, I]
  const int64_t T = gate_up.dim(0), I = gate_up.dim(1) / 2;
  KR_CHECK(out.dim(0) == T && out.dim(1) == I);
  pool_.parallel_for(T, 8, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const float* g = gate_up.as<float>() + t * 2 * I;
      const float* u = g + I;
      float* o = out.as<float>() + t * I;
      if (f == Activation::kGeluTanh) {
        // gelu(x, approximate="tanh") = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
        const float k = 0.7978845608028654f;  // sqrt(2 / pi)
        for (int64_t i = 0; i < I; ++i) {
          const float x = g[i];
          o[i] = 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x))) * u[i];
        }
      } else {
        for (int64_t i = 0; i < I; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      }
    }
  });
}

void CpuBackend::softcap(Tensor& x, float cap) {
  // x [R, N] f32: cap * tanh(x / cap), evaluated in double.
  KR_CHECK(x.dtype == DType::kF32 && cap > 0.0f);
  float* v = x.as<float>();
  pool_.parallel_for(x.numel(), 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) v[i] = static_cast<float>(cap * std::tanh(static_cast<double>(v[i]) / cap));
  });
}

void CpuBackend::gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) {
  // x [T, H]; idx [R]; out [R, H]
  KR_CHECK(idx.dtype == DType::kI32 && x.dtype == out.dtype);
  const int64_t R = idx.dim(0), T = x.dim(0), H = x.dim(1);
  KR_CHECK(out.dim(0) == R && out.dim(1) == H);
  const size_t row_bytes = static_cast<size_t>(H) * dtype_size_bytes(x.dtype);
  for (int64_t r = 0; r < R; ++r) {
    const int32_t i = idx.as<int32_t>()[r];
    KR_CHECK_MSG(i >= 0 && i < T, "gather_rows: index out of range");
    std::memcpy(static_cast<char*>(out.data) + r * row_bytes,
                static_cast<const char*>(x.data) + i * row_bytes, row_bytes);
  }
}

bool CpuBackend::argmax_logprob(const Tensor& logits, int32_t* ids, float* logprobs) {
  // logits [R, V] f32 → per row: argmax (lowest id on ties) and its log-softmax.
  KR_CHECK(logits.dtype == DType::kF32 && logits.ndim == 2);
  const int64_t R = logits.dim(0), V = logits.dim(1);
  pool_.parallel_for(R, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* row = logits.as<float>() + r * V;
      int64_t best = 0;
      for (int64_t i = 1; i < V; ++i)
        if (row[i] > row[best]) best = i;
      double sum = 0;
      for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(row[i]) - row[best]);
      ids[r] = static_cast<int32_t>(best);
      logprobs[r] = static_cast<float>(-std::log(sum));  // NaN/Inf rows give a non-finite value
    }
  });
  return true;
}

int64_t CpuBackend::launch_argmax(const Tensor& logits) {
  KR_CHECK(logits.dtype == DType::kF32 && logits.ndim == 2);
  const int64_t ticket = ++argmax_tickets_;
  ArgmaxSlot& slot = argmax_slots_[ticket % kArgmaxSlots];
  slot.ticket = ticket;
  slot.ids.resize(static_cast<size_t>(logits.dim(0)));
  slot.logprobs.resize(static_cast<size_t>(logits.dim(0)));
  argmax_logprob(logits, slot.ids.data(), slot.logprobs.data());
  return ticket;
}

void CpuBackend::read_argmax(int64_t ticket, int32_t* ids, float* logprobs) {
  const ArgmaxSlot& slot = argmax_slots_[ticket % kArgmaxSlots];
  KR_CHECK_MSG(ticket > 0 && slot.ticket == ticket, "read_argmax: the launch was overwritten or never made");
  std::copy(slot.ids.begin(), slot.ids.end(), ids);
  std::copy(slot.logprobs.begin(), slot.logprobs.end(), logprobs);
}

void CpuBackend::feed_sampled_ids(Tensor& ids) {
  KR_CHECK(ids.dtype == DType::kI32 && ids.ndim == 1);
  KR_CHECK_MSG(argmax_tickets_ > 0, "feed_sampled_ids before any launch_argmax");
  const ArgmaxSlot& slot = argmax_slots_[argmax_tickets_ % kArgmaxSlots];
  KR_CHECK_MSG(static_cast<size_t>(ids.dim(0)) <= slot.ids.size(), "feed_sampled_ids: more ids than the argmax gave");
  std::copy_n(slot.ids.begin(), ids.dim(0), ids.as<int32_t>());
}

}  // namespace kr
