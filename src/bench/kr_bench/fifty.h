// `kr-bench fifty`: the 50-questions comparison of the seed project. For each
// configuration: start the server, warm up, send the questions one after
// another, stop the server. Writes 50-questions-comparison.json, .md and two
// SVG box plots into opts.out_dir. Call from the main thread.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "bench/kr_bench/target.h"

namespace kr::bench {

// Returns the process exit code: 0 when every configuration ran and every request succeeded,
// 1 otherwise (reports are written either way when possible).
int run_fifty(const CommonOptions& opts, int num_questions);

// Adds "overhead_vs_baseline" to each configuration that ran, relative to the one named
// baseline (else the first that ran).
void add_fifty_overheads(nlohmann::json& configurations);

// The Markdown report rendered from the JSON report (so a saved JSON can be re-rendered).
std::string render_fifty_markdown(const nlohmann::json& report);

}  // namespace kr::bench
