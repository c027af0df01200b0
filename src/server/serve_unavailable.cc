// Stand-in for serve_main while the engine, tokenizer or metrics library is
// missing from the build (see CMakeLists.txt): the binary links and says why.
#include <cstdio>

#include "server/serve_main.h"

namespace kr {

int serve_main(int, char**, const char*) {
  std::fprintf(stderr, "kr-serve serve: not built (engine, tokenizer or metrics library missing)\n");
  return 2;
}

}  // namespace kr
