// kr-cuda-bench --launch-bench (launch_bench.cu): what one kernel boundary costs
// inside a replayed CUDA graph, the floor under a decode step of ~200 kernels.
// A graph of kHops kernels that do nothing but hand a counter on (block 0's
// thread 0 reads it after griddepcontrol.wait and writes it + 1) is replayed and
// timed, per (grid blocks, PDL on/off); the counter's final value checks that
// every kernel saw its predecessor's write.
//
// Threading: the main thread of kr-cuda-bench.
#pragma once

#include <vector>

namespace kr {

struct LaunchBenchRow {
  int blocks = 0;        // grid size of every kernel of the chain (128 threads each)
  bool pdl = false;      // kernels launched with programmatic dependent launch
  double us_per_kernel = 0.0;  // best of the timed replays, divided by the chain's length
  bool ordered = false;  // the counter reached its expected value
};

// The greedy step's tail: a graph of kChainHops hop kernels (the step's graph, 132 blocks
// each) replayed kTailSteps times back to back (a), each followed by the split argmax of a
// 128,256-logit row launched on its own after the graph (b, as the overlapped decode does),
// or with the argmax as the graph's last node (c); the argmax writes mapped host memory, as
// the backend's does. Microseconds a step beyond (a), best of the timed rounds.
struct ArgmaxTailResult {
  double chain_us = 0.0;          // (a): one replay of the chain
  double after_graph_us = 0.0;    // (b) - (a)
  double in_graph_us = 0.0;       // (c) - (a)
  double in_chain_us = 0.0;       // a graph of kTailSteps argmax kernels alone, per kernel
};

// Runs every configuration on the current device and prints one line each.
std::vector<LaunchBenchRow> run_launch_bench();
ArgmaxTailResult run_argmax_tail_bench();

}  // namespace kr
