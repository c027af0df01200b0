// What this binary was built from: the git commit of the source tree at build
// time and whether tracked files differed from it (cmake/build_info.cmake
// regenerates the data on every build; see src/base/CMakeLists.txt).
//
// Threading: constants; any thread.
#pragma once

#include <string>

namespace kr {

// 40 hex digits, or "unknown" when the source was not a git checkout.
const char* build_git_commit();
// True when tracked files differed from that commit.
bool build_git_dirty();
// "0123abcd..." or "0123abcd...-dirty" or "unknown".
std::string build_version();

}  // namespace kr
