"""``python -m geo bench``: the join and the rebuild, measured against references in the same run.

Absolute times on a shared machine are noise; what the table reports that matters is each
ratio to a reference measured a moment earlier in the same process (``geopandas.sjoin`` for
the join). Tests never assert timings: this is where speed is watched.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import geopandas as gpd
import numpy as np

from .areas import Atlas
from .eventfiles import event_path, read_event_arrays
from .join import OUTSIDE, GridIndex
from .settings import Settings
from .synth.events import synthesise_events


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _events_at_scale(settings: Settings, atlas: Atlas, scale: float, seed: int) -> Path:
    """The visits event file at ``scale``: the demo's own when its scale matches, else a cached build."""
    manifest = settings.demo_dir / "manifest.json"
    if manifest.exists():
        import json

        m = json.loads(manifest.read_text())
        if m["scale"] == scale and m["seed"] == seed:
            return event_path(settings.demo_dir / "events", "visits")
    folder = settings.data_path / "bench" / f"scale-{scale:g}-seed-{seed}"
    path = event_path(folder, "visits")
    if not path.exists():
        print(f"building events at scale {scale:g} into {folder} (once)")
        synthesise_events(atlas.grids, folder, scale, seed)
    return path


def _sjoin_index(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The reference: geopandas.sjoin(predicate="within"), as a grid index per point."""
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs="EPSG:4326")
    joined = gpd.sjoin(pts, grids[["geometry"]], predicate="within", how="left")
    joined = joined[~joined.index.duplicated()]
    ref = np.full(len(x), OUTSIDE, dtype=np.int64)
    hit = joined["index_right"].notna().to_numpy()
    ref[joined.index[hit]] = joined["index_right"][hit].astype(np.int64)
    return ref


def bench_join(settings: Settings, scale: float, seed: int, sjoin: bool = True) -> list[tuple[str, str]]:
    """Rows of the join table: read, index build, join throughput, sjoin ratio, mismatches, memory."""
    atlas = Atlas.load(settings.demo_dir)
    path = _events_at_scale(settings, atlas, scale, seed)
    rows = []
    t = time.perf_counter()
    x, y, _ = read_event_arrays(path)
    t_read = time.perf_counter() - t
    n = len(x)
    rows.append(("read events file", f"{n / 1e6:.2f} M points in {t_read:.2f} s ({n / t_read / 1e6:.1f} M pts/s)"))

    t = time.perf_counter()
    index = GridIndex(atlas.grids.geometry.to_numpy())
    _ = index.raster
    t_build = time.perf_counter() - t
    rows.append(("build grid index", f"{t_build:.2f} s for {len(atlas.grids):,} grids (once per grid set)"))

    t = time.perf_counter()
    ours = index.assign(x, y)
    t_join = time.perf_counter() - t
    rss_ours = _peak_rss_mb()
    line = f"{n / t_join / 1e6:.2f} M pts/s ({t_join:.2f} s)"
    if sjoin:
        t = time.perf_counter()
        ref = _sjoin_index(atlas.grids, x, y)
        t_ref = time.perf_counter() - t
        mismatches = int((ref != ours).sum())
        line = (f"{n / t_join / 1e6:.2f} M pts/s, {t_ref / t_join:.1f}x geopandas.sjoin, {mismatches} mismatches "
                f"(sjoin: {n / t_ref / 1e6:.2f} M pts/s, {t_ref:.1f} s)")
    rows.append(("join", line))
    rows.append(("peak memory", f"{rss_ours:,.0f} MB RSS after our join"
                 + (f"; {_peak_rss_mb():,.0f} MB after sjoin" if sjoin else "")))
    return rows


def run_bench(settings: Settings, scale: float = 1.0, seed: int = 2020, sjoin: bool = True) -> None:
    """Print the benchmark table for the visit points at ``scale``."""
    print(f"Grid Atlas bench: visit points at scale {scale:g} (seed {seed})")
    rows = bench_join(settings, scale, seed, sjoin)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
