"""Micro-experiment behind docs/counts.md: counts layouts on SQLite for 730 days, 10,205 grids, 9 metrics.

Usage: python bench/counts_design/store_layout.py [BLOCK_DAYS ...]. Scratch files (about 2.3 GB for
64 256 730) go to $COUNTS_DESIGN_DIR, by default the temporary folder; reload.py reads days.sqlite."""
import os
import sqlite3
import sys
import tempfile
import time

import numpy as np

DIR = os.environ.get("COUNTS_DESIGN_DIR", tempfile.gettempdir())  # scratch files go here
G, M, D = 10205, 9, 730
rng = np.random.default_rng(0)
codes = [f"3302{i:08d}" for i in range(G)]
metrics = [f"m{i}" for i in range(M)]
def wal(path):
    p = path + "-wal"; return os.path.getsize(p) if os.path.exists(p) else 0
def con_for(path):
    for s in ("", "-wal", "-shm"):
        if os.path.exists(path + s): os.remove(path + s)
    c = sqlite3.connect(path, isolation_level=None); c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=NORMAL")
    return c
def series_blocks(B):
    path = os.path.join(DIR, f"blocks{B}.sqlite"); c = con_for(path)
    c.execute("CREATE TABLE count_blocks (metric TEXT, grid_code TEXT, block INTEGER, daily BLOB, PRIMARY KEY (metric, grid_code, block)) WITHOUT ROWID")
    nb = -(-D // B); blob = np.ones(B, "<i4").tobytes()
    t = time.perf_counter(); c.execute("BEGIN")
    c.executemany("INSERT INTO count_blocks VALUES (?,?,?,?)", ((m, g, b, blob) for m in metrics for g in codes for b in range(nb)))
    c.execute("COMMIT"); t_build = time.perf_counter() - t; rows = M * G * nb
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out = {}
    for k in (10, 500):
        times, walb = [], []
        for rep in range(5):
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); w0 = wal(path)
            keys = [(metrics[rng.integers(M)], codes[rng.integers(G)], nb - 1) for _ in range(k)]
            t = time.perf_counter(); c.execute("BEGIN IMMEDIATE")
            for key in keys:
                row = c.execute("SELECT daily FROM count_blocks WHERE metric=? AND grid_code=? AND block=?", key).fetchone()
                a = np.frombuffer(row[0], "<i4").copy(); a[rng.integers(B)] += 1
                c.execute("UPDATE count_blocks SET daily=? WHERE metric=? AND grid_code=? AND block=?", (a.tobytes(), *key))
            c.execute("COMMIT"); times.append(time.perf_counter() - t); walb.append(wal(path) - w0)
        out[k] = (np.median(times) * 1e3, np.median(walb) / 1024)
    t = time.perf_counter(); n = 0
    for r in c.execute("SELECT metric, grid_code, block, daily FROM count_blocks"): n += 1
    t_read = time.perf_counter() - t
    size = os.path.getsize(path) / 2**20
    print(f"(metric, grid, block of {B} days): {rows:,} rows, write all {t_build:.1f} s, read all {t_read:.1f} s, file {size:.0f} MB; "
          f"commit of 10 series {out[10][0]:.1f} ms / {out[10][1]:.0f} KB WAL; of 500 series {out[500][0]:.1f} ms / {out[500][1]:.0f} KB WAL")
def day_vectors():
    path = os.path.join(DIR, "days.sqlite"); c = con_for(path)
    c.execute("CREATE TABLE count_days (metric TEXT, day INTEGER, counts BLOB, PRIMARY KEY (metric, day)) WITHOUT ROWID")
    blob = np.ones(G, "<i4").tobytes()
    t = time.perf_counter(); c.execute("BEGIN")
    c.executemany("INSERT INTO count_days VALUES (?,?,?)", ((m, d, blob) for m in metrics for d in range(D)))
    c.execute("COMMIT"); t_build = time.perf_counter() - t
    out = {}
    for k in (10, 500):
        times, walb = [], []
        for rep in range(5):
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); w0 = wal(path)
            ms = sorted({metrics[rng.integers(M)] for _ in range(k)})
            t = time.perf_counter(); c.execute("BEGIN IMMEDIATE")
            for m in ms:
                a = np.frombuffer(c.execute("SELECT counts FROM count_days WHERE metric=? AND day=?", (m, D - 1)).fetchone()[0], "<i4").copy()
                a[rng.integers(G, size=k)] += 1
                c.execute("UPDATE count_days SET counts=? WHERE metric=? AND day=?", (a.tobytes(), m, D - 1))
            c.execute("COMMIT"); times.append(time.perf_counter() - t); walb.append(wal(path) - w0)
        out[k] = (np.median(times) * 1e3, np.median(walb) / 1024)
    print(f"(metric, day) vectors of all grids: {M*D:,} rows, write all {t_build:.1f} s; "
          f"commit of 10 records {out[10][0]:.1f} ms / {out[10][1]:.0f} KB WAL; of 500 records {out[500][0]:.1f} ms / {out[500][1]:.0f} KB WAL")
for B in map(int, sys.argv[1:]): series_blocks(B)
day_vectors()
