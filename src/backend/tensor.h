// Tensor: a non-owning view of memory that a Backend allocated (host memory
// for the CPU backend, device memory for CUDA). Row-major, contiguous.
// Shapes are written outermost first: a [tokens, hidden] tensor has
// dim(0) = tokens, dim(1) = hidden.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "base/check.h"

namespace kr {

// kF8E4M3: float8_e4m3fn bytes (the FP8 KV cache only; backend/float_codec.h).
enum class DType : uint8_t { kF32, kF16, kBF16, kI32, kF8E4M3 };

inline size_t dtype_size_bytes(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
    case DType::kF8E4M3: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI32: return "I32";
    case DType::kF8E4M3: return "F8_E4M3";
  }
  return "?";
}

struct Tensor {
  static constexpr int kMaxDims = 4;

  void* data = nullptr;
  DType dtype = DType::kF32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {0, 0, 0, 0};

  Tensor() = default;
  Tensor(void* d, DType t, std::initializer_list<int64_t> dims) : data(d), dtype(t) {
    KR_CHECK(dims.size() <= kMaxDims);
    for (int64_t v : dims) shape[ndim++] = v;
  }

  int64_t dim(int i) const {
    KR_CHECK(i >= 0 && i < ndim);
    return shape[i];
  }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size_bytes(dtype); }
  bool empty() const { return data == nullptr; }

  template <typename T>
  T* as() const { return static_cast<T*>(data); }

  // Rows [begin, begin + count) along dim 0 (contiguous sub-view).
  Tensor rows(int64_t begin, int64_t count) const {
    KR_CHECK(ndim >= 1 && begin >= 0 && begin + count <= shape[0]);
    Tensor t = *this;
    t.shape[0] = count;
    const int64_t row_elems = numel() / (shape[0] == 0 ? 1 : shape[0]);
    t.data = static_cast<char*>(data) + static_cast<size_t>(begin * row_elems) * dtype_size_bytes(dtype);
    return t;
  }
};

}  // namespace kr
