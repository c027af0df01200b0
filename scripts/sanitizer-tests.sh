#!/usr/bin/env bash
# Builds the unit and integration tests with AddressSanitizer + UndefinedBehaviorSanitizer
# and with ThreadSanitizer (CPU backend), and runs them, time-bounded.
# Usage: scripts/sanitizer-tests.sh [asan|tsan]...   (default: both)
# Every kind runs even when an earlier one failed; the exit status is 1 when any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
kinds=("$@")
failed=()
[ ${#kinds[@]} -gt 0 ] || kinds=(asan tsan)
for kind in "${kinds[@]}"; do
  case "$kind" in
    asan) san=address; build=build-asan
          # Everything but the soak, which runs shorter here (ASan makes the server ~3x slower).
          export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
          export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
          select=(-E '^soak$') ;;
    tsan) san=thread; build=build-tsan
          export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
          # The multi-threaded parts: engine thread (alone and with the tiny model), metrics, thread pool,
          # HTTP server, kr-bench's client and the whole server.
          select=(-R '^(base_tests|thread_pool_test|engine_test|engine_tiny_llama_test|metrics_test|metrics_parts_test|http_server_test|kr_bench_client_test|integration_server|hostile_battery)$') ;;
    *) echo "sanitizer-tests: unknown kind '$kind'"; exit 2 ;;
  esac
  cmake -S . -B "$build" -DKR_SANITIZE=$san -DKR_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null &&
  cmake --build "$build" -j"$jobs" &&
  echo "== $kind: running tests" &&
  ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 900 "${select[@]}" || failed+=("$kind")
done
[ ${#failed[@]} -eq 0 ] || { echo "sanitizer-tests: FAILED: ${failed[*]}"; exit 1; }
