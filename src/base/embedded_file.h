// EmbeddedFile: a file compiled into the binary by cmake/embed_files.cmake
// (kr_embed_files). A table of them ends with a {nullptr, nullptr, 0} entry.
//
// Threading: immutable data; any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace kr {

struct EmbeddedFile {
  const char* name;           // path relative to the folder it was embedded from, e.g. "app.js"
  const unsigned char* data;  // `size` bytes followed by a 0 byte
  size_t size;
};

// The entry named `name` in a table, or nullptr.
inline const EmbeddedFile* find_embedded_file(const EmbeddedFile* table, std::string_view name) {
  for (const EmbeddedFile* f = table; f->name != nullptr; ++f)
    if (name == f->name) return f;
  return nullptr;
}

inline std::string_view embedded_text(const EmbeddedFile& f) {
  return {reinterpret_cast<const char*>(f.data), f.size};
}

}  // namespace kr
