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

struct TensorView {
  std::string name;
  std::string file;           // path of the file holding it
  DType dtype = DType::kF32;  // BF16, F16 or F32
  std::vector<int64_t> shape;
  const void* data = nullptr; // inside the mapping
  size_t bytes = 0;

  // A Tensor over the mapped memory (shape up to 4 dims).
  Tensor as_tensor() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`.
  static StatusOr<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  // Validates a header + data region held in memory (for tests); `file` names it.
  static Status parse_header(const uint8_t* bytes, size_t size, const std::string& file,
                             std::vector<TensorView>* out);
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
  static StatusOr<std::unique_ptr<SafetensorsSet>> open_dir(const std::string& dir);

  // nullptr when absent.
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, TensorView>& all() const { return by_name_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, TensorView> by_name_;
};

}  // namespace kr
