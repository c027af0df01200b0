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

// Runs every configuration on the current device and prints one line each.
std::vector<LaunchBenchRow> run_launch_bench();

}  // namespace kr
