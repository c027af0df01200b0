#!/usr/bin/env python3
"""Sums a kernel timeline (src/bench/cuda/cupti_trace.cc: libkr_cupti_trace.so) per kernel and grid.

usage: kernel_timeline.py TRACE.csv STEPS

For kernels in start order, `dur` is end - start (with PDL it includes the time a
kernel waits for the one before it) and `inc` is how far its end moves the latest
end so far: what the kernel adds to the step's critical path. Prints both per step.
"""
import collections
import csv
import re
import sys


def short(name):
    name = re.sub(r'\(anonymous namespace\)::', '', name)
    name = re.sub(r'kr::cuda::', '', name)
    name = re.sub(r'\(.*$', '', name)  # argument list
    return name[:80]


def main():
    path, steps = sys.argv[1], int(sys.argv[2])
    ks = []
    for r in csv.DictReader(open(path)):
        ks.append((int(r['start_ns']), int(r['end_ns']), short(r['name']) + ' grid ' + r['grid'] + ' cl ' + r['cluster']))
    if not ks:
        print('no kernels')
        return
    ks.sort()
    agg = collections.defaultdict(lambda: [0, 0, 0])
    latest = ks[0][0]
    for st, en, key in ks:
        a = agg[key]
        a[0] += 1
        a[1] += en - st
        a[2] += max(0, en - latest)
        latest = max(latest, en)
    span = latest - ks[0][0]
    print(f'{len(ks)} kernels, {span / 1e3:.1f} us for {steps} steps: {span / 1e3 / steps:.1f} us a step')
    print(f'{"per step":>8} {"inc us":>8} {"dur us":>8} {"inc/each":>8} {"dur/each":>8}  kernel')
    for key, (n, d, i) in sorted(agg.items(), key=lambda x: -x[1][2]):
        print(f'{n / steps:8.1f} {i / steps / 1e3:8.1f} {d / steps / 1e3:8.1f} {i / n / 1e3:8.2f} {d / n / 1e3:8.2f}  {key}')
    print('a stretch of the middle step (start, end, dur in us from the step start):')
    mid = len(ks) // 2
    t0 = ks[mid][0]
    for st, en, key in ks[mid:mid + 16]:
        print(f'  {(st - t0) / 1e3:8.2f} {(en - t0) / 1e3:8.2f} {(en - st) / 1e3:6.2f}  {key}')


if __name__ == '__main__':
    main()
