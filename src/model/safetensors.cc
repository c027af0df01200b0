#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "model/hf_config.h"

namespace kr {
namespace {

using json = nlohmann::json;

// Header length is capped (the format's reference implementation uses 100 MB) so
// that a garbage length cannot make us allocate or parse gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

constexpr StorageType kAllStorageTypes[] = {
    StorageType::kBF16, StorageType::kF16, StorageType::kF32, StorageType::kF64, StorageType::kF8E4M3,
    StorageType::kF8E5M2, StorageType::kI8, StorageType::kU8, StorageType::kI16, StorageType::kU16,
    StorageType::kI32, StorageType::kU32, StorageType::kI64, StorageType::kU64, StorageType::kBool};

Status parse_dtype(const std::string& s, const std::string& file, const std::string& name, DTypePolicy policy,
                   TensorView* v) {
  if (s == "BF16") v->dtype = DType::kBF16;
  else if (s == "F16") v->dtype = DType::kF16;
  else if (s == "F32") v->dtype = DType::kF32;
  if (s == "BF16" || s == "F16" || s == "F32" || policy == DTypePolicy::kAny) {
    for (StorageType t : kAllStorageTypes) {
      if (s == storage_type_name(t)) {
        v->storage = t;
        if (t == StorageType::kI32) v->dtype = DType::kI32;
        return Status::Ok();
      }
    }
  }
  if (policy == DTypePolicy::kAny)
    return Unimplemented(file + ": tensor '" + name + "' has unknown safetensors dtype '" + s + "'");
  return Unimplemented(file + ": tensor '" + name + "' has unsupported dtype '" + s +
                       "' (supported: BF16, F16, F32)");
}

}  // namespace

const char* storage_type_name(StorageType t) {
  switch (t) {
    case StorageType::kBF16: return "BF16";
    case StorageType::kF16: return "F16";
    case StorageType::kF32: return "F32";
    case StorageType::kF64: return "F64";
    case StorageType::kF8E4M3: return "F8_E4M3";
    case StorageType::kF8E5M2: return "F8_E5M2";
    case StorageType::kI8: return "I8";
    case StorageType::kU8: return "U8";
    case StorageType::kI16: return "I16";
    case StorageType::kU16: return "U16";
    case StorageType::kI32: return "I32";
    case StorageType::kU32: return "U32";
    case StorageType::kI64: return "I64";
    case StorageType::kU64: return "U64";
    case StorageType::kBool: return "BOOL";
  }
  return "?";
}

size_t storage_type_size_bytes(StorageType t) {
  switch (t) {
    case StorageType::kF64: case StorageType::kI64: case StorageType::kU64: return 8;
    case StorageType::kF32: case StorageType::kI32: case StorageType::kU32: return 4;
    case StorageType::kBF16: case StorageType::kF16: case StorageType::kI16: case StorageType::kU16: return 2;
    case StorageType::kF8E4M3: case StorageType::kF8E5M2: case StorageType::kI8: case StorageType::kU8:
    case StorageType::kBool: return 1;
  }
  return 0;
}

Tensor TensorView::as_tensor() const {
  KR_CHECK(shape.size() <= static_cast<size_t>(Tensor::kMaxDims));
  KR_CHECK(storage == StorageType::kBF16 || storage == StorageType::kF16 || storage == StorageType::kF32 ||
           storage == StorageType::kI32);
  Tensor t(const_cast<void*>(data), dtype, {});
  for (int64_t d : shape) t.shape[t.ndim++] = d;
  return t;
}

Status SafetensorsFile::parse_header(const uint8_t* bytes, size_t size, const std::string& file,
                                     std::vector<TensorView>* out, DTypePolicy policy) {
  out->clear();
  if (size < 8) return DataLoss(file + ": file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len > size - 8)
    return DataLoss(file + ": header length " + std::to_string(header_len) + " runs past the end of the file (" +
                    std::to_string(size) + " bytes)");
  if (header_len > kMaxHeaderBytes) return DataLoss(file + ": header length " + std::to_string(header_len) + " is too large");
  const char* hp = reinterpret_cast<const char*>(bytes + 8);
  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_bytes = size - 8 - header_len;

  // Duplicate keys are silently merged by JSON parsers; catch them with the
  // parser callback (keys of the top-level object are at depth 1).
  std::set<std::string> keys;
  std::string duplicate;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      if (!keys.insert(parsed.get<std::string>()).second && duplicate.empty()) duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json h = json::parse(hp, hp + header_len, cb, /*allow_exceptions=*/false);
  if (h.is_discarded()) return DataLoss(file + ": malformed header JSON");
  if (!h.is_object()) return DataLoss(file + ": header JSON must be an object");
  if (!duplicate.empty()) return DataLoss(file + ": duplicate tensor name '" + duplicate + "' in header");

  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const json& e = it.value();
    const std::string ctx = file + ": tensor '" + name + "'";
    if (!e.is_object()) return DataLoss(ctx + ": entry must be an object");
    auto dt = e.find("dtype");
    auto sh = e.find("shape");
    auto off = e.find("data_offsets");
    if (dt == e.end() || !dt->is_string()) return DataLoss(ctx + ": missing or non-string 'dtype'");
    if (sh == e.end() || !sh->is_array()) return DataLoss(ctx + ": missing or non-array 'shape'");
    if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      return DataLoss(ctx + ": 'data_offsets' must be two non-negative integers");
    TensorView v;
    v.name = name;
    v.file = file;
    KR_RETURN_IF_ERROR(parse_dtype(dt->get<std::string>(), file, name, policy, &v));
    if (sh->size() > static_cast<size_t>(Tensor::kMaxDims)) return DataLoss(ctx + ": more than 4 dimensions");
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) return DataLoss(ctx + ": shape entries must be non-negative integers");
      const uint64_t dv = d.get<uint64_t>();
      if (dv > (uint64_t{1} << 40) || (dv != 0 && numel > (uint64_t{1} << 50) / dv))
        return DataLoss(ctx + ": shape is too large");
      numel *= dv;
      v.shape.push_back(static_cast<int64_t>(dv));
    }
    const uint64_t b = (*off)[0].get<uint64_t>(), en = (*off)[1].get<uint64_t>();
    if (b > en || en > data_bytes)
      return DataLoss(ctx + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                      ") out of range of the data section (" + std::to_string(data_bytes) + " bytes)");
    const uint64_t expect = numel * storage_type_size_bytes(v.storage);
    if (en - b != expect)
      return DataLoss(ctx + ": data_offsets span " + std::to_string(en - b) + " bytes but shape x dtype needs " +
                      std::to_string(expect));
    v.data = data + b;
    v.bytes = static_cast<size_t>(expect);
    out->push_back(std::move(v));
    ranges.push_back({b, en, &out->back().name});
  }
  // Names are stable now; re-point the ranges before sorting.
  for (size_t i = 0; i < ranges.size(); ++i) ranges[i].name = &(*out)[i].name;
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end && ranges[i].end > ranges[i].begin)
      return DataLoss(file + ": tensor '" + *ranges[i].name + "' overlaps tensor '" + *ranges[i - 1].name + "'");
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path, DTypePolicy policy) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return NotFound(path + ": not a regular file");
  }
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_bytes_ = static_cast<size_t>(st.st_size);
  if (f->map_bytes_ > 0) {
    void* m = ::mmap(nullptr, f->map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      ::close(fd);
      return Internal(path + ": mmap failed (" + std::strerror(errno) + ")");
    }
    f->map_ = m;
  }
  ::close(fd);  // the mapping stays valid
  static const uint8_t kEmpty[1] = {0};
  const uint8_t* bytes = f->map_ ? static_cast<const uint8_t*>(f->map_) : kEmpty;
  KR_RETURN_IF_ERROR(parse_header(bytes, f->map_bytes_, path, &f->tensors_, policy));
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

