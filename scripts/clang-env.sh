# Sourced by the sanitizer and fuzzing scripts: selects the clang used for the sanitizer
# and libFuzzer builds, installing it from Debian 12's archive when missing.
#
# Debian 12 has clang 14 (the default `clang`), 16 and 19. Clang 19 is used because it is
# the newest there; clang 14's sanitizer runtimes and libFuzzer are older, and it has
# rejected code that g++ 12 and clang 19 accept (jinja::Value; docs/reliability.md).
# Override with KR_CLANG_VERSION=16.
#
# After sourcing: KR_CC, KR_CXX (compilers), KR_SYMBOLIZER, and ASAN/TSAN/UBSAN_SYMBOLIZER_PATH
# exported so that reports carry file:line frames.
KR_CLANG_VERSION=${KR_CLANG_VERSION:-19}
KR_CC=clang-$KR_CLANG_VERSION
KR_CXX=clang++-$KR_CLANG_VERSION
KR_SYMBOLIZER=/usr/lib/llvm-$KR_CLANG_VERSION/bin/llvm-symbolizer

kr_clang_runtime_ok() {
  # The compiler, the sanitizer and libFuzzer runtimes (libclang-rt-N-dev) and the symbolizer (llvm-N).
  command -v "$KR_CXX" >/dev/null 2>&1 && [ -x "$KR_SYMBOLIZER" ] &&
    for rt in fuzzer asan ubsan_standalone tsan; do
      [ -f "$("$KR_CXX" -print-file-name="libclang_rt.$rt-x86_64.a")" ] || return 1
    done
}

if ! kr_clang_runtime_ok; then
  echo "clang-env: installing clang-$KR_CLANG_VERSION, its runtimes and llvm-symbolizer"
  kr_sudo=""
  [ "$(id -u)" -eq 0 ] || kr_sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $kr_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $kr_sudo apt-get install -y -qq --no-install-recommends \
    "clang-$KR_CLANG_VERSION" "libclang-rt-$KR_CLANG_VERSION-dev" "llvm-$KR_CLANG_VERSION" >/dev/null
  kr_clang_runtime_ok || { echo "clang-env: clang-$KR_CLANG_VERSION with sanitizer runtimes not usable"; exit 1; }
fi
export ASAN_SYMBOLIZER_PATH=$KR_SYMBOLIZER TSAN_SYMBOLIZER_PATH=$KR_SYMBOLIZER UBSAN_SYMBOLIZER_PATH=$KR_SYMBOLIZER
