"""Rebuild the counts from the files on disk and the imported records, in one transaction.

Counts are derived data: the event files of the demo (or of a bulk load), the records
imported one by one (``records`` table) and the daily checkpoint checks are the truth. A
rebuild joins every point to its grid, sums per grid, metric and day, and swaps the whole
counts table in one SQLite transaction, so a reader never sees half a rebuild and a killed
rebuild leaves the previous counts.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geo.atlas.areas import Atlas
from geo.atlas.metrics import N_DAYS, PERIOD_START, POINT_METRICS
from geo.atlas.online import ONLINE_FILE, read_online, write_online
from geo.ingest.engines import make_assigner, make_file_counter
from geo.ingest.eventfiles import event_path, read_event_arrays
from geo.query.counts import METRIC_KEYS
from geo.store import SET_META, Store
from geo.store import counts as count_store


@dataclass
class RebuildReport:
    """What a rebuild read and where it went."""

    points: dict = field(default_factory=dict)
    outside: dict = field(default_factory=dict)
    out_of_period: dict = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """Human-readable summary, one line per metric."""
        return [f"{k}: {n:,} points, {self.outside.get(k, 0):,} outside the city, "
                f"{self.out_of_period.get(k, 0):,} outside the period" for k, n in self.points.items()]


def _bin(cube_m: np.ndarray, grid: np.ndarray, day: np.ndarray) -> tuple[int, int]:
    """Add points to one metric's [grid, day] plane; return (outside, out of period) counts."""
    in_grid = grid >= 0
    in_period = (day >= 0) & (day < N_DAYS)
    ok = in_grid & in_period
    n_grids = cube_m.shape[0]
    cube_m += np.bincount(grid[ok].astype(np.int64) * N_DAYS + day[ok], minlength=n_grids * N_DAYS).reshape(n_grids, N_DAYS)
    return int((~in_grid).sum()), int((in_grid & ~in_period).sum())


def compute_cube(atlas: Atlas, store: Store, events_dir: Path | None, checks_file: Path | None,
                 assign=None, count_files=None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], RebuildReport]:
    """Join every source point to its grid and return (cube [metric, grid, day], checks, report).

    ``checks`` is (checkpoint codes, their daily checks [checkpoint, day]), atlas order.

    ``assign(x, y) -> grid index`` is the join (see :func:`make_assigner`); local by default.
    ``count_files`` (see :func:`make_file_counter`) sums the event files where they are read,
    on a cluster's workers; without it they are read here and joined with ``assign``.
    """
    t0 = time.perf_counter()
    assign = assign or make_assigner(atlas)
    cube = np.zeros((len(METRIC_KEYS), len(atlas.grid_codes), N_DAYS), dtype=np.int64)
    report = RebuildReport()
    # All point sources go through one join call, so both cores work on all of them at once.
    xs, ys, days, metric_of = [], [], [], []
    files = {METRIC_KEYS.index(key): event_path(events_dir, key) for key in POINT_METRICS if events_dir}
    files = {m: path for m, path in files.items() if path.exists()}
    if count_files is not None and files:
        counted, stats = count_files(files)
        cube[:len(counted)] += counted
        for m, (n, outside, late) in stats.items():
            report.points[METRIC_KEYS[m]] = n
            report.outside[METRIC_KEYS[m]], report.out_of_period[METRIC_KEYS[m]] = outside, late
        files = {}
    for m, path in files.items():
        x, y, day = read_event_arrays(path)
        xs.append(x), ys.append(y), days.append(day)
        metric_of.append(np.full(len(x), m, dtype=np.int8))
    with store.snapshot() as con:
        records = pd.DataFrame(con.execute("SELECT metric, day, lon, lat FROM records").fetchall(),
                               columns=["metric", "day", "lon", "lat"])
    records = records[records["metric"].isin(METRIC_KEYS)]
    if len(records):
        xs.append(records["lon"].to_numpy(float)), ys.append(records["lat"].to_numpy(float))
        days.append((pd.to_datetime(records["day"]).to_numpy().astype("datetime64[D]")
                     - np.datetime64(PERIOD_START, "D")).astype(np.int64))
        metric_of.append(pd.Index(METRIC_KEYS).get_indexer(records["metric"]).astype(np.int8))
    if xs:
        x, y, day, metric = (np.concatenate(a) for a in (xs, ys, days, metric_of))
        grid = assign(x, y)
        for m in np.unique(metric):
            sel = metric == m
            key = METRIC_KEYS[m]
            outside, late = _bin(cube[m], grid[sel], day[sel])
            report.points[key] = report.points.get(key, 0) + int(sel.sum())
            report.outside[key] = report.outside.get(key, 0) + outside
            report.out_of_period[key] = report.out_of_period.get(key, 0) + late

    cp_codes = atlas.checkpoints["code"].to_numpy()
    cp_daily = np.zeros((len(cp_codes), N_DAYS), dtype=np.int64)
    if checks_file is not None and Path(checks_file).exists():
        raw = pd.read_parquet(checks_file)
        cp = pd.Index(cp_codes).get_indexer(raw["checkpoint_code"])
        cp_grid = pd.Index(atlas.grid_codes).get_indexer(atlas.checkpoints["grid_code"])
        day = (raw["date"].to_numpy().astype("datetime64[D]") - np.datetime64(PERIOD_START, "D")).astype(np.int64)
        ok = (cp >= 0) & (day >= 0) & (day < N_DAYS)
        ok[ok] = cp_grid[cp[ok]] >= 0
        n = raw["checks"].to_numpy()[ok]
        cp_daily += np.bincount(cp[ok] * N_DAYS + day[ok], weights=n,
                                minlength=cp_daily.size).astype(np.int64).reshape(cp_daily.shape)
        placed = cp_grid >= 0
        np.add.at(cube[METRIC_KEYS.index("checkpoint_checks")], cp_grid[placed], cp_daily[placed])
        report.points["checkpoint_checks"] = int(raw["checks"].sum())
    checks = (cp_codes, cp_daily)
    report.seconds = time.perf_counter() - t0
    return cube, checks, report


