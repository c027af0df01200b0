#include "model/quant/safetensors_writer.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace kr {

uint64_t PlannedTensor::bytes() const {
  uint64_t n = storage_type_size_bytes(type);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

namespace {

using ojson = nlohmann::ordered_json;

Status write_one(const std::string& path, const std::vector<const PlannedTensor*>& tensors,
                 const std::map<std::string, std::string>& metadata) {
  ojson h = ojson::object();
  if (!metadata.empty()) {
    ojson m = ojson::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = m;
  }
  uint64_t off = 0;
  for (const PlannedTensor* t : tensors) {
    h[t->name] = {{"dtype", storage_type_name(t->type)}, {"shape", t->shape}, {"data_offsets", {off, off + t->bytes()}}};
    off += t->bytes();
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as the reference writer pads
  const std::string tmp = path + ".partial";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return Internal(tmp + ": cannot open for writing (" + std::strerror(errno) + ")");
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  std::string buf;
  for (const PlannedTensor* t : tensors) {
    buf.clear();
    KR_RETURN_IF_ERROR(t->produce(&buf));
    if (buf.size() != t->bytes())
      return Internal("tensor '" + t->name + "': produced " + std::to_string(buf.size()) + " bytes, planned " +
                      std::to_string(t->bytes()));
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (!out) return Internal(tmp + ": write failed (" + std::strerror(errno) + ")");
  }
  out.close();
  if (!out) return Internal(tmp + ": write failed");
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Internal(path + ": rename failed (" + ec.message() + ")");
  return Status::Ok();
}

}  // namespace

Status write_safetensors_folder(const std::string& dir, const std::vector<PlannedTensor>& tensors,
                                const std::map<std::string, std::string>& metadata, uint64_t max_shard_bytes) {
  std::vector<std::vector<const PlannedTensor*>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const PlannedTensor& t : tensors) {
    if (in_shard > 0 && in_shard + t.bytes() > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&t);
    in_shard += t.bytes();
    total += t.bytes();
  }
  if (shards.size() == 1) return write_one(dir + "/model.safetensors", shards[0], metadata);
  ojson index = {{"metadata", {{"total_size", total}}}, {"weight_map", ojson::object()}};
  for (size_t i = 0; i < shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    KR_RETURN_IF_ERROR(write_one(dir + "/" + name, shards[i], metadata));
    for (const PlannedTensor* t : shards[i]) index["weight_map"][t->name] = name;
  }
  std::ofstream out(dir + "/model.safetensors.index.json", std::ios::trunc);
  out << index.dump(2) << "\n";
  if (!out) return Internal(dir + "/model.safetensors.index.json: write failed");
  return Status::Ok();
}

}  // namespace kr
