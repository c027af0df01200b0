// kr-serve quantize --model DIR --format F [--group-size G] --out DIR: writes a
// round-to-nearest quantized copy of a float model folder in a real checkpoint
// format (see model/quant/quantize_model.h for what each format writes).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "app/commands.h"
#include "model/quant/quantize_model.h"

namespace kr {
namespace {

void usage() {
  std::fprintf(stderr,
               "usage: kr-serve quantize --model DIR --format FORMAT [--group-size G] --out DIR\n"
               "  round-to-nearest quantization (no calibration data) into a folder that vLLM,\n"
               "  transformers or mlx_lm load as is:\n"
               "    fp8          compressed-tensors FP8, per-tensor weight scales, dynamic activations\n"
               "    fp8-dynamic  compressed-tensors FP8_DYNAMIC: per-channel weights, per-token activations\n"
               "    awq          AutoAWQ GEMM 4-bit (group size default 128)\n"
               "    gptq         AutoGPTQ 4-bit symmetric (group size default 128)\n"
               "    w4a16        compressed-tensors W4A16 (group size default 128)\n"
               "    mlx4, mlx8   MLX affine 4/8-bit incl. embeddings and lm_head (group size 32, 64 (default) or 128)\n");
}

}  // namespace

int run_quantize(int argc, char** argv) {
  std::string model_dir, out_dir, format;
  QuantizeOptions opt;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kr-serve quantize: %s needs %s\n", a, what);
        return nullptr;
      }
      return argv[++i];
    };
    const char* v = nullptr;
    if (std::strcmp(a, "--model") == 0) {
      if (!(v = value("a folder"))) return usage(), 2;
      model_dir = v;
    } else if (std::strcmp(a, "--out") == 0) {
      if (!(v = value("a folder"))) return usage(), 2;
      out_dir = v;
    } else if (std::strcmp(a, "--format") == 0) {
      if (!(v = value("a format"))) return usage(), 2;
      format = v;
    } else if (std::strcmp(a, "--group-size") == 0) {
      if (!(v = value("a number"))) return usage(), 2;
      char* end = nullptr;
      const long long g = std::strtoll(v, &end, 10);
      if (end == v || *end != '\0' || g <= 0 || g > (1 << 20)) {
        std::fprintf(stderr, "kr-serve quantize: --group-size must be a positive integer, got '%s'\n", v);
        return 2;
      }
      opt.group_size = g;
    } else if (std::strcmp(a, "--help") == 0 || std::strcmp(a, "-h") == 0) {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "kr-serve quantize: unknown argument '%s'\n", a);
      usage();
      return 2;
    }
  }
  if (model_dir.empty() || out_dir.empty() || format.empty()) {
    std::fprintf(stderr, "kr-serve quantize: --model, --format and --out are required\n");
    usage();
    return 2;
  }
  auto f = parse_quantize_format(format);
  if (!f.ok()) {
    std::fprintf(stderr, "kr-serve quantize: %s\n", f.status().message().c_str());
    return 2;
  }
  opt.format = *f;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = quantize_model(model_dir, out_dir, opt);
  if (!r.ok()) {
    std::fprintf(stderr, "kr-serve quantize: %s\n", r.status().to_string().c_str());
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr,
               "kr-serve quantize: %s%s: %zu modules quantized, %zu tensors kept, %zu files copied; "
               "%.1f MB -> %.1f MB in %.1f s -> %s\n",
               quantize_format_name(opt.format),
               r->group_size > 0 ? (" (group size " + std::to_string(r->group_size) + ")").c_str() : "",
               r->quantized.size(), r->kept.size(), r->copied_files.size(), r->bytes_in / 1e6, r->bytes_out / 1e6, secs,
               out_dir.c_str());
  return 0;
}

}  // namespace kr
