// Read-only, memory-mapped safetensors: one file, or a sharded folder
// (model.safetensors.index.json). Every header is validated up front so that a
// bad file gives a Status naming the file and tensor, never a crash.
//
// Threading: open on any thread; the views are immutable and may be read from
// any thread while the SafetensorsSet lives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/tensor.h"
#include "base/status.h"

namespace kr {

// Every element type a safetensors header may name. Model weights use BF16, F16
// and F32; quantized checkpoints add I32/U32/I64 (packed codes, indices, shapes)
// and F8_E4M3.
enum class StorageType : uint8_t { kBF16, kF16, kF32, kF64, kF8E4M3, kF8E5M2, kI8, kU8, kI16, kU16, kI32, kU32, kI64, kU64, kBool };

// "BF16", "F8_E4M3", ... as the header spells it.
const char* storage_type_name(StorageType t);
size_t storage_type_size_bytes(StorageType t);

struct TensorView {
  std::string name;
  std::string file;           // path of the file holding it
  DType dtype = DType::kF32;  // BF16, F16 or F32 (I32 for I32 storage); meaningless for other storage types
  StorageType storage = StorageType::kF32;  // the header's dtype
  std::vector<int64_t> shape;
  const void* data = nullptr; // inside the mapping
  size_t bytes = 0;

  // A Tensor over the mapped memory (shape up to 4 dims; BF16/F16/F32/I32 storage only).
  Tensor as_tensor() const;
};

// Which header dtypes parse: model folders accept the float types only (anything
// else is an error naming the tensor); quantized-checkpoint readers accept all.
enum class DTypePolicy : uint8_t { kFloatOnly, kAny };

class SafetensorsFile {
 public:
  // Maps and validates `path`.
  static StatusOr<std::unique_ptr<SafetensorsFile>> open(const std::string& path,
                                                         DTypePolicy policy = DTypePolicy::kFloatOnly);
  // Validates a header + data region held in memory (for tests); `file` names it.
  static Status parse_header(const uint8_t* bytes, size_t size, const std::string& file,
                             std::vector<TensorView>* out, DTypePolicy policy = DTypePolicy::kFloatOnly);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  std::vector<TensorView> tensors_;
};

// All tensors of a model folder: DIR/model.safetensors, or the shards named by
// DIR/model.safetensors.index.json.
class SafetensorsSet {
 public:
  static StatusOr<std::unique_ptr<SafetensorsSet>> open_dir(const std::string& dir,
                                                            DTypePolicy policy = DTypePolicy::kFloatOnly);

  // nullptr when absent.
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, TensorView>& all() const { return by_name_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, TensorView> by_name_;
};

}  // namespace kr
