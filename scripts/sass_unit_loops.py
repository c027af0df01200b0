#!/usr/bin/env python3
"""The decode stack kernel's unit loops in `cuobjdump -sass` or `nvdisasm` output, without a profiler.

A unit loop is a backward branch whose body holds at least 8 HMMA and fewer than 700
instructions (qkv, o_proj in its two inputs' forms, gate_up, down_proj). For each, prints its
address range, instructions, HMMA, local-memory instructions (LDL / STL: spills reloaded or
stored at every unit) and shared loads, so that a change to the kernel can be checked for
what it did to the loops before it is timed (docs/performance.md, sessions 29-32).

  cuobjdump -sass kr-cuda-bench | awk -v f=decode_stack_kernelILi2ELb0ELb0ELb0ELb0E \\
      '/Function :/{p=index($0,f)>0} p' > sass.txt
  scripts/sass_unit_loops.py sass.txt [more.txt ...]

scripts/local-sass.sh runs it on this machine's build of the kernel (nvdisasm), without the device.
"""
import re
import sys


def parse(path):
    """[(address, instruction)] of a cuobjdump or nvdisasm listing; nvdisasm's branch labels
    (BRA `(.L_x_N)) become the addresses they label, as cuobjdump prints them."""
    out, labels, pending = [], {}, []
    for line in open(path):
        m = re.match(r"(\.L_x_\d+):", line)
        if m:
            pending.append(m.group(1))
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m:
            a = int(m.group(1), 16)
            for name in pending:
                labels[name] = a
            pending = []
            out.append((a, m.group(2).strip()))
    # A label that labels no instruction stays as it is (its branch is then no loop), rather than
    # becoming address 0, which would make a loop of everything before the branch.
    return [(a, re.sub(r"`\((\.L_x_\d+)\)", lambda l: hex(labels[l.group(1)]) if l.group(1) in labels else l.group(0), t))
            for a, t in out]


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
            if hmma < 8 or len(body) >= 700:
                continue
            local = sum(("LDL" in t or "STL" in t) for t in body)
            lds = sum("LDS" in t for t in body)
            print(f"  loop {target:x}-{a:x}: {len(body)} instructions, {hmma} HMMA, {local} LDL/STL, {lds} LDS")


if __name__ == "__main__":
    main()
