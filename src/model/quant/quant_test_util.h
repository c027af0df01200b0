// Test helpers: the packer's fixture folders (scripts/quant/pack.py fixtures),
// generated once per test process into a temp dir, and small file utilities.
// Test-only; single-threaded.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kr::quant_test {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string make_temp_dir(const char* stem) {
  std::string tmpl = std::string("/tmp/") + stem + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

// Runs the NumPy packer once; "" (and a test failure) when it cannot run. The
// folder is removed when the process exits.
inline const std::string& fixtures_dir() {
  struct Owned {
    std::string path;
    ~Owned() {
      if (!path.empty()) std::filesystem::remove_all(path);
    }
  };
  static Owned owned;
  static std::string dir;
  static bool tried = false;
  if (!tried) {
    tried = true;
    std::string d = make_temp_dir("kr-quant-fixtures");
    owned.path = d;
    const std::string cmd = std::string(KR_PYTHON3) + " " + KR_SOURCE_DIR + "/scripts/quant/pack.py fixtures --out " + d +
                            " > " + d + "/pack.log 2>&1";
    if (std::system(cmd.c_str()) == 0) {
      dir = d;
    } else {
      ADD_FAILURE() << "the fixture packer failed (" << cmd << "); it needs Python 3 with NumPy "
                    << "(apt-get install python3-numpy):\n"
                    << slurp(d + "/pack.log");
    }
  }
  return dir;
}

inline std::vector<std::string> fixture_names() {
  const std::string& d = fixtures_dir();
  if (d.empty()) return {};
  return nlohmann::json::parse(slurp(d + "/fixtures.json")).get<std::vector<std::string>>();
}

// A copy of one fixture folder whose safetensors header, data and config can be
// edited, then written back.
class FolderCopy {
 public:
  explicit FolderCopy(const std::string& fixture) {
    dir_ = make_temp_dir("kr-quant-hostile");
    std::filesystem::copy(fixtures_dir() + "/" + fixture, dir_, std::filesystem::copy_options::recursive);
    const std::string st = slurp(dir_ + "/model.safetensors");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(st[i]);
    header = nlohmann::json::parse(st.substr(8, n));
    data = st.substr(8 + n);
    config = nlohmann::json::parse(slurp(dir_ + "/config.json"));
    manifest = nlohmann::json::parse(slurp(dir_ + "/manifest.json"));
  }
  ~FolderCopy() { std::filesystem::remove_all(dir_); }

  const std::string& dir() const { return dir_; }
  // Byte offset of `name`'s data within `data`.
  size_t offset(const std::string& name) const { return header.at(name).at("data_offsets")[0].get<size_t>(); }
  void write() {
    const std::string h = header.dump();
    std::string len(8, '\0');
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    spit(dir_ + "/model.safetensors", len + h + data);
    spit(dir_ + "/config.json", config.dump(2));
  }

  nlohmann::json header, config, manifest;
  std::string data;

 private:
  std::string dir_;
};

}  // namespace kr::quant_test
