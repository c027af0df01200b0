#include "base/build_info.h"

#include "base/build_info_generated.h"  // in the build folder, written by cmake/build_info.cmake

namespace kr {

const char* build_git_commit() { return KR_BUILD_GIT_COMMIT; }

bool build_git_dirty() { return KR_BUILD_GIT_DIRTY != 0; }

std::string build_version() {
  std::string v = build_git_commit();
  if (build_git_dirty()) v += "-dirty";
  return v;
}

}  // namespace kr
