"""Micro-experiment behind docs/counts.md: full load of (metric, day) vectors vs a patch from a change log.

Usage: python bench/counts_design/reload.py, after store_layout.py (it reads its days.sqlite)."""
import os
import sqlite3
import tempfile
import time

import numpy as np

DIR = os.environ.get("COUNTS_DESIGN_DIR", tempfile.gettempdir())  # scratch files go here
G, M, D = 10205, 9, 730
c = sqlite3.connect(os.path.join(DIR, "days.sqlite"), isolation_level=None)
arr = np.zeros((M, D, G), np.int32)
metrics = {f"m{i}": i for i in range(M)}
t = time.perf_counter()
for m, d, blob in c.execute("SELECT metric, day, counts FROM count_days"):
    arr[metrics[m], d] = np.frombuffer(blob, "<i4")
print(f"full load of {M*D:,} (metric, day) rows, {arr.nbytes/2**20:.0f} MiB: {time.perf_counter()-t:.2f} s")
c.execute("CREATE TABLE IF NOT EXISTS count_changes (version INTEGER, metric TEXT, day INTEGER, PRIMARY KEY (version, metric, day)) WITHOUT ROWID")
c.execute("DELETE FROM count_changes")
c.execute("BEGIN")
for v in range(1, 86_401):  # a day of one commit a second, 2 metrics each
    c.execute("INSERT INTO count_changes VALUES (?, 'm0', 729), (?, 'm8', 729)", (v, v))
c.execute("COMMIT")
def patch(since):
    rows = c.execute("SELECT DISTINCT metric, day FROM count_changes WHERE version > ?", (since,)).fetchall()
    for m, d in rows:
        blob = c.execute("SELECT counts FROM count_days WHERE metric = ? AND day = ?", (m, d)).fetchone()[0]
        arr[metrics[m], d] = np.frombuffer(blob, "<i4")
    return len(rows)
for lag in (1, 5, 60):
    ts = []
    for _ in range(20):
        t = time.perf_counter(); n = patch(86_400 - lag); ts.append(time.perf_counter() - t)
    print(f"patch after {lag} commit(s) behind: {n} rows re-read, {np.median(ts)*1e3:.2f} ms")
