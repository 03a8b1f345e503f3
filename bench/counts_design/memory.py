"""Micro-experiment behind docs/counts.md: shared day-major count arrays, 9 metrics x 10,205 grids x 730 days.

Usage: python bench/counts_design/memory.py [FILE]. Writes a 269 MiB scratch file (default in
$COUNTS_DESIGN_DIR or the temporary folder) and removes it at the end."""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

DIR = os.environ.get("COUNTS_DESIGN_DIR", tempfile.gettempdir())  # scratch files go here
G, M, D, B = 10205, 9, 730, 64
NB = -(-D // B)
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(DIR, "gridatlas-counts-exp.npy")
shape = (NB, M, B, G)
t = time.perf_counter()
arr = np.lib.format.open_memmap(path, mode="w+", dtype="<i4", shape=shape)
rng = np.random.default_rng(0)
for b in range(NB):
    arr[b] = rng.integers(0, 20, size=(M, B, G), dtype=np.int32)
arr.flush()
print(f"daily counts [block, metric, day, grid] int32: {arr.nbytes/2**20:.0f} MiB ({NB} blocks of {B} days; {D} days = {M*G*D*4/2**20:.0f} MiB); written in {time.perf_counter()-t:.2f} s")
bsum = arr.sum(axis=2, dtype=np.int64)  # [block, metric, grid]
print(f"block sums [block, metric, grid] int64: {bsum.nbytes/2**20:.1f} MiB")
def timeit(f, n=20):
    f(); ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return np.median(ts) * 1e3
m = 3
def total(d0, d1, use_blocks=True):  # inclusive day indexes
    out = np.zeros(G, np.int64)
    b0, b1 = d0 // B, d1 // B
    if b0 == b1:
        return arr[b0, m, d0 % B:d1 % B + 1].sum(axis=0, dtype=np.int64)
    out += arr[b0, m, d0 % B:].sum(axis=0, dtype=np.int64)
    out += arr[b1, m, :d1 % B + 1].sum(axis=0, dtype=np.int64)
    if b1 > b0 + 1:
        if use_blocks:
            out += bsum[b0 + 1:b1, m].sum(axis=0)
        else:
            out += arr[b0 + 1:b1, m].sum(axis=(0, 1), dtype=np.int64)
    return out
cm = np.ascontiguousarray(np.moveaxis(arr, 0, 0)[:, m].reshape(-1, G)[:D].T)  # [grid, day] int32, today's orientation
print(f"total per grid, last 30 days: {timeit(lambda: total(D-30, D-1)):.2f} ms; "
      f"2 years with block sums: {timeit(lambda: total(0, D-1)):.2f} ms; 2 years summing days: {timeit(lambda: total(0, D-1, False)):.2f} ms; "
      f"grid-major [grid, day] slice sum, 30 days: {timeit(lambda: cm[:, D-30:].sum(axis=1, dtype=np.int64)):.2f} ms, 2 years: {timeit(lambda: cm.sum(axis=1, dtype=np.int64)):.2f} ms")
lo, hi = 2000, 3100  # one district's grids: a contiguous run
print(f"daily series of one district (1,100 grids), 2 years: {timeit(lambda: arr[:, m, :, lo:hi].sum(axis=2, dtype=np.int64).ravel()[:D]):.2f} ms; "
      f"of the city: {timeit(lambda: arr[:, m].sum(axis=2, dtype=np.int64).ravel()[:D]):.2f} ms")
row = rng.integers(0, 20, size=G, dtype=np.int32)
def patch():
    d = D - 1; b, o = divmod(d, B)
    arr[b, m, o] = row
    bsum[b, m] = arr[b, m].sum(axis=0, dtype=np.int64)
print(f"patch one (metric, day) row + its block sum: {timeit(patch):.3f} ms")
# PSS: two reader processes map the file and touch everything
code = f"""
import numpy as np, time, sys
a = np.load({path!r}, mmap_mode='r'); s = int(a.sum(dtype=np.int64))
print(open('/proc/self/smaps_rollup').read().split('Pss:')[1].split()[0], open('/proc/self/smaps_rollup').read().split('Rss:')[1].split()[0], flush=True)
time.sleep(3)
print(open('/proc/self/smaps_rollup').read().split('Pss:')[1].split()[0], flush=True)
"""
del arr
ps = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
time.sleep(2.5)
outs = [p.communicate()[0].split() for p in ps]
print("two readers mapping the file: (PSS alone, RSS, PSS while both map it) kB:", outs)
os.remove(path)
