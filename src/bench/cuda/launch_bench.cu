// kr-cuda-bench --launch-bench: launch_bench.h.
#include "bench/cuda/launch_bench.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_launch.cuh"

namespace kr {
namespace {

constexpr int kHops = 1000;    // kernels in the graph
constexpr int kReplays = 5;    // timed replays (after one untimed)
constexpr int kThreads = 128;

// One hop: every block signals its dependents and waits for the kernel before it;
// block 0 then passes the counter on.
__global__ void hop_kernel(int* counter) {
  cuda::pdl_launch_dependents();
  cuda::pdl_wait();
  if (blockIdx.x == 0 && threadIdx.x == 0) *counter = *counter + 1;
}

LaunchBenchRow run_chain(int blocks, bool pdl, cudaStream_t stream, int* counter) {
  KR_CUDA_CHECK(cudaMemsetAsync(counter, 0, sizeof(int), stream));
  KR_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaGraph_t graph = nullptr;
  KR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < kHops; ++i) cuda::launch(pdl, hop_kernel, dim3(blocks), dim3(kThreads), 0, stream, counter);
  KR_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  KR_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t t0, t1;
  KR_CUDA_CHECK(cudaEventCreate(&t0));
  KR_CUDA_CHECK(cudaEventCreate(&t1));
  KR_CUDA_CHECK(cudaGraphLaunch(exec, stream));  // warm-up
  float best_ms = 1e30f;
  for (int r = 0; r < kReplays; ++r) {
    KR_CUDA_CHECK(cudaEventRecord(t0, stream));
    KR_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    KR_CUDA_CHECK(cudaEventRecord(t1, stream));
    KR_CUDA_CHECK(cudaEventSynchronize(t1));
    float ms = 0.0f;
    KR_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    best_ms = std::min(best_ms, ms);
  }
  int value = 0;
  KR_CUDA_CHECK(cudaMemcpy(&value, counter, sizeof(int), cudaMemcpyDeviceToHost));
  KR_CUDA_CHECK(cudaEventDestroy(t0));
  KR_CUDA_CHECK(cudaEventDestroy(t1));
  KR_CUDA_CHECK(cudaGraphExecDestroy(exec));
  KR_CUDA_CHECK(cudaGraphDestroy(graph));
  LaunchBenchRow row;
  row.blocks = blocks;
  row.pdl = pdl;
  row.us_per_kernel = best_ms * 1e3 / kHops;
  row.ordered = value == kHops * (kReplays + 1);
  return row;
}

}  // namespace

std::vector<LaunchBenchRow> run_launch_bench() {
  int device = 0, sms = 0;
  KR_CUDA_CHECK(cudaGetDevice(&device));
  KR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  cudaStream_t stream = nullptr;
  KR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  int* counter = nullptr;
  KR_CUDA_CHECK(cudaMalloc(&counter, sizeof(int)));
  std::vector<LaunchBenchRow> rows;
  for (int blocks : {1, sms, 4 * sms}) {
    for (bool pdl : {false, true}) {
      rows.push_back(run_chain(blocks, pdl, stream, counter));
      const LaunchBenchRow& r = rows.back();
      std::printf("launch chain: %4d blocks of %d threads, PDL %-3s %6.2f us a kernel (graph of %d, best of %d)%s\n",
                  r.blocks, kThreads, r.pdl ? "on" : "off", r.us_per_kernel, kHops, kReplays,
                  r.ordered ? "" : "  ORDER BROKEN: the counter missed increments");
    }
  }
  KR_CUDA_CHECK(cudaFree(counter));
  KR_CUDA_CHECK(cudaStreamDestroy(stream));
  return rows;
}

}  // namespace kr
