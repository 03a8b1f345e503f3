"""``python -m geo bench``: every performance target, each against a reference measured in the same run.

Absolute times on a shared machine are noise; what the table reports that matters is each
ratio to a reference measured a moment earlier in the same run:

* join: ``geopandas.sjoin(predicate="within")`` on the same points, in the same process;
* rebuild: merely reading the files the rebuild reads (the floor any rebuild pays);
* pages: plain Folium with all 10,205 grids embedded as GeoJSON (``bench/page_bench.py``);
* server: a tiny static file from the same server (``bench/server_bench.py``);
* memory: the target itself (one serving process after every endpoint was warmed).

The rebuild, the pages and the server run on a scratch copy of the data folder (the demo
files linked, the store copied), never on the user's store. The pages and the server are
measured by the scripts under ``bench/`` in subprocesses: ``geo`` never imports Flask. Tests
never assert timings: this is where speed is watched.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.atlas.areas import Atlas
from geo.atlas.metrics import POINT_METRICS
from geo.demo.events import synthesise_events
from geo.errors import BadParameter
from geo.ingest.eventfiles import event_path, read_event_arrays
from geo.settings import PROJECT_ROOT, Settings
from geo.spatial.join import OUTSIDE, GridIndex

PARTS = ("join", "rebuild", "pages", "server", "memory")
# A file in a scratch data folder: bench scripts may add users and rewrite counts there.
SCRATCH_MARK = "GRIDATLAS_BENCH_SCRATCH"
# What a bench script prints on stdout, before the JSON list of its [what, measured, target] rows.
ROWS_PREFIX = "BENCH-ROWS "
REBUILD_TARGET_S = 15.0
BENCH_DIR = PROJECT_ROOT / "bench"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def parse_parts(text: str | None, skip: str | None = None) -> tuple[str, ...]:
    """The parts to run from ``--only a,b`` and ``--skip c``; BadParameter names an unknown part."""
    chosen = [p.strip() for p in (text or ",".join(PARTS)).split(",") if p.strip()]
    skipped = [p.strip() for p in (skip or "").split(",") if p.strip()]
    for part in chosen + skipped:
        if part not in PARTS:
            raise BadParameter(f"unknown bench part {part!r}; allowed: {', '.join(PARTS)}")
    return tuple(p for p in PARTS if p in chosen and p not in skipped)


def scratch_data_dir(settings: Settings, parent: Path | None = None) -> Settings:
    """Settings for a throwaway copy of ``settings``' data folder: the demo folder linked (read
    only), the store copied with SQLite's backup API (consistent even while someone writes)."""
    dest = Path(tempfile.mkdtemp(prefix="gridatlas-bench-", dir=parent))
    (dest / "demo").symlink_to(settings.demo_dir.resolve(), target_is_directory=True)
    # The bench measures the embedded store, whatever GRIDATLAS_DATABASE_URL says.
    scratch = Settings(data_dir=dest, database_url="")
    if settings.store_path.exists():
        src = sqlite3.connect(settings.store_path, timeout=60)
        dst = sqlite3.connect(scratch.store_path)
        try:
            src.backup(dst)
        finally:
            src.close(), dst.close()
    (dest / SCRATCH_MARK).write_text(f"scratch copy of {settings.data_path}; delete freely\n")
    return scratch


def _events_at_scale(settings: Settings, atlas: Atlas, scale: float, seed: int) -> Path:
    """The visits event file at ``scale``: the demo's own when its scale matches, else a cached build."""
    manifest = _manifest(settings)
    if manifest and manifest["scale"] == scale and manifest["seed"] == seed:
        return event_path(settings.demo_dir / "events", "visits")
    folder = settings.data_path / "bench" / f"scale-{scale:g}-seed-{seed}"
    path = event_path(folder, "visits")
    if not path.exists():
        print(f"building events at scale {scale:g} into {folder} (once)", file=sys.stderr)
        synthesise_events(atlas.grids, folder, scale, seed)
    return path


