#!/usr/bin/env bash
# Quantized weights on the GPU machine: build, float64 goldens of the tiny quantized
# models (transformers), every quantized kernel against the CPU reference, and the
# quantized benchmarks side by side with bf16. Everything lands in OUT_DIR
# (logs, JSON). Steps: build goldens ops bench, or all (the default).
#
#   [KR_BIN=DIR] scripts/quant/gpu_check.sh OUT_DIR [build] [goldens] [ops] [bench] [bench-extra]
#
# BRIEF=1: the benchmarks with kr-cuda-bench --brief (batch-1 decode at ctx 128, pp512,
# batch-64 decode) and no GEMV bandwidths, for a short GPU slot.
# KR_BIN: where kr-backend-ops and kr-cuda-bench are (default build/bin); binaries
# built on the CPU machine (-DKR_BUILD_TESTS=OFF) and carried work. `build` builds
# them there with cmake instead (nlohmann-json needed).
# goldens: OUT_DIR/quant-goldens/<model>/expected.json (commit them to
#          tests/golden/quant/<model>/ for quant_model_test).
# ops:     kr-backend-ops --quant-only against those goldens -> OUT_DIR/backend-ops-quant.txt
# bench:   kr-cuda-bench for Llama-3.2-3B bf16 / AWQ / MLX-4 and Llama-3.1-8B bf16 / FP8
#          (dynamic per-token) -> OUT_DIR/bench-*.json, and the quantized GEMV bandwidths.
# bench-extra (not in all): the other side of two switches, to set their defaults:
#          8B FP8 with W8A16 kernels up to batch 64 (--w8a8-min 65), and 3B AWQ prefill on
#          the tensor-core kernels instead of dequantize + cuBLAS (--quant-dense-min 4096).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: gpu_check.sh OUT_DIR [build] [goldens] [ops] [bench] [bench-extra]}
shift
steps=${*:-all}
mkdir -p "$out"
want() { [[ " $steps " == *" all "* || " $steps " == *" $1 "* ]]; }
status=0
t0=$(date +%s)
bin=${KR_BIN:-build/bin}

if [[ " $steps " == *" build "* ]] || [ ! -x "$bin/kr-backend-ops" ]; then
  bin=build/bin
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKR_WERROR=ON -DKR_BUILD_TESTS=OFF > "$out/build.log" 2>&1 &&
    cmake --build build -j"$(nproc)" --target kr-backend-ops kr-cuda-bench >> "$out/build.log" 2>&1 ||
    { echo "build FAILED (see $out/build.log)"; tail -30 "$out/build.log"; exit 1; }
  echo "build: $(( $(date +%s) - t0 )) s"
fi

if want goldens; then
  python3 scripts/quant/make_quant_goldens.py --fixtures tests/golden/quant --out "$out/quant-goldens" \
    > "$out/goldens.log" 2>&1 || status=1
  tail -20 "$out/goldens.log"
  echo "goldens: $(( $(date +%s) - t0 )) s"
fi

if want ops; then
  goldens="$out/quant-goldens"
  [ -d "$goldens" ] || goldens=tests/golden/quant
  "$bin/kr-backend-ops" --quant-only --quant-goldens "$goldens" > "$out/backend-ops-quant.txt" 2>&1 || status=1
  grep -E "FAIL|qmodel|PASS" "$out/backend-ops-quant.txt" | tail -40
  echo "ops: $(( $(date +%s) - t0 )) s"
fi

if want bench; then
  run() {  # name, arguments
    local name=$1
    shift
    "$bin/kr-cuda-bench" "$@" ${BRIEF:+--brief} --json "$out/bench-$name.json" > "$out/bench-$name.txt" 2>&1 || status=1
    echo "== $name: $*"
    grep -E "weights|decode batch|prefill|replay" "$out/bench-$name.txt"
  }
  run 3b-bf16 --arch llama-3.2-3b
  run 3b-awq --arch llama-3.2-3b --quant awq
  run 3b-mlx4 --arch llama-3.2-3b --quant mlx4
  run 8b-bf16 --arch llama-3.1-8b
  run 8b-fp8 --arch llama-3.1-8b --quant fp8
  if [ -z "${BRIEF:-}" ]; then
    "$bin/kr-cuda-bench" --gemv-bench --quant awq --arch llama-3.2-3b > "$out/qgemv-3b-awq.txt" 2>&1 || status=1
    "$bin/kr-cuda-bench" --gemv-bench --quant fp8 --arch llama-3.1-8b > "$out/qgemv-8b-fp8.txt" 2>&1 || status=1
    cat "$out/qgemv-3b-awq.txt" "$out/qgemv-8b-fp8.txt"
  fi
  echo "bench: $(( $(date +%s) - t0 )) s"
fi
if [[ " $steps " == *" bench-extra "* ]]; then
  run() {
    local name=$1
    shift
    "$bin/kr-cuda-bench" "$@" --json "$out/bench-$name.json" > "$out/bench-$name.txt" 2>&1 || status=1
    echo "== $name: $*"
    grep -E "decode batch|prefill" "$out/bench-$name.txt"
  }
  run 8b-fp8-w8a16 --arch llama-3.1-8b --quant fp8 --w8a8-min 65
  run 3b-awq-mma-prefill --arch llama-3.2-3b --quant awq --quant-dense-min 4096
  echo "bench-extra: $(( $(date +%s) - t0 )) s"
fi
exit $status
