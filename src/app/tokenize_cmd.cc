// kr-serve tokenize --model DIR --jsonl [--decode]: encodes (or decodes) JSON
// lines from stdin to stdout with DIR/tokenizer.json. The line protocol lives
// in tokenizer/tokenizer_jsonl.h.
#include <cstdio>
#include <iostream>
#include <string>

#include "app/cli.h"
#include "app/commands.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_jsonl.h"

namespace kr {
namespace {

struct TokenizeArgs {
  std::string model_dir;
  bool jsonl = false, decode = false;
};

FlagSet tokenize_flags(TokenizeArgs* a) {
  FlagSet f("kr-serve tokenize", "--jsonl [--decode] [--model DIR]");
  f.string("model", "DIR", &a->model_dir, "folder with tokenizer.json").default_text("the bundled models/tiny-llama3");
  f.switch_("jsonl", &a->jsonl, "read {\"text\": ...} lines from stdin, write {\"ids\": [...]} lines (required)");
  f.switch_("decode", &a->decode, "the other way: {\"ids\": [...]} lines in, {\"text\": ...} lines out");
  return f;
}

}  // namespace

std::string tokenize_help() {
  TokenizeArgs a;
  return tokenize_flags(&a).help();
}

int run_tokenize(int argc, char** argv) {
  TokenizeArgs a;
  FlagSet flags = tokenize_flags(&a);
  if (const int rc = parse_command_line(flags, "tokenize", argc, argv); rc >= 0) return rc;
  if (!a.jsonl) return usage_error(flags, "tokenize", "--jsonl is required (the only input format)");
  if (a.model_dir.empty()) a.model_dir = default_model_dir();
  const std::string path = a.model_dir + "/tokenizer.json";
  auto tok = Tokenizer::load_from_file(path);
  if (!tok.ok()) {
    std::fprintf(stderr, "kr-serve tokenize: cannot load %s: %s\n", path.c_str(), tok.status().to_string().c_str());
    return 1;
  }
  run_tokenize_jsonl(**tok, a.decode, std::cin, std::cout);
  std::cout.flush();
  return 0;
}

}  // namespace kr
