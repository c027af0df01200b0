#!/usr/bin/env bash
# The decode stack kernel (CudaOptions::decode_stack_kernel) on a GPU machine: its
# checks against the CPU in each kernel form, then batch-1 decode with each tuning
# variant next to the kernels a layer, alternated, in one go. Prints a line a run;
# raw output and kr-cuda-bench JSON go to OUT. Each run has a time limit (rc 124: it hung).
#
# Usage: scripts/decode-stack-sweep.sh BIN OUT [ARCH] [QUANT] [PARTS]
#   BIN: the folder of kr-backend-ops and kr-cuda-bench; ARCH default llama-3.2-3b,
#   QUANT default awq (mlx4 for MLX's 64-column groups with biases); PARTS: which of
#   checks, round1, round2, extra to run (comma-separated; default all: about 8
#   minutes on an H100, so split them over calls of a shorter limit).
#   BASE_BIN (environment, optional): an earlier build's kr-cuda-bench folder, whose
#   kernel runs in each round too (the same options: --decode-stack only).
set -u
BIN=$1
OUT=$2
ARCH=${3:-llama-3.2-3b}
QUANT=${4:-awq}
PARTS=",${5:-checks,round1,round2,extra},"
mkdir -p "$OUT"

check() {  # NAME FLAGS...: kr-backend-ops --only decode_stack with the kernel form FLAGS select
  local name=$1
  shift
  local t0=$SECONDS
  timeout 150 "$BIN/kr-backend-ops" --only decode_stack "$@" > "$OUT/check-$name.txt" 2>&1
  local rc=$?
  echo "check $name rc=$rc $((SECONDS - t0))s: $(grep -c ' ok' "$OUT/check-$name.txt") ok," \
       "$(grep -c 'FAIL' "$OUT/check-$name.txt") FAIL"
}

bench() {  # NAME FLAGS...: batch 1 at contexts 128 and 400 (BENCH_BIN's binary, default BIN's)
  local name=$1
  shift
  timeout 90 "${BENCH_BIN:-$BIN}/kr-cuda-bench" --arch "$ARCH" --quant "$QUANT" --brief --decode-only --decode-at 1:400:64 \
    --json "$OUT/bench-$name.json" "$@" > "$OUT/bench-$name.txt" 2>&1
  local rc=$?
  echo "bench $name rc=$rc: $(grep -E '^decode batch 1 ' "$OUT/bench-$name.txt" | awk '{printf "ctx %s %s tok/s; ", $5, $6}')"
  grep -E "decode stack kernel, the last step|attention's last CTA" "$OUT/bench-$name.txt" | head -4
}

if [[ $PARTS == *,checks,* ]]; then
  check default
  check item-merge --decode-stack-item-merge
  check cuda-core-keys --decode-stack-cuda-core-keys
  check trace --decode-stack-trace
  check cta-attention --decode-stack-cta-attention
  check flags --decode-stack-flags
  check warp-merge --decode-stack-warp-merge
  check global-staging --decode-stack-global-staging
fi

# The rounds: the default against the variants still in question (session 24's H100 calls:
# the default's stage merge, tensor-core keys and ring depth, 2 units of 128-column groups or 4
# of 64, each measured faster than the alternative; session 23's: every L2 weight prefetch,
# splits under 32 keys, the CTA attention and the flags form slower; extra keeps one run of
# each, and the traces). Session 25 (no device): the warp merge is new, and the cursor and
# residual moved to shared memory, so the ring depth is worth a second look. Session 26: the
# local staging (o_proj's and down_proj's units in column blocks), measured faster in session
# 27 and the default since; the old order is --decode-stack-global-staging.
for round in 1 2; do
  [[ $PARTS == *,round$round,* ]] || continue
  bench "layers-$round"
  bench "stack-$round" --decode-stack
  if [ -n "${BASE_BIN:-}" ]; then BENCH_BIN=$BASE_BIN bench "base-stack-$round" --decode-stack; fi
  bench "warp-merge-$round" --decode-stack --decode-stack-warp-merge
  bench "global-staging-$round" --decode-stack --decode-stack-global-staging
  bench "depth3-$round" --decode-stack --decode-stack-ring-depth 3
done

if [[ $PARTS == *,extra,* ]]; then
  bench trace --decode-stack --decode-stack-trace
  bench trace-warp-merge --decode-stack --decode-stack-trace --decode-stack-warp-merge
  bench trace-global-staging --decode-stack --decode-stack-trace --decode-stack-global-staging
  bench item-merge --decode-stack --decode-stack-item-merge
  bench cuda-core-keys --decode-stack --decode-stack-cuda-core-keys
  bench trace-flags --decode-stack --decode-stack-trace --decode-stack-flags
  bench flags --decode-stack --decode-stack-flags
  bench cta-attention --decode-stack --decode-stack-cta-attention
  bench row-ring --decode-stack --decode-stack-row-ring
  bench trace-row-ring --decode-stack --decode-stack-trace --decode-stack-row-ring
fi
