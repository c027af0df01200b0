# Sums ncu --csv per-kernel metrics of one profiled decode step by kernel name.
import collections, csv, sys
for path in sys.argv[1:]:
    lines = [l for l in open(path, errors='replace') if l.startswith('"')]
    if not lines:
        print(path, 'no csv'); continue
    r = list(csv.reader(lines)); h = r[0]
    ki, mi, vi, ii = h.index('Kernel Name'), h.index('Metric Name'), h.index('Metric Value'), h.index('ID')
    d = collections.defaultdict(dict); names = {}
    for row in r[1:]:
        d[row[ii]][row[mi]] = row[vi]; names[row[ii]] = row[ki]
    agg = collections.defaultdict(lambda: [0, 0.0, 0.0, '']); tot = 0.0
    for i in d:
        n = names[i].replace('(anonymous namespace)::', '')[:100]
        t = float(d[i]['gpu__time_duration.sum'].replace(',', '')); b = float(d[i].get('dram__bytes_read.sum', '0').replace(',', ''))
        a = agg[n]; a[0] += 1; a[1] += t; a[2] += b; a[3] = d[i].get('launch__grid_size', ''); tot += t
    print(f'== {path.split("/")[-1]}: {len(d)} kernels, {tot/1000:.1f} us')
    for n, v in sorted(agg.items(), key=lambda x: -x[1][1]):
        print(f'  {v[0]:4d} {v[1]/1000:8.1f} us {v[2]/1e6:8.1f} MB grid {v[3]:>7} {n}')
