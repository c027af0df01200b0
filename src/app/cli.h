// The subcommands' shared handling of a FlagSet: --help prints the help to
// stdout (exit 0); a bad flag prints "kr-serve CMD: <error>" and the help to
// stderr (exit 2).
//
// Threading: the main thread.
#pragma once

#include <cstdio>
#include <string>

#include "base/flags.h"

namespace kr {

// Returns -1 to go on, else the exit code to return.
inline int parse_command_line(FlagSet& flags, const char* command, int argc, char** argv) {
  bool help = false;
  std::string error;
  if (!flags.parse(argc, argv, 1, &help, &error)) {
    std::fprintf(stderr, "kr-serve %s: %s\n%s", command, error.c_str(), flags.help().c_str());
    return 2;
  }
  if (help) {
    std::fputs(flags.help().c_str(), stdout);
    return 0;
  }
  return -1;
}

// A usage error found after parsing (a combination of flags).
inline int usage_error(const FlagSet& flags, const char* command, const std::string& error) {
  std::fprintf(stderr, "kr-serve %s: %s\n%s", command, error.c_str(), flags.help().c_str());
  return 2;
}

}  // namespace kr