def write_cube(con, atlas: Atlas, cube: np.ndarray, checks: tuple[np.ndarray, np.ndarray], log=None) -> int:
    """Replace the counts and the checkpoints' daily checks inside the caller's transaction.

    Returns the number of (metric, grid) series written."""
    n = count_store.write_all(con, atlas.grid_codes, cube)
    if log:
        log(f"counts: wrote {n:,} series (metric × grid, in transaction)")
    count_store.write_checkpoints(con, *checks)
    con.execute(SET_META, ("counts_built_at", dt.datetime.now().isoformat(timespec="seconds")))
    return n


def rebuild(atlas: Atlas, store: Store, events_dir: Path | None, checks_file: Path | None, *, log=print,
            online_file: Path | None = None, engine: str = "local", scheduler: str | None = None,
            publish_areas: bool = False) -> RebuildReport:
    """Recompute all counts from the sources and swap them in atomically (the join on ``engine``).

    The grid workers' daily online figures (``online_file``, by default the demo's file next to
    ``events_dir``) are loaded in the same transaction; without such a file the stored ones stay.
    ``publish_areas`` also makes ``atlas`` the store's areas, in the same transaction (a new demo
    city into a PostGIS store; the embedded store reads the demo folder's file anyway).
    """
    cube, checks, report = compute_cube(atlas, store, events_dir, checks_file, make_assigner(atlas, engine, scheduler),
                                        make_file_counter(atlas, engine, scheduler))
    if online_file is None and events_dir is not None:
        online_file = Path(events_dir).parent / ONLINE_FILE
    online = read_online(online_file)
    with store.transaction() as con:
        n = write_cube(con, atlas, cube, checks, log=log)
        if online is not None:
            write_online(con, online)
        if publish_areas and store.dialect != "sqlite":
            store.save_atlas(con, atlas, Path(events_dir).parent if events_dir else None)
    points = sum(v for k, v in report.points.items() if k != "checkpoint_checks")
    log(f"counts: {n:,} series (metric × grid) from {points:,} points and "
        f"{report.points.get('checkpoint_checks', 0):,} checkpoint checks; join and sums in {report.seconds:.1f} s")
    return report
