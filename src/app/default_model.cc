// default_model_dir(): the bundled demo model. The build records the source
// tree's models/tiny-llama3 (KR_DEFAULT_MODEL_DIR); when the binary runs
// elsewhere (a copied build, another machine) we look next to the executable
// and in the working directory instead.
#include <unistd.h>

#include <string>
#include <sys/stat.h>

#include "app/commands.h"

#ifndef KR_DEFAULT_MODEL_DIR
#define KR_DEFAULT_MODEL_DIR "models/tiny-llama3"
#endif

namespace kr {
namespace {

bool has_config(const std::string& dir) {
  struct stat st {};
  return ::stat((dir + "/config.json").c_str(), &st) == 0;
}

std::string exe_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::string find_default_model() {
  if (has_config(KR_DEFAULT_MODEL_DIR)) return KR_DEFAULT_MODEL_DIR;
  const std::string exe = exe_dir();
  // build/bin/kr-serve → ../../models; an installed bin/kr-serve → ../models.
  for (const std::string& cand : {exe + "/models/tiny-llama3", exe + "/../models/tiny-llama3",
                                  exe + "/../../models/tiny-llama3", std::string("models/tiny-llama3")}) {
    if (has_config(cand)) return cand;
  }
  return KR_DEFAULT_MODEL_DIR;
}

}  // namespace

const char* default_model_dir() {
  static const std::string dir = find_default_model();
  return dir.c_str();
}

}  // namespace kr
