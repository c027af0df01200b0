// The stamped commit is the source tree's HEAD at build time: a build after a
// new commit must restamp it (cmake/build_info.cmake runs on every build).
#include "base/build_info.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace kr {
namespace {

std::string run(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

TEST(BuildInfo, CommitIsTheSourceTreeHead) {
  const std::string head = run(std::string("git -C '") + KR_GIT_SOURCE_DIR + "' rev-parse HEAD 2>/dev/null");
  if (head.empty()) {
    // Not a git checkout (a source tarball): nothing to stamp.
    EXPECT_STREQ(build_git_commit(), "unknown");
    return;
  }
  EXPECT_EQ(build_git_commit(), head) << "the binary's commit is not HEAD: was the build run after the last commit?";
}

TEST(BuildInfo, VersionIsCommitWithDirtySuffix) {
  const std::string v = build_version();
  EXPECT_EQ(v.rfind(build_git_commit(), 0), 0u);
  EXPECT_EQ(v.size() > std::string(build_git_commit()).size(), build_git_dirty());
  if (build_git_dirty()) {
    EXPECT_EQ(v.substr(v.size() - 6), "-dirty");
  }
}

}  // namespace
}  // namespace kr
