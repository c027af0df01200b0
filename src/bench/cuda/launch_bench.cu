// kr-cuda-bench --launch-bench: launch_bench.h.
#include "bench/cuda/launch_bench.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
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

// A graph of what body() enqueues on `stream`, instantiated.
template <class Body>
cudaGraphExec_t capture(cudaStream_t stream, const Body& body) {
  cudaGraph_t graph = nullptr;
  KR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  body();
  KR_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  KR_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  KR_CUDA_CHECK(cudaGraphDestroy(graph));
  return exec;
}

// Milliseconds of the fastest of `rounds` rounds, each `steps` calls of step() enqueued on
// `stream` between two events, after one untimed step().
template <class Step>
float best_round_ms(cudaStream_t stream, int rounds, int steps, const Step& step) {
  cudaEvent_t t0, t1;
  KR_CUDA_CHECK(cudaEventCreate(&t0));
  KR_CUDA_CHECK(cudaEventCreate(&t1));
  step();  // warm-up
  float best_ms = 1e30f;
  for (int r = 0; r < rounds; ++r) {
    KR_CUDA_CHECK(cudaEventRecord(t0, stream));
    for (int i = 0; i < steps; ++i) step();
    KR_CUDA_CHECK(cudaEventRecord(t1, stream));
    KR_CUDA_CHECK(cudaEventSynchronize(t1));
    float ms = 0.0f;
    KR_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    best_ms = std::min(best_ms, ms);
  }
  KR_CUDA_CHECK(cudaEventDestroy(t0));
  KR_CUDA_CHECK(cudaEventDestroy(t1));
  return best_ms;
}

LaunchBenchRow run_chain(int blocks, bool pdl, cudaStream_t stream, int* counter) {
  KR_CUDA_CHECK(cudaMemsetAsync(counter, 0, sizeof(int), stream));
  KR_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaGraphExec_t exec = capture(stream, [&] {
    for (int i = 0; i < kHops; ++i) cuda::launch(pdl, hop_kernel, dim3(blocks), dim3(kThreads), 0, stream, counter);
  });
  const float best_ms = best_round_ms(stream, kReplays, 1, [&] { KR_CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
  int value = 0;
  KR_CUDA_CHECK(cudaMemcpy(&value, counter, sizeof(int), cudaMemcpyDeviceToHost));
  KR_CUDA_CHECK(cudaGraphExecDestroy(exec));
  LaunchBenchRow row;
  row.blocks = blocks;
  row.pdl = pdl;
  row.us_per_kernel = best_ms * 1e3 / kHops;
  row.ordered = value == kHops * (kReplays + 1);
  return row;
}

int device_sms() {
  int device = 0, sms = 0;
  KR_CUDA_CHECK(cudaGetDevice(&device));
  KR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

constexpr int kChainHops = 100;  // hop kernels in a tail bench step's graph
constexpr int kTailSteps = 50;   // steps a timed round
constexpr int kTailRounds = 3;
constexpr int kVocab = 128256;

// Microseconds of one `step`, enqueued kTailSteps times a round, best of kTailRounds.
template <class Step>
double tail_step_us(cudaStream_t stream, const Step& step) {
  return best_round_ms(stream, kTailRounds, kTailSteps, step) * 1e3 / kTailSteps;
}

}  // namespace

ArgmaxTailResult run_argmax_tail_bench() {
  const int sms = device_sms();
  cudaStream_t stream = nullptr;
  KR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  int* counter = nullptr;
  float* logits = nullptr;    // [1, kVocab]
  int32_t* ids_copy = nullptr;
  void* host = nullptr;       // ids [1] then logprobs [1], mapped
  cuda::ArgmaxScratch scratch;
  KR_CUDA_CHECK(cudaMalloc(&counter, sizeof(int)));
  KR_CUDA_CHECK(cudaMalloc(&logits, kVocab * sizeof(float)));
  KR_CUDA_CHECK(cudaMemset(logits, 0, kVocab * sizeof(float)));
  KR_CUDA_CHECK(cudaMalloc(&ids_copy, sizeof(int32_t)));
  KR_CUDA_CHECK(cudaMalloc(&scratch.partials, cuda::argmax_scratch_bytes()));
  KR_CUDA_CHECK(cudaMalloc(&scratch.tickets, cuda::kArgmaxSplitRows * sizeof(unsigned)));
  KR_CUDA_CHECK(cudaMemset(scratch.tickets, 0, cuda::kArgmaxSplitRows * sizeof(unsigned)));
  KR_CUDA_CHECK(cudaHostAlloc(&host, 64, cudaHostAllocMapped));
  void* host_dev = nullptr;
  KR_CUDA_CHECK(cudaHostGetDevicePointer(&host_dev, host, 0));
  int32_t* const ids = static_cast<int32_t*>(host_dev);
  float* const lps = reinterpret_cast<float*>(ids + 1);
  auto argmax = [&] { cuda::launch_argmax_logprob(logits, 1, kVocab, ids, lps, ids_copy, scratch, stream); };
  auto chain = [&] {
    for (int i = 0; i < kChainHops; ++i) cuda::launch(false, hop_kernel, dim3(sms), dim3(kThreads), 0, stream, counter);
  };
  cudaGraphExec_t plain = capture(stream, chain);
  cudaGraphExec_t with_argmax = capture(stream, [&] {
    chain();
    argmax();
  });
  cudaGraphExec_t argmaxes = capture(stream, [&] {
    for (int i = 0; i < kTailSteps; ++i) argmax();
  });
  ArgmaxTailResult r;
  r.chain_us = tail_step_us(stream, [&] { KR_CUDA_CHECK(cudaGraphLaunch(plain, stream)); });
  r.after_graph_us = tail_step_us(stream, [&] {
    KR_CUDA_CHECK(cudaGraphLaunch(plain, stream));
    argmax();
  }) - r.chain_us;
  r.in_graph_us = tail_step_us(stream, [&] { KR_CUDA_CHECK(cudaGraphLaunch(with_argmax, stream)); }) - r.chain_us;
  r.in_chain_us = tail_step_us(stream, [&] { KR_CUDA_CHECK(cudaGraphLaunch(argmaxes, stream)); }) / kTailSteps;
  std::printf("argmax tail (1 row of %d logits, mapped outputs): a graph of %d hops (%d blocks) %.2f us; "
              "the argmax after it +%.2f us, as its last node +%.2f us; alone in a graph %.2f us a kernel\n",
              kVocab, kChainHops, sms, r.chain_us, r.after_graph_us, r.in_graph_us, r.in_chain_us);
  for (cudaGraphExec_t e : {plain, with_argmax, argmaxes}) KR_CUDA_CHECK(cudaGraphExecDestroy(e));
  KR_CUDA_CHECK(cudaFreeHost(host));
  KR_CUDA_CHECK(cudaFree(scratch.tickets));
  KR_CUDA_CHECK(cudaFree(scratch.partials));
  KR_CUDA_CHECK(cudaFree(ids_copy));
  KR_CUDA_CHECK(cudaFree(logits));
  KR_CUDA_CHECK(cudaFree(counter));
  KR_CUDA_CHECK(cudaStreamDestroy(stream));
  return r;
}

std::vector<LaunchBenchRow> run_launch_bench() {
  const int sms = device_sms();
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
