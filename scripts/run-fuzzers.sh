#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time
# on a copy of its committed seed corpus (fuzz/corpus/<name>). Exits non-zero on any crash.
# Usage: scripts/run-fuzzers.sh [seconds-per-fuzzer]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
build=${FUZZ_BUILD:-build-fuzz}
command -v clang++ >/dev/null || { echo "run-fuzzers: clang++ not found (apt-get install clang libclang-rt-dev)"; exit 1; }
CC=clang CXX=clang++ cmake -S . -B "$build" -DKR_FUZZ=ON -DKR_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=$(sed -n 's/^kr_add_fuzzer(\(fuzz_[a-z_]*\).*/\1/p' fuzz/CMakeLists.txt)
cmake --build "$build" -j"$(nproc)" --target $targets
status=0
for t in $targets; do
  name=${t#fuzz_}
  work=$(mktemp -d)
  [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
  log="$build/$t.log"
  if "$build/bin/$t" -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$build/$t-" "$work" >"$log" 2>&1; then
    result=ok
  else
    result=CRASH; status=1
    tail -40 "$log"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "fuzz $t: $result, ${secs}s, ${execs:-?} executions"
  rm -rf "$work"
done
exit $status
