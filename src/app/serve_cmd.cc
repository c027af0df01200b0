// kr-serve serve: the OpenAI-compatible HTTP server. The work is in
// server/serve_main.cc (library kr_server); this file is the app's entry point.
#include "app/commands.h"
#include "server/serve_main.h"

int kr::run_serve(int argc, char** argv) { return serve_main(argc, argv, default_model_dir()); }
