#!/usr/bin/env bash
# The decode stack kernel's SASS on this machine, without a GPU or the device: compiles
# src/backend/cuda/cuda_decode_stack.cu to a cubin (sm_90a, the build's flags), disassembles it
# with nvdisasm and prints, for each form given (default: the serving forms), ptxas's spill
# bytes and its unit loops (scripts/sass_unit_loops.py: length, HMMA, LDL/STL a unit).
#
#   scripts/local-sass.sh [OUT_DIR] [kernel-name-part ...]
#
# The CUDA 13 toolkit here ships no cuobjdump or nvdisasm, so the script takes nvdisasm from
# Debian's non-free nvidia-cuda-toolkit package (CUDA 11.8; fetched once into
# ~/.cache/kr-serve/nvdisasm with the machine's own apt sources, non-free added for that
# download only). nvdisasm 11.8 reads the sm_90 instruction set but not CUDA 13's ELF header
# (its e_flags encode the architecture differently), so the script gives the cubin the
# header of CUDA 12's format first (OS ABI 0x33 version 7, e_flags 0x005a055a: sm_90,
# virtual sm_90, 64-bit addresses, unified textures). Checked against the device's cuobjdump in
# session 33: the same unit loops, HMMA and LDL/STL counts; lengths within 10 instructions.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/kr-sass}
shift || true
FORMS=("$@")
[ ${#FORMS[@]} -gt 0 ] || FORMS=(decode_stack_kernelILi2ELb0ELb0ELb0ELb0E decode_stack_kernelILi2ELb1ELb0ELb0ELb0E
                                 decode_stack_kernelILi1ELb1ELb0ELb0ELb0E decode_stack_kernelILi2ELb0ELb1ELb0ELb0E)
mkdir -p "$OUT"
CACHE=${KR_SASS_CACHE:-$HOME/.cache/kr-serve/nvdisasm}
NVDISASM=$CACHE/usr/bin/nvdisasm
if [ ! -x "$NVDISASM" ]; then
  mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/archives/partial"
  SRC=/etc/apt/sources.list.d/debian.sources
  [ -f "$SRC" ] || { echo "local-sass: no $SRC to derive a non-free source from" >&2; exit 1; }
  sed 's/^Components: main$/Components: main non-free/' "$SRC" > "$CACHE/apt/nonfree.sources"
  APT=(-o Dir::Etc::sourcelist="$CACHE/apt/nonfree.sources" -o Dir::Etc::sourceparts=/dev/null
       -o Dir::State::Lists="$CACHE/apt/lists" -o Dir::Cache="$CACHE/apt")
  apt-get "${APT[@]}" update > "$CACHE/apt/update.log" 2>&1 ||
    { echo "local-sass: apt-get update with non-free failed: $CACHE/apt/update.log" >&2; exit 1; }
  (cd "$CACHE/apt" && apt-get "${APT[@]}" download nvidia-cuda-toolkit > download.log 2>&1) ||
    { echo "local-sass: could not download nvidia-cuda-toolkit: $CACHE/apt/download.log" >&2; exit 1; }
  dpkg -x "$CACHE"/apt/nvidia-cuda-toolkit_*.deb "$CACHE"
  [ -x "$NVDISASM" ] || { echo "local-sass: the package held no usr/bin/nvdisasm" >&2; exit 1; }
fi
nvcc -O3 -arch=sm_90a --use_fast_math -lineinfo -std=c++17 -I src -isystem /usr/local/cuda/include -Xptxas -v \
  -cubin src/backend/cuda/cuda_decode_stack.cu -o "$OUT/stack.cubin" > "$OUT/ptxas.txt" 2>&1 ||
  { echo "local-sass: nvcc failed: $OUT/ptxas.txt" >&2; exit 1; }
python3 - "$OUT/stack.cubin" "$OUT/stack12.cubin" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[7], d[8] = 0x33, 7
struct.pack_into('<I', d, 0x30, 0x005a055a)
open(sys.argv[2], 'wb').write(d)
PY
"$NVDISASM" -c "$OUT/stack12.cubin" > "$OUT/stack.sass" 2> "$OUT/nvdisasm.txt" || true  # (warnings: rc != 0)
grep -q "decode_stack_kernel" "$OUT/stack.sass" ||
  { echo "local-sass: nvdisasm gave no decode stack kernel (a header it does not read?): $OUT/nvdisasm.txt" >&2; exit 1; }
for f in "${FORMS[@]}"; do
  awk -v f="$f" '/^\/\/-----.*\.text\./{p=index($0,f)>0} p' "$OUT/stack.sass" > "$OUT/$f.sass"
  echo "== $f: $(grep -A2 "Compiling entry.*$f" "$OUT/ptxas.txt" | grep -o '[0-9]* bytes spill stores, [0-9]* bytes spill loads')"
  python3 scripts/sass_unit_loops.py "$OUT/$f.sass" | tail -n +2
done
