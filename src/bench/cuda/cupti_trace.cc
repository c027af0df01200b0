// libkr_cupti_trace.so: the kernel timeline of a CUDA process, the kernel nodes
// of replayed graphs included, for seeing where a decode step's time goes on a
// machine without Nsight Systems. The CUDA driver loads it through
// CUDA_INJECTION64_PATH and calls InitializeInjection:
//
//   export CUDA_INJECTION64_PATH=build-cuda/lib/libkr_cupti_trace.so KR_CUPTI_OUT=trace.csv
//   kr-cuda-bench --arch llama-3.2-3b --quant awq --profile-decode 8 --profile-batch 1
//   scripts/kernel_timeline.py trace.csv 8
//
// Writes one line per kernel that ran between cudaProfilerStart and
// cudaProfilerStop (kr-cuda-bench --profile-decode brackets its timed steps with
// them): start_ns,end_ns,grid,block,cluster,"demangled name". CUPTI's activity
// records add about 1-3 us to each kernel, so the totals are longer than an
// untraced step; the split between kernels is what it is for. A measurement
// tool: not linked into kr-serve, not used by tests. The environment variable is
// this tool's own (the backend reads none).
#include <cupti.h>
#include <cxxabi.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

// At most this many kernels are kept (~56 bytes each); later ones are counted and dropped.
constexpr size_t kMaxRecords = size_t{4} << 20;

struct KernelRecord {
  uint64_t start, end;
  int grid[3], block[3], cluster[3];
  const char* name;  // CUPTI's: shared by every record of the kernel, valid for the process
};

std::mutex g_mu;  // g_records, g_dropped: CUPTI completes buffers on its own thread
std::vector<KernelRecord>* g_records = nullptr;
size_t g_dropped = 0;
std::atomic<uint64_t> g_begin{0}, g_end{~uint64_t{0}};

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* s = nullptr;
  cuptiGetResultString(r, &s);
  std::fprintf(stderr, "kr_cupti_trace: %s: %s\n", what, s ? s : "?");
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *size = size_t{8} << 20;
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, *size));
  if (*buffer == nullptr) {
    std::fprintf(stderr, "kr_cupti_trace: no memory for an activity buffer; kernels will be missing\n");
    *size = 0;
  }
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard<std::mutex> lock(g_mu);
  CUpti_Activity* rec = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    // Kernels known to lie outside the profiler range are not kept.
    if ((g_begin != 0 && k->end < g_begin) || k->start > g_end) continue;
    if (g_records->size() >= kMaxRecords) {
      ++g_dropped;
      continue;
    }
    g_records->push_back({k->start, k->end, {k->gridX, k->gridY, k->gridZ}, {k->blockX, k->blockY, k->blockZ},
                          {static_cast<int>(k->clusterX), static_cast<int>(k->clusterY), static_cast<int>(k->clusterZ)},
                          k->name});
  }
  std::free(buffer);
}

// cudaProfilerStart / Stop bound the kernels written out.
void CUPTIAPI on_api(void*, CUpti_CallbackDomain domain, CUpti_CallbackId id, const void* data) {
  const auto* info = static_cast<const CUpti_CallbackData*>(data);
  if (domain != CUPTI_CB_DOMAIN_RUNTIME_API || info->callbackSite != CUPTI_API_EXIT) return;
  uint64_t ts = 0;
  cuptiGetTimestamp(&ts);
  if (id == CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStart_v4000) g_begin = ts;
  if (id == CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStop_v4000) g_end = ts;
}

// The demangled name, with " as ' (the CSV quotes it); once per kernel.
const std::string& display_name(const char* mangled, std::map<const char*, std::string>& cache) {
  auto it = cache.find(mangled);
  if (it != cache.end()) return it->second;
  std::string name = mangled != nullptr ? mangled : "?";
  int status = 0;
  char* dem = mangled != nullptr ? abi::__cxa_demangle(mangled, nullptr, nullptr, &status) : nullptr;
  if (status == 0 && dem != nullptr) name = dem;
  std::free(dem);
  for (char& c : name)
    if (c == '"') c = '\'';
  return cache.emplace(mangled, std::move(name)).first->second;
}

void write_out() {
  cuptiActivityFlushAll(1);
  const char* env = std::getenv("KR_CUPTI_OUT");
  const char* path = env != nullptr ? env : "kr_cupti_trace.csv";
  FILE* f = std::fopen(path, "w");
  if (f == nullptr) {
    std::fprintf(stderr, "kr_cupti_trace: cannot write %s: %s\n", path, std::strerror(errno));
    return;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  std::map<const char*, std::string> names;
  std::fprintf(f, "start_ns,end_ns,grid,block,cluster,name\n");
  for (const KernelRecord& r : *g_records) {
    if (r.start < g_begin || r.end > g_end) continue;
    std::fprintf(f, "%llu,%llu,%dx%dx%d,%dx%dx%d,%dx%dx%d,\"%s\"\n", static_cast<unsigned long long>(r.start),
                 static_cast<unsigned long long>(r.end), r.grid[0], r.grid[1], r.grid[2], r.block[0], r.block[1],
                 r.block[2], r.cluster[0], r.cluster[1], r.cluster[2], display_name(r.name, names).c_str());
  }
  std::fclose(f);
  if (g_dropped > 0)
    std::fprintf(stderr, "kr_cupti_trace: %zu kernels past the first %zu not recorded\n", g_dropped, kMaxRecords);
}

}  // namespace

extern "C" int InitializeInjection() {
  g_records = new std::vector<KernelRecord>();
  check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "register buffers");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernels");
  CUpti_SubscriberHandle sub;
  check(cuptiSubscribe(&sub, on_api, nullptr), "subscribe");
  check(cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStart_v4000),
        "profiler start callback");
  check(cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStop_v4000),
        "profiler stop callback");
  std::atexit(write_out);
  return 1;
}
