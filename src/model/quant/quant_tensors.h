// Checked access to the tensors of one quantized module, shared by the format
// readers (awq_reader.cc, gptq_reader.cc, ...). Every failure is a Status naming
// the file and tensor. Values are read with memcpy: safetensors data offsets need
// not be aligned. Internal to src/model/quant; any thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "model/quant/quant_config.h"
#include "model/quant/quant_loader.h"

namespace kr::quant_detail {

std::string shape_str(const std::vector<int64_t>& s);
// "FILE: tensor 'NAME'"
std::string where(const TensorView& v);

const TensorView* find(const TensorMap& t, const std::string& name);
// NotFound "missing tensor 'NAME' (<what> of a <format> module)".
StatusOr<const TensorView*> require(const TensorMap& t, const std::string& name, const std::string& what);

Status expect_storage(const TensorView& v, std::initializer_list<StorageType> allowed);
// InvalidArgument "... has shape [..], expected [..] (<why>)".
Status expect_shape(const TensorView& v, const std::vector<int64_t>& want, const std::string& why);
// Shape [] or [1] (a per-tensor scalar; both are written in practice).
Status expect_scalar(const TensorView& v, const std::string& why);

// I32/U32 words as their unsigned bit patterns.
std::vector<uint32_t> read_words(const TensorView& v);
// I32 or I64 integers.
std::vector<int64_t> read_ints(const TensorView& v);
// BF16/F16/F32 as float (exact). NaN or Inf is an error naming the element.
Status read_floats(const TensorView& v, std::vector<float>* out, DType* dtype);

// The effective group size: `group_size` (-1: K). InvalidArgument naming the
// config key and module when it does not divide K.
StatusOr<int64_t> resolve_group_size(const ModuleQuantParams& p, const std::string& module, int64_t K);

// Act-order: from g_idx [K] (group of each input channel) the permutation that
// makes groups contiguous, p = stable argsort(g_idx), with every group holding
// exactly G channels; empty when g_idx[k] == k / G already. As vLLM's exllama
// path (argsort(g_idx), gptq_shuffle) and Marlin (marlin_sort_g_idx) do.
StatusOr<std::vector<int32_t>> perm_from_g_idx(const TensorView& g_idx_view, const std::vector<int64_t>& g_idx,
                                               int64_t K, int64_t G);

// Canonical packing: codes[n][j] (j in canonical order) into m->qweight, LSB first.
// `code_of(n, j)` returns the unsigned code. m->N, K, bits must be set.
template <typename F>
void pack_canonical(QuantizedMatrix* m, F code_of) {
  const int pf = m->pack_factor();
  const int64_t wpr = m->words_per_row();
  m->qweight.assign(static_cast<size_t>(m->N * wpr), 0u);
  for (int64_t n = 0; n < m->N; ++n) {
    uint32_t* row = m->qweight.data() + n * wpr;
    for (int64_t j = 0; j < m->K; ++j) row[j / pf] |= static_cast<uint32_t>(code_of(n, j)) << (m->bits * (j % pf));
  }
}

// Per-format readers (called by load_quantized_matrix after the config lookup).
StatusOr<QuantizedMatrix> read_awq(const ModuleQuantParams& p, const TensorMap& t, const std::string& module, int64_t N, int64_t K);
StatusOr<QuantizedMatrix> read_gptq(const ModuleQuantParams& p, const TensorMap& t, const std::string& module, int64_t N, int64_t K);
StatusOr<QuantizedMatrix> read_ct_packed(const ModuleQuantParams& p, const TensorMap& t, const std::string& module, int64_t N,
                                         int64_t K);
StatusOr<QuantizedMatrix> read_fp8(const ModuleQuantParams& p, const std::string& format, const TensorMap& t,
                                   const std::string& module, int64_t N, int64_t K);
StatusOr<QuantizedMatrix> read_mlx(const ModuleQuantParams& p, const TensorMap& t, const std::string& module, int64_t N, int64_t K);

}  // namespace kr::quant_detail
