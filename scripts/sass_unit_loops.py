#!/usr/bin/env python3
"""The decode stack kernel's unit loops in `cuobjdump -sass` output, without a profiler.

A unit loop is a backward branch whose body holds at least 16 HMMA and fewer than 700
instructions (qkv, o_proj in its two inputs' forms, gate_up, down_proj). For each, prints its
address range, instructions, HMMA, local-memory instructions (LDL / STL: spills reloaded or
stored at every unit) and shared loads, so that a change to the kernel can be checked for
what it did to the loops before it is timed (docs/performance.md, sessions 29-32).

  cuobjdump -sass kr-cuda-bench | awk -v f=decode_stack_kernelILi2ELb0ELb0ELb0ELb0E \\
      '/Function :/{p=index($0,f)>0} p' > sass.txt
  scripts/sass_unit_loops.py sass.txt [more.txt ...]
"""
import re
import sys


def parse(path):
    """[(address, instruction)] of a cuobjdump listing."""
    out = []
    for line in open(path):
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m:
            out.append((int(m.group(1), 16), m.group(2).strip()))
    return out


def main():
    for path in sys.argv[1:]:
        ins = parse(path)
        at = {a: i for i, (a, _) in enumerate(ins)}
        print(path, len(ins), "instructions")
        for i, (a, text) in enumerate(ins):
            m = re.search(r"BRA\s.*0x([0-9a-f]+)\s*$", text)
            if not m:
                continue
            target = int(m.group(1), 16)
            if target >= a or target not in at:
                continue
            body = [t for _, t in ins[at[target]:i + 1]]
            hmma = sum("HMMA" in t for t in body)
            if hmma < 16 or len(body) >= 700:
                continue
            local = sum(("LDL" in t or "STL" in t) for t in body)
            lds = sum("LDS" in t for t in body)
            print(f"  loop {target:x}-{a:x}: {len(body)} instructions, {hmma} HMMA, {local} LDL/STL, {lds} LDS")


if __name__ == "__main__":
    main()
