// kr-serve tokenize --model DIR --jsonl [--decode]: encodes (or decodes) JSON
// lines from stdin to stdout with DIR/tokenizer.json. The line protocol lives
// in tokenizer/tokenizer_jsonl.h.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "app/commands.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_jsonl.h"

namespace kr {
namespace {

void usage() {
  std::fprintf(stderr,
               "usage: kr-serve tokenize [--model DIR] --jsonl [--decode]\n"
               "  reads {\"text\": ...} lines from stdin and writes {\"ids\": [...]} lines;\n"
               "  with --decode reads {\"ids\": [...]} and writes {\"text\": ...}.\n");
}

}  // namespace

int run_tokenize(int argc, char** argv) {
  std::string model_dir;
  bool jsonl = false, decode = false;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strcmp(a, "--model") == 0) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kr-serve tokenize: --model needs a folder\n");
        usage();
        return 2;
      }
      model_dir = argv[++i];
    } else if (std::strcmp(a, "--jsonl") == 0) {
      jsonl = true;
    } else if (std::strcmp(a, "--decode") == 0) {
      decode = true;
    } else if (std::strcmp(a, "--help") == 0 || std::strcmp(a, "-h") == 0) {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "kr-serve tokenize: unknown argument '%s'\n", a);
      usage();
      return 2;
    }
  }
  if (!jsonl) {
    std::fprintf(stderr, "kr-serve tokenize: --jsonl is required (the only input format)\n");
    usage();
    return 2;
  }
  if (model_dir.empty()) model_dir = default_model_dir();
  const std::string path = model_dir + "/tokenizer.json";
  auto tok = Tokenizer::load_from_file(path);
  if (!tok.ok()) {
    std::fprintf(stderr, "kr-serve tokenize: cannot load %s: %s\n", path.c_str(), tok.status().to_string().c_str());
    return 1;
  }
  run_tokenize_jsonl(**tok, decode, std::cin, std::cout);
  std::cout.flush();
  return 0;
}

}  // namespace kr
