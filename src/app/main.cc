// kr-serve: dispatches to a subcommand (see app/commands.h). `kr-serve --help`
// prints every command's flags with their defaults.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "app/commands.h"
#include "base/build_info.h"
#include "base/flags.h"

namespace {

void print_commands(FILE* out) {
  std::fprintf(out,
               "usage: kr-serve <command> [options]\n"
               "commands:\n"
               "  serve     run the OpenAI-compatible HTTP server (the default)\n"
               "  generate  generate from a prompt or token ids\n"
               "  tokenize  encode/decode JSON lines on stdin\n"
               "  quantize  write a quantized copy of a model folder (fp8, awq, gptq, w4a16, mlx)\n"
               "'kr-serve <command> --help' shows one command's flags; 'kr-serve --version' the git commit\n"
               "this binary was built from.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    print_commands(stdout);
    for (const std::string& h : {kr::serve_help(), kr::generate_help(), kr::tokenize_help()})
      std::printf("\n%s", h.c_str());
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("kr-serve %s\n", kr::build_version().c_str());
    return 0;
  }
  // No command, or an option first: serve.
  if (argc < 2 || argv[1][0] == '-') return kr::run_serve(argc, argv);
  const std::string cmd = argv[1];
  if (cmd == "serve") return kr::run_serve(argc - 1, argv + 1);
  if (cmd == "generate") return kr::run_generate(argc - 1, argv + 1);
  if (cmd == "tokenize") return kr::run_tokenize(argc - 1, argv + 1);
  if (cmd == "quantize") return kr::run_quantize(argc - 1, argv + 1);
  const std::string near = kr::nearest(cmd, {"serve", "generate", "tokenize", "quantize"});
  std::fprintf(stderr, "kr-serve: unknown command '%s'%s\n", cmd.c_str(),
               near.empty() ? "" : (" (did you mean '" + near + "'?)").c_str());
  print_commands(stderr);
  return 2;
}