def _manifest(settings: Settings) -> dict | None:
    path = settings.demo_dir / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def _sjoin_index(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The reference: geopandas.sjoin(predicate="within"), as a grid index per point."""
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs="EPSG:4326")
    joined = gpd.sjoin(pts, grids[["geometry"]], predicate="within", how="left")
    joined = joined[~joined.index.duplicated()]
    ref = np.full(len(x), OUTSIDE, dtype=np.int64)
    hit = joined["index_right"].notna().to_numpy()
    ref[joined.index[hit]] = joined["index_right"][hit].astype(np.int64)
    return ref


def bench_join(settings: Settings, scale: float, seed: int, sjoin: bool = True) -> list[tuple[str, str, str]]:
    """Rows: read, index build, join throughput with its sjoin ratio and mismatches, memory."""
    atlas = Atlas.load(settings.demo_dir)
    path = _events_at_scale(settings, atlas, scale, seed)
    rows = []
    t = time.perf_counter()
    x, y, _ = read_event_arrays(path)
    t_read = time.perf_counter() - t
    n = len(x)
    rows.append(("read events file", f"{n / 1e6:.2f} M points in {t_read:.2f} s ({n / t_read / 1e6:.1f} M pts/s)",
                 "-"))

    t = time.perf_counter()
    index = GridIndex(atlas.grids.geometry.to_numpy())
    _ = index.raster
    t_build = time.perf_counter() - t
    rows.append(("build grid index", f"{t_build:.2f} s for {len(atlas.grids):,} grids (once per grid set)", "-"))

    t = time.perf_counter()
    ours = index.assign(x, y)
    t_join = time.perf_counter() - t
    rss_ours = _peak_rss_mb()
    line = f"{n / t_join / 1e6:.2f} M pts/s ({t_join:.2f} s)"
    target = "≥ 10x sjoin: not compared (--no-sjoin)"
    if sjoin:
        t = time.perf_counter()
        ref = _sjoin_index(atlas.grids, x, y)
        t_ref = time.perf_counter() - t
        mismatches = int((ref != ours).sum())
        line = (f"{n / t_join / 1e6:.2f} M pts/s, {t_ref / t_join:.1f}x geopandas.sjoin, {mismatches} mismatches "
                f"on all {n:,} points (sjoin: {n / t_ref / 1e6:.2f} M pts/s, {t_ref:.1f} s)")
        target = f"≥ 10x, 0 mismatches: {_verdict(t_ref / t_join >= 10 and mismatches == 0)}"
    rows.append(("join", line, target))
    rows.append(("join peak memory", f"{rss_ours:,.0f} MB RSS after our join"
                 + (f"; {_peak_rss_mb():,.0f} MB after sjoin" if sjoin else ""), "-"))
    return rows


def _read_sources(events_dir: Path, checks_file: Path) -> int:
    """Read every file a rebuild reads, doing nothing with it (the rebuild's reference)."""
    n = 0
    for key in POINT_METRICS:
        path = event_path(events_dir, key)
        if path.exists():
            n += len(read_event_arrays(path)[0])
    if checks_file.exists():
        n += len(pd.read_parquet(checks_file))
    return n


def bench_rebuild(scratch: Settings) -> list[tuple[str, str, str]]:
    """Rows: a full rebuild (areas loaded, every point joined, counts written) into the scratch
    store, a fresh server loading the new counts, against reading the same files alone."""
    from geo.ingest.rebuild import rebuild
    from geo.query.service import AtlasService
    from geo.store import SqliteStore

    demo = scratch.demo_dir
    events, checks = demo / "events", demo / "checkpoint_checks.parquet"
    _read_sources(events, checks)  # warm the page cache, so both sides read from memory
    t = time.perf_counter()
    n_rows = _read_sources(events, checks)
    t_read = time.perf_counter() - t

    t = time.perf_counter()
    atlas = Atlas.load(demo)
    t_atlas = time.perf_counter() - t
    report = rebuild(atlas, SqliteStore(scratch.store_path), events, checks, log=lambda line: None)
    t_rebuild = time.perf_counter() - t

    service = AtlasService(scratch)
    _ = service.atlas
    t = time.perf_counter()
    service.cube()
    t_serve = time.perf_counter() - t
    total = t_rebuild + t_serve

    served = service.summary("330200")
    wrong = [k for k in POINT_METRICS if k in report.points
             and served.get(k) != report.points[k] - report.outside.get(k, 0) - report.out_of_period.get(k, 0)]
    points = sum(report.points.get(k, 0) for k in POINT_METRICS)
    return [
        ("rebuild", f"{total:.1f} s from files to counts served: {t_atlas:.1f} s areas, "
                    f"{t_rebuild - t_atlas:.1f} s join + write of {points / 1e6:.2f} M points and the checks, "
                    f"{t_serve:.1f} s for a server to load them; {total / t_read:.1f}x reading the files alone "
                    f"({t_read:.1f} s for {n_rows / 1e6:.2f} M rows)",
         f"≤ {REBUILD_TARGET_S:g} s: {_verdict(total <= REBUILD_TARGET_S)}"),
        ("rebuild check", "city totals served = points joined in the city and period, every metric"
         if not wrong else f"served totals differ for {', '.join(wrong)}", _verdict(not wrong)),
    ]


def run_script(script: Path, args: list[str], timeout: float) -> list[tuple[str, str, str]]:
    """Run the bench script ``script`` with ``--json``; its rows, or one row saying why it failed.

    Its progress (stderr) is passed through as it comes; it is killed after ``timeout`` s."""
    cmd = [sys.executable, str(script), *args, "--json"]
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    print(f"running {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    tail: list[str] = []

    def relay():
        for line in proc.stderr:
            sys.stderr.write("  " + line)
            sys.stderr.flush()
            tail[:] = (tail + [line.rstrip()])[-5:]

    relay_thread = threading.Thread(target=relay, daemon=True)
    relay_thread.start()
    try:
        proc.wait(timeout=timeout)  # its stdout is one short line: the pipe cannot fill meanwhile
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        tail.append(f"killed after {timeout:.0f} s")
    relay_thread.join(timeout=10)
    out = proc.stdout.read()
    for line in out.splitlines():
        if line.startswith(ROWS_PREFIX):
            return [tuple(r) for r in json.loads(line[len(ROWS_PREFIX):])]
    why = next((t for t in reversed(tail) if t.strip()), f"exit status {proc.returncode}")
    return [(Path(script).name, f"failed: {why}", "not measured")]


def print_rows(rows: list[tuple[str, str, str]], stream=None) -> None:
    """Print ``rows`` as one table: what, measured (with reference and ratio), target."""
    stream = stream or sys.stdout
    w1 = max(len(r[0]) for r in rows)
    for what, measured, target in rows:
        tail = f"  [{target}]" if target and target != "-" else ""
        print(f"{what:<{w1}}  {measured}{tail}", file=stream)


def _guarded(part: str, measure, *args) -> list[tuple[str, str, str]]:
    """The rows of ``measure(*args)``, or one row saying why it failed: one broken part must
    not cost the other parts' figures (the traceback goes to stderr)."""
    try:
        return measure(*args)
    except Exception as err:  # noqa: BLE001 - reported in the table and on stderr
        traceback.print_exc()
        return [(part, f"failed: {type(err).__name__}: {err}", "not measured")]


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_bench(settings: Settings, scale: float = 1.0, seed: int = 2020, sjoin: bool = True,
              parts: tuple[str, ...] = PARTS, duration: int = 10) -> list[tuple[str, str, str]]:
    """Print (and return) the benchmark table of ``parts``: the join on the visit points at
    ``scale``; the rebuild, pages, server and memory on the data folder's demo."""
    manifest = _manifest(settings) or {}
    print(f"Grid Atlas bench: join on visit points at scale {scale:g} (seed {seed}); rebuild, pages, server "
          f"and memory on {settings.data_path} (demo scale {manifest.get('scale', '?')}); "
          f"{os.cpu_count()} cores, load average {_load()}", flush=True)
    rows: list[tuple[str, str, str]] = []
    needs_copy = any(p in parts for p in ("rebuild", "pages", "server", "memory"))
    scratch = scratch_data_dir(settings) if needs_copy else None
    try:
        # The rebuild first, while this process is small; the join's arrays and sjoin come after.
        if "rebuild" in parts:
            rows += _guarded("rebuild", bench_rebuild, scratch)
        if "join" in parts:
            rows += _guarded("join", bench_join, settings, scale, seed, sjoin)
        data = ["--data-dir", str(scratch.data_path)] if scratch else []
        if "pages" in parts:
            rows += run_script(BENCH_DIR / "page_bench.py", data, timeout=1800)
        if "server" in parts or "memory" in parts:
            flags = [] if "server" in parts else ["--no-load"]
            flags += [] if "memory" in parts else ["--no-memory"]
            rows += run_script(BENCH_DIR / "server_bench.py", data + flags + ["--duration", str(duration)],
                               timeout=1800)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch.data_path, ignore_errors=True)
    rows.append(("load average", f"{_load()} (1, 5, 15 min) at the end, on {os.cpu_count()} cores", "-"))
    print()
    print_rows(rows)
    return rows
