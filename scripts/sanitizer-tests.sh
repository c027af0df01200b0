#!/usr/bin/env bash
# Builds the tests with clang (scripts/clang-env.sh) under AddressSanitizer + UndefinedBehaviorSanitizer
# and under ThreadSanitizer (CPU backend), and runs them:
#   asan: every ctest test but the soak (its pass criterion is resident-memory growth, which
#         ASan's quarantine of freed memory makes meaningless; the concurrency and disconnect
#         paths it drives run under ASan in integration_server and hostile_battery);
#   tsan: the multi-threaded tests listed in TSAN_TESTS below (the engine thread, thread pool,
#         metrics, grammar matchers, HTTP server, kr-bench's client and the whole server, with one
#         model and with several).
# Each kind runs even when an earlier one failed; the exit status is non-zero when any failed.
# A kind fails when a test fails or when any process (a test, or a kr-serve it started)
# wrote a sanitizer report: reports go to $build/sanitizer-reports/ and are printed.
# Usage: scripts/sanitizer-tests.sh [asan|tsan]...   (default: both)
# Env: KR_SAN_JOBS (parallel build and test jobs, default nproc), KR_SAN_TEST_TIMEOUT_S (per test, 600).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/clang-env.sh
jobs=${KR_SAN_JOBS:-$(nproc)}
test_timeout=${KR_SAN_TEST_TIMEOUT_S:-600}
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(asan tsan)

# The TSan set: the tests that run more than one thread. A name that is no longer registered
# fails the run (a renamed test must not drop out silently). integration_server, integration_models
# (several models: a ModelRegistry with an engine thread per model and a loader thread),
# hostile_battery and kr_bench_serve_test drive a TSan-built kr-serve; grammar_concurrency_test
# shares compiled grammars between matcher threads.
TSAN_TESTS=(base_tests thread_pool_test engine_test engine_tiny_llama_test metrics_test metrics_parts_test
            grammar_concurrency_test http_server_test kr_bench_client_test kr_bench_cli_test kr_bench_serve_test
            integration_server integration_models hostile_battery)

# The node-driven tests need what scripts/prepare-tests.sh installs (make test runs it): the npm
# packages of tests/integration and tests/deploy, chromium (webui_browser) and nginx (deploy_nginx_failover).
if [ ! -d tests/integration/node_modules ] || [ ! -d tests/deploy/node_modules ] ||
   ! command -v chromium >/dev/null 2>&1 || { [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null 2>&1; }; then
  ./scripts/prepare-tests.sh || exit 1
fi

run_kind() {
  local kind=$1 san build reports
  local -a select targets
  case "$kind" in
    asan) san=address; build=build-asan
          reports=$PWD/$build/sanitizer-reports
          # detect_stack_use_after_return stays off: it multiplies stack use of the deep
          # recursion tests (JSON nesting, template limits) past the threads' stacks.
          export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:log_path=$reports/asan-ubsan
          export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$reports/asan-ubsan
          select=(-E '^soak$')
          targets=(all) ;;
    tsan) san=thread; build=build-tsan
          reports=$PWD/$build/sanitizer-reports
          export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:log_path=$reports/tsan
          local re
          re=$(IFS='|'; echo "^(${TSAN_TESTS[*]})\$")
          select=(-R "$re")
          # Each gtest test is its own target; the node-driven tests and kr_bench_serve_test need kr-serve.
          targets=(kr-serve)
          local t
          for t in "${TSAN_TESTS[@]}"; do
            case "$t" in integration_server|integration_models|hostile_battery) ;; *) targets+=("$t") ;; esac
          done ;;
    *) echo "sanitizer-tests: unknown kind '$kind'"; return 2 ;;
  esac
  echo "== $kind: configure and build ($KR_CXX, ${targets[*]})"
  CC=$KR_CC CXX=$KR_CXX cmake -S . -B "$build" -DKR_SANITIZE=$san -DKR_CUDA=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null || return 1
  cmake --build "$build" -j"$jobs" --target "${targets[@]}" || return 1
  if [ "$kind" = tsan ]; then
    local t missing=0
    for t in "${TSAN_TESTS[@]}"; do
      ctest --test-dir "$build" -N -R "^$t\$" | grep -q "Total Tests: 1" ||
        { echo "sanitizer-tests: TSan test '$t' is not registered"; missing=1; }
    done
    [ $missing -eq 0 ] || return 1
  fi
  rm -rf "$reports" && mkdir -p "$reports"
  echo "== $kind: running tests"
  local rc=0
  ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout "$test_timeout" "${select[@]}" || rc=1
  if [ -n "$(ls -A "$reports")" ]; then
    echo "== $kind: sanitizer reports (from $(ls "$reports" | wc -l) process(es)):"
    local f
    for f in "$reports"/*; do echo "---- ${f#$PWD/}"; head -40 "$f"; grep -m1 '^SUMMARY' "$f"; done
    rc=1
  fi
  return $rc
}

failed=()
summary=()
for kind in "${kinds[@]}"; do
  start=$(date +%s)
  if (run_kind "$kind"); then result=ok; else result=FAILED; failed+=("$kind"); fi
  summary+=("sanitizer $kind: $result ($(( $(date +%s) - start )) s)")
done
printf '%s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ] || { echo "sanitizer-tests: FAILED: ${failed[*]}"; exit 1; }
