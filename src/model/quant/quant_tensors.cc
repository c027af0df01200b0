#include "model/quant/quant_tensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/dtype_convert.h"

namespace kr::quant_detail {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

std::string where(const TensorView& v) { return v.file + ": tensor '" + v.name + "'"; }

const TensorView* find(const TensorMap& t, const std::string& name) {
  auto it = t.find(name);
  return it == t.end() ? nullptr : &it->second;
}

StatusOr<const TensorView*> require(const TensorMap& t, const std::string& name, const std::string& what) {
  const TensorView* v = find(t, name);
  if (v == nullptr) return NotFound("missing tensor '" + name + "' (" + what + ")");
  return v;
}

Status expect_storage(const TensorView& v, std::initializer_list<StorageType> allowed) {
  std::string names;
  for (StorageType s : allowed) {
    if (v.storage == s) return Status::Ok();
    if (!names.empty()) names += " or ";
    names += storage_type_name(s);
  }
  return InvalidArgument(where(v) + " has dtype " + storage_type_name(v.storage) + ", expected " + names);
}

Status expect_shape(const TensorView& v, const std::vector<int64_t>& want, const std::string& why) {
  if (v.shape == want) return Status::Ok();
  return InvalidArgument(where(v) + " has shape " + shape_str(v.shape) + ", expected " + shape_str(want) + " (" + why + ")");
}

Status expect_scalar(const TensorView& v, const std::string& why) {
  if (v.shape.empty() || v.shape == std::vector<int64_t>{1}) return Status::Ok();
  return InvalidArgument(where(v) + " has shape " + shape_str(v.shape) + ", expected [] or [1] (" + why + ")");
}

std::vector<uint32_t> read_words(const TensorView& v) {
  std::vector<uint32_t> w(v.bytes / 4);
  if (!w.empty()) std::memcpy(w.data(), v.data, w.size() * 4);
  return w;
}

std::vector<int64_t> read_ints(const TensorView& v) {
  std::vector<int64_t> out;
  const auto* p = static_cast<const uint8_t*>(v.data);
  if (v.storage == StorageType::kI64) {
    out.resize(v.bytes / 8);
    for (size_t i = 0; i < out.size(); ++i) std::memcpy(&out[i], p + 8 * i, 8);
  } else {
    out.resize(v.bytes / 4);
    for (size_t i = 0; i < out.size(); ++i) {
      int32_t x;
      std::memcpy(&x, p + 4 * i, 4);
      out[i] = x;
    }
  }
  return out;
}

Status read_floats(const TensorView& v, std::vector<float>* out, DType* dtype) {
  KR_RETURN_IF_ERROR(expect_storage(v, {StorageType::kBF16, StorageType::kF16, StorageType::kF32}));
  const auto* p = static_cast<const uint8_t*>(v.data);
  const size_t es = storage_type_size_bytes(v.storage);
  out->resize(v.bytes / es);
  for (size_t i = 0; i < out->size(); ++i) {
    float f;
    if (v.storage == StorageType::kF32) {
      std::memcpy(&f, p + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      f = v.storage == StorageType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
    if (!std::isfinite(f))
      return InvalidArgument(where(v) + " holds " + (std::isnan(f) ? "NaN" : "Inf") + " at flat index " + std::to_string(i));
    (*out)[i] = f;
  }
  if (dtype) *dtype = v.dtype;
  return Status::Ok();
}

StatusOr<int64_t> resolve_group_size(const ModuleQuantParams& p, const std::string& module, int64_t K) {
  const int64_t G = p.group_size == -1 ? K : p.group_size;
  if (G <= 0 || K % G != 0)
    return InvalidArgument(p.origin + ": group_size " + std::to_string(p.group_size) + " does not divide in_features " +
                           std::to_string(K) + " of module '" + module + "'");
  return G;
}

StatusOr<std::vector<int32_t>> perm_from_g_idx(const TensorView& view, const std::vector<int64_t>& g_idx, int64_t K,
                                               int64_t G) {
  const int64_t groups = K / G;
  bool trivial = true;
  std::vector<int64_t> count(static_cast<size_t>(groups), 0);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t g = g_idx[static_cast<size_t>(k)];
    if (g < 0 || g >= groups)
      return InvalidArgument(where(view) + " holds group " + std::to_string(g) + " at index " + std::to_string(k) +
                             ", outside 0.." + std::to_string(groups - 1));
    if (g != k / G) trivial = false;
    ++count[static_cast<size_t>(g)];
  }
  if (trivial) return std::vector<int32_t>();
  for (int64_t g = 0; g < groups; ++g) {
    if (count[static_cast<size_t>(g)] != G)
      return InvalidArgument(where(view) + " assigns " + std::to_string(count[static_cast<size_t>(g)]) + " channels to group " +
                             std::to_string(g) + "; every group must have group_size = " + std::to_string(G));
  }
  std::vector<int32_t> perm(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) perm[static_cast<size_t>(k)] = static_cast<int32_t>(k);
  std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) {
    return g_idx[static_cast<size_t>(a)] < g_idx[static_cast<size_t>(b)];
  });
  return perm;
}

}  // namespace kr::quant_detail