const TensorView* SafetensorsSet::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

StatusOr<std::unique_ptr<SafetensorsSet>> SafetensorsSet::open_dir(const std::string& dir, DTypePolicy policy) {
  auto set = std::make_unique<SafetensorsSet>();
  const std::string index_path = dir + "/model.safetensors.index.json";
  const std::string single_path = dir + "/model.safetensors";
  struct stat st {};
  if (::stat(index_path.c_str(), &st) == 0) {
    KR_ASSIGN_OR_RETURN(std::string text, read_text_file(index_path));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return DataLoss(index_path + ": malformed JSON");
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return DataLoss(index_path + ": key 'weight_map' is missing or not an object");
    std::map<std::string, std::string> weight_map;  // tensor → shard file name
    std::vector<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) return DataLoss(index_path + ": weight_map entry '" + it.key() + "' is not a string");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        return DataLoss(index_path + ": weight_map entry '" + it.key() + "' names a bad file '" + shard + "'");
      weight_map[it.key()] = shard;
      if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
    }
    for (const std::string& shard : shards) {
      KR_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(dir + "/" + shard, policy));
      for (const TensorView& v : f->tensors()) {
        if (set->by_name_.count(v.name))
          return DataLoss(f->path() + ": tensor '" + v.name + "' also appears in " + set->by_name_[v.name].file);
        auto wm = weight_map.find(v.name);
        if (wm == weight_map.end() || wm->second != shard)
          return DataLoss(f->path() + ": tensor '" + v.name + "' is not mapped to this file by " + index_path);
        set->by_name_[v.name] = v;
      }
      set->files_.push_back(std::move(f));
    }
    for (const auto& [name, shard] : weight_map) {
      if (!set->by_name_.count(name))
        return DataLoss(index_path + ": tensor '" + name + "' is not in " + dir + "/" + shard);
    }
    return set;
  }
  if (::stat(single_path.c_str(), &st) != 0)
    return NotFound(dir + ": no model.safetensors or model.safetensors.index.json");
  KR_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(single_path, policy));
  for (const TensorView& v : f->tensors()) set->by_name_[v.name] = v;
  set->files_.push_back(std::move(f));
  return set;
}

}  // namespace kr
