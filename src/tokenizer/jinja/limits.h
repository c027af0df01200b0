// Bounds that keep a hostile template or input from exhausting the server:
// hitting one fails the render (LimitError), never crashes it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kr::jinja {

struct RenderLimits {
  size_t max_output_bytes = size_t{8} << 20;  // rendered text, and any one string or list built
  int64_t max_loop_iterations = 1'000'000;    // all loop iterations of one render together
  int max_call_depth = 32;                    // nested macro calls
  // Nested statement/expression evaluations (the renderer recurses on the tree);
  // at this bound a render needs well under 256 KiB of thread stack.
  int max_render_depth = 600;
};

}  // namespace kr::jinja
