// serve_main: parses `kr-serve serve` flags (and KR_* environment variables),
// starts the HTTP server, loads the model, serves until SIGTERM/SIGINT, then
// drains. Returns the process exit code (0 ok, 2 usage error, 1 runtime error).
//
// Threading: the process's main thread; it blocks SIGINT/SIGTERM/SIGPIPE
// before starting any thread and waits for them with sigwait.
#pragma once

namespace kr {

int serve_main(int argc, char** argv, const char* default_model_dir);

}  // namespace kr
