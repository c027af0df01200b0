// kr-serve: dispatches to a subcommand (see app/commands.h).
#include <cstdio>
#include <cstring>

#include "app/commands.h"
#include "base/build_info.h"

namespace {

void print_usage() {
  std::fprintf(stderr,
               "usage: kr-serve <command> [options]\n"
               "commands:\n"
               "  serve     run the OpenAI-compatible HTTP server (default)\n"
               "  generate  generate from a prompt or token ids\n"
               "  tokenize  encode/decode JSON lines on stdin\n"
               "  quantize  write a quantized copy of a model folder (fp8, awq, gptq, w4a16, mlx)\n"
               "run 'kr-serve <command> --help' for the options of a command\n"
               "kr-serve --version prints the git commit this binary was built from\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    print_usage();
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("kr-serve %s\n", kr::build_version().c_str());
    return 0;
  }
  // No command, or an option first: serve.
  if (argc < 2 || argv[1][0] == '-') return kr::run_serve(argc, argv);
  const char* cmd = argv[1];
  if (std::strcmp(cmd, "serve") == 0) return kr::run_serve(argc - 1, argv + 1);
  if (std::strcmp(cmd, "generate") == 0) return kr::run_generate(argc - 1, argv + 1);
  if (std::strcmp(cmd, "tokenize") == 0) return kr::run_tokenize(argc - 1, argv + 1);
  if (std::strcmp(cmd, "quantize") == 0) return kr::run_quantize(argc - 1, argv + 1);
  std::fprintf(stderr, "kr-serve: unknown command '%s'\n", cmd);
  print_usage();
  return 2;
}
