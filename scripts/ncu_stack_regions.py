#!/usr/bin/env python3
"""Where the decode stack kernel's warps spend their time, from an Nsight Compute source page.

Input: the CSV that `ncu --import REP --page source --csv --print-source sass` writes for one
launch of decode_stack_kernel (a `--set full` profile, which samples warp stalls). The kernel's
four unit loops (qkv, o, gate_up, down) are found by their execution counts: every instruction
of a matrix's loop body runs once a unit, so it executes exactly `units x layers` times.

Prints, and writes as JSON with --json: the warp-stall samples of each loop and of the code
between them (the windows: grid barriers, norms, stagings, attention), the stall reasons of each,
and each loop's instructions a unit by opcode.

  scripts/ncu_stack_regions.py source-sass.csv --units 3840,2304,12288,6144 --layers 28 [--json out.json]

(--units: the matrices' units, qkv,o,gate_up,down; the defaults are Llama-3.2-3B's at group 128.)
"""
import argparse
import collections
import csv
import json


def number(s):
    try:
        return int(s.replace(",", ""))
    except ValueError:
        return 0


def load(path):
    with open(path) as f:
        f.readline()  # the kernel's name
        reader = csv.reader(f)
        header = next(reader)
        return header, [dict(zip(header, row)) for row in reader]


def loop_bounds(rows, executions):
    """[first, last + 1) of the longest run of instructions executed exactly `executions` times."""
    idx = [i for i, r in enumerate(rows) if number(r["Instructions Executed"]) == executions]
    if not idx:
        raise SystemExit(f"no instruction executed {executions} times: wrong --units or --layers?")
    runs = []
    for i in idx:
        if runs and i - runs[-1][-1] < 300:
            runs[-1].append(i)
        else:
            runs.append([i])
    run = max(runs, key=len)
    return run[0], run[-1] + 1


def opcode(source):
    words = source.split()
    op = words[1] if words[0].startswith("@") else words[0]
    return op.split(".")[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--units", default="3840,2304,12288,6144")
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--json")
    args = ap.parse_args()
    header, rows = load(args.csv)
    stalls = [k for k in header if k.startswith("stall_") and "Not Issued" not in k]
    missing = [k for k in ("Source", "# Samples", "Instructions Executed") if k not in header]
    if missing or not stalls:
        raise SystemExit(f"{args.csv}: not a source page with warp-stall samples (missing {missing or 'stall_* columns'}): "
                         "profile with --set full and export --page source --csv --print-source sass")
    units = [int(u) for u in args.units.split(",")]
    names = ["qkv", "o", "gate_up", "down"]
    bounds = [loop_bounds(rows, u * args.layers) for u in units]
    cuts = [0] + [b for pair in bounds for b in pair] + [len(rows)]
    region_names = ["before qkv", "qkv", "qkv..o", "o", "o..gate_up", "gate_up", "gate_up..down", "down", "after down"]
    total = sum(number(r["# Samples"]) for r in rows)
    out = {"samples": total, "regions": []}
    for k, name in enumerate(region_names):
        a, b = cuts[k], cuts[k + 1]
        samples = sum(number(rows[i]["# Samples"]) for i in range(a, b))
        reasons = {s[6:]: sum(number(rows[i][s]) for i in range(a, b)) for s in stalls}
        reasons = {s: v for s, v in sorted(reasons.items(), key=lambda kv: -kv[1]) if v > 0}
        region = {"name": name, "sass": [a, b], "samples": samples, "share": samples / total, "stalls": reasons}
        if k % 2 == 1:  # a unit loop
            n = units[k // 2] * args.layers
            ops = collections.Counter()
            for i in range(a, b):
                ops[opcode(rows[i]["Source"].strip())] += number(rows[i]["Instructions Executed"]) / n
            region["instructions_a_unit"] = sum(ops.values())
            region["opcodes_a_unit"] = {o: round(v, 1) for o, v in sorted(ops.items(), key=lambda kv: -kv[1]) if v >= 0.5}
        out["regions"].append(region)
        top = ", ".join(f"{s} {100 * v / max(samples, 1):.0f}%" for s, v in list(reasons.items())[:5])
        extra = f"; {region['instructions_a_unit']:.0f} instructions a unit" if "instructions_a_unit" in region else ""
        print(f"{name:14} {100 * samples / total:5.1f}% of the samples ({top}){extra}")
    everything = {s[6:]: sum(number(r[s]) for r in rows) for s in stalls}
    out["stalls"] = {s: v for s, v in sorted(everything.items(), key=lambda kv: -kv[1]) if v > 0}
    print("whole kernel:", ", ".join(f"{s} {100 * v / total:.0f}%" for s, v in list(out["stalls"].items())[:6]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
