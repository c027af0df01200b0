// Subcommands of the kr-serve binary. Each returns the process exit code
// (0 ok, 2 usage error, 1 runtime error) and prints its own errors to stderr.
#pragma once

#include <string>

namespace kr {

// kr-serve generate --model DIR (--prompt TEXT [--chat] | --ids 1,2,3) ...   (src/app/generate_cmd.cc)
int run_generate(int argc, char** argv);
std::string generate_help();
// kr-serve tokenize --model DIR --jsonl [--decode]                           (src/app/tokenize_cmd.cc)
int run_tokenize(int argc, char** argv);
std::string tokenize_help();
// kr-serve serve --model DIR [--host H] [--port P] ...                      (src/app/serve_cmd.cc)
int run_serve(int argc, char** argv);
std::string serve_help();  // every flag with its default
// kr-serve quantize --model DIR --format F [--group-size G] --out DIR        (src/app/quantize_cmd.cc)
int run_quantize(int argc, char** argv);

// Folder of the bundled demo model (models/tiny-llama3), used when no --model is given.
const char* default_model_dir();

}  // namespace kr
